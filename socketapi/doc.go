// Package socketapi is the wire contract of zaki-agent's API (v1): HTTP/1.1
// and JSON over the agent's Unix socket, as README.md ("The API") and
// openapi.json document it. It holds the wire types (types.go), the one
// table that maps error classes to HTTP statuses and error codes and back
// (errors.go), the Go client (client.go) and the OpenAPI 3 document of the
// API (openapi.json, embedded as OpenAPI).
//
// It is a leaf: it imports only the standard library and internal/errdefs,
// so that a program that only calls the agent links nothing of the agent.
// The server is package socketapi/server; the CLI is socketapi/cmd/zakictl.
//
// Errors the client returns are of the classes re-exported here
// (ErrNotFound, ErrInvalidArgument, ...), tested with errors.Is, and read
// as the agent's own message:
//
//	var c socketapi.Client // $ZAKI_SOCKET, or /run/zaki-agent/agent.sock
//	in, err := c.Ensure(ctx, "alice", socketapi.InstanceSpec{})
//	if errors.Is(err, socketapi.ErrInvalidArgument) { ... }
package socketapi
