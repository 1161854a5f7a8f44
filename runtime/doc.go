// Package runtime is the contract between zaki-agent and the container
// engines it drives.
//
// Runtime (runtime.go) is the one shared interface: ctx first on every call,
// a small closed set of error classes (errors.go), and spec validation that
// every implementation runs before it touches an engine (validate.go).
//
// A runtime lives in its own process, a plugin binary named
// zaki-runtime-<name>, reached over hashicorp/go-plugin with gRPC only: this
// package holds the handshake, the protobuf service (runtime/proto), the gRPC
// client and server shims and the error translation between the two sides,
// and the supervisor that launches a plugin, relaunches it when it dies and
// fails calls with ErrUnavailable while it is down. Package runtimetest holds
// the conformance suite every runtime passes against its real engine, and an
// in-memory fake for the agent's tests.
package runtime
