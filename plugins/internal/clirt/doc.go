// Package clirt is the one engine of the runtime plugins that drive a
// container engine through its command-line client (docker, podman):
// every method of runtime.Runtime but Info, built on the exec wrapper of
// package cli and the create options of package cliargs.
//
// An Engine runs every command with one debug line, parses the client's
// JSON output, and implements what the clients do alike: Create's
// skeleton (validate, in-memory env file, image, ID), Start, Stop, Restart and
// Remove with their batching, Pause and Resume, Inspect and List with the spec read back
// into runtime.ContainerSpec, the event stream, networks, images and
// logs. What an engine does its own way comes in a Dialect, a plain value
// the plugin hands to New: argv, error words, output format, healthcheck
// flags, event parsing, and hooks that correct the common reading of
// inspect. A plugin embeds the *Engine and overrides only the methods
// its engine needs to extend.
//
// Serve and Main are the plugin binary's boilerplate: flags, logging,
// runtime.Serve.
package clirt
