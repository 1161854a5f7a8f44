// Package cliargs builds the command-line options that the docker and
// podman clients read the same way: podman's `create` and `ps` take
// docker's option vocabulary, and for the ContainerSpec fields here both
// engines were checked to store exactly what the option says (docker 28
// on engine 20.10, podman 4.3).
//
// What is in: CreateFlags (the options of `create` from --pull=never to
// --stop-timeout, the engine's own healthcheck flags slotted in by the
// caller), Publish (one --publish value), LabelFilters (the --filter
// flags of `ps`, which both engines AND together and which match a key
// alone) and Seconds (the whole seconds both clients take for timeouts).
//
// What is not: the healthcheck flags (docker can only say the shell form,
// podman takes a JSON exec form), anything an engine adds of its own
// (podman's annotations, --read-only-tmpfs), and reading output back,
// which is package clirt's.
//
// Every caller value is given as --flag=value, so that nothing can be read
// as another option; the caller validates the spec first
// (runtime.ContainerSpec.Validate).
package cliargs
