// Package apitest is what the tests of the socket API share: an OpenAPI
// contract check that wraps the server's handler so that every response a
// test receives is validated against socketapi.OpenAPI (Contract), an
// in-process agent over the fake runtime or a real plugin served on a temp
// socket (Start), and a runner of the built zakictl with golden outputs
// (CLI).
package apitest
