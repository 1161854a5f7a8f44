// Package server serves zaki-agent's API (v1, see package socketapi) on a
// net.Listener, normally the agent's Unix socket (Listen makes one safely;
// a socket-activated listener works as well).
//
// Every connection is checked by its peer's credentials (SO_PEERCRED and
// SO_PEERGROUPS): root, the agent's own uid and the configured uids and gids
// may call, anyone else gets 403 and nothing happens. Requests from a browser
// (an Origin, Referer or Sec-Fetch-* header, or a Host a page could have
// reached by DNS: a dotted name or an address that is not loopback) get 403
// too, so that a socket forwarded to TCP cannot be driven by DNS rebinding. Input is strict: bodies are
// capped (413), JSON is decoded with unknown, mis-cased and duplicate fields
// refused and nothing allowed after the value (400), query parameters are
// checked before the agent is called, a wrong method is 405 with Allow.
// Every error is {"error": {"code", "message"}}, translated from its class
// by socketapi.HTTPError alone. Every mutating call is logged with the
// caller's uid and pid, the method, the path and the outcome; bodies and
// environment values never are.
//
// A mutating call, once its request is read, runs to its end (bounded by
// Config.CallTimeout) even when the caller hangs up, so that an instance is
// never left half-made by an impatient client; the caller's retry finds the
// result. Streams (events, logs) end when the caller hangs up or the server
// shuts down.
package server
