package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// FuzzHTTP throws raw bytes at the whole HTTP layer (peer check, routing,
// query and body checks, handlers over the fake runtime). Whatever comes
// in: no panic (the process would die), an answer or a closed connection
// within seconds, every answer well-formed HTTP, every error answer the
// API's envelope with a code, and no goroutine left behind by the
// connection. `make faults` runs it for a bounded time:
//
//	go test ./socketapi/server -run '^$' -fuzz '^FuzzHTTP$' -fuzztime 60s
func FuzzHTTP(f *testing.F) {
	e := start(f)
	for _, s := range []string{
		"GET /v1/health HTTP/1.1\r\nHost: zaki\r\n\r\n",
		"PUT /v1/instances/fuzz HTTP/1.1\r\nHost: zaki\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"GET /v1/instances?state=running HTTP/1.1\r\nHost: zaki\r\n\r\nGET /v1/instances/fuzz HTTP/1.1\r\nHost: zaki\r\n\r\n",
		"POST /v1/prune HTTP/1.1\r\nHost: zaki\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n{\"dryRun\":true\r\n1\r\n}\r\n0\r\n\r\n",
		"POST /v1/instances/fuzz/exec HTTP/1.1\r\nHost: zaki\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"cmd\":[\"x\"]}",
		"DELETE /v1/instances/fuzz?purge=true HTTP/1.1\r\nHost: zaki\r\n\r\n",
		"GET /v1/instances/%zz HTTP/1.1\r\nHost: evil.example\r\nOrigin: null\r\n\r\n",
		"GET /v1/instances/fuzz/logs?tail=5 HTTP/1.0\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		before := runtime.NumGoroutine()
		conn, err := net.Dial("unix", e.Socket)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := conn.Write(in); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "broken pipe") && !strings.Contains(err.Error(), "reset by peer") {
			t.Fatalf("write: %v", err)
		}
		conn.(*net.UnixConn).CloseWrite()
		out, err := io.ReadAll(io.LimitReader(conn, 16<<20))
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within 20 s for %q", in)
		}
		checkAnswers(t, in, out)
		// The connection's goroutines end with it.
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before+8 {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines: %d before the connection, %d 5 s after it closed (input %q)", before, runtime.NumGoroutine(), in)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// checkAnswers parses every answer in out: each must be HTTP/1.x, and
// each error must be the envelope.
func checkAnswers(t *testing.T, in, out []byte) {
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer to %q is not HTTP: %v\n%q", in, err, out)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("answer to %q: body: %v", in, err)
		}
		if resp.StatusCode >= 400 {
			var eb socketapi.ErrorBody
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error answer %d to %q is %q, not the envelope: %q", resp.StatusCode, in, ct, body)
			}
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				// The one documented exception: GET /v1/health answers 503
				// with the Health document (the caller's hang-up cancels
				// its engine call).
				var h socketapi.Health
				if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &h) != nil || h.Status != socketapi.HealthUnavailable {
					t.Fatalf("error answer %d to %q is not the envelope: %q", resp.StatusCode, in, body)
				}
			}
		}
		if resp.Close || resp.Request != nil && resp.Request.Method == http.MethodHead {
			return
		}
	}
}
