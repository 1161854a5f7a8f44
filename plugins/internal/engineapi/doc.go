// Package engineapi is a small client of the Docker Engine API: JSON over
// the engine's Unix socket, with the API version pinned in every path
// (DefaultAPIVersion, "1.41": Debian's docker.io 20.10, the engine the
// hosts run). It is the layer the Swarm runtime plugin stands on: system
// (Ping, Version, Info), swarm nodes, services and tasks, containers (inspect,
// list, logs, exec), the event stream and image inspect.
//
// It speaks raw JSON with net/http and encoding/json rather than through
// the engine's Go SDK, which would bring a large dependency tree for a few
// calls. Its types are written here, minimal: only the fields the plugin
// reads or sets, named exactly as the API names them; unknown fields in
// answers are ignored. Durations are time.Duration, which the API carries
// as integer nanoseconds.
//
// Every call takes a context. A failure is wrapped in one of the error
// classes of package errdefs (see Error) with the engine's own message;
// request bodies (environment values, exec commands) never appear in an
// error text, and the client logs nothing but method, path and status.
//
// The tests run against a stand-in engine on a Unix socket, plus a
// read-only look at the host's engine. swarm_live_test.go, built only with
// the tag engineapi_swarm, makes a service in a disposable swarm (never
// the host's engine) and reads its spec back from the service, the task
// and the task's container.
package engineapi
