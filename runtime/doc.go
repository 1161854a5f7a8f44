// Package runtime is the contract between zaki-agent and the container
// engines it drives.
//
// Runtime (runtime.go) is the one shared interface: ctx first on every call,
// a small closed set of error classes (errors.go), and spec validation that
// every implementation runs before it touches an engine (validate.go).
//
// A runtime lives in its own process, a plugin binary named
// zaki-runtime-<name>, reached over hashicorp/go-plugin with gRPC only. The
// plugin side calls Serve with its Runtime and logs through NewLogHandler
// (plugin.go, plugin_log.go). The agent side calls Launch, whose *Plugin is
// a Runtime: it starts the binary (mutual TLS with keys made for that
// launch and handed over on an inherited pipe, plugin_tls.go; its own
// process group; the agent's environment without systemd's variables),
// checks the connection with a first call, forwards calls to it,
// fails them with ErrUnavailable at once while it is down, relaunches it
// with backoff when it dies, and files its log records in the agent's
// slog.Logger (supervisor.go). Between the two: the protobuf service
// (runtime/proto, `make proto`), the gRPC client and server shims
// (grpc_client.go, grpc_server.go), the conversions (convert.go) and the
// one translation of error classes to gRPC codes and back
// (grpc_errors.go); ctx deadlines and cancellation cross the boundary.
//
// Package runtimetest holds the conformance suite every runtime passes
// against its real engine, an in-memory fake for the agent's tests, and
// zaki-runtime-fake, a plugin binary serving the fake.
package runtime
