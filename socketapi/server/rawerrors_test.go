package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestHTTPLayerErrorsEnveloped: what net/http refuses before any handler
// runs is answered with the API's error envelope, not plain text.
func TestHTTPLayerErrorsEnveloped(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name, request string
		status        int
		code          string
	}{
		{"bad percent-encoding", "GET /v1/instances/%zz HTTP/1.1\r\nHost: zaki\r\n\r\n", 400, "invalid_argument"},
		{"missing host", "GET /v1/health HTTP/1.1\r\n\r\n", 400, "invalid_argument"},
		{"garbage", "hello there\r\n\r\n", 400, "invalid_argument"},
		{"bad header", "GET /v1/health HTTP/1.1\r\nHost: zaki\r\nNo colon here\r\n\r\n", 400, "invalid_argument"},
		{"headers too large", "GET /v1/health HTTP/1.1\r\nHost: zaki\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "too_large"},
		{"HTTP/2 preface", "GET /v1/health HTTP/2.0\r\nHost: zaki\r\n\r\n", 505, "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", e.Socket)
			assert.NilError(t, err)
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.WriteString(conn, tc.request)
			assert.NilError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			assert.NilError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(resp.StatusCode, tc.status), "%s", b)
			assert.Check(t, is.Equal(resp.Header.Get("Content-Type"), "application/json"))
			var eb socketapi.ErrorBody
			assert.Check(t, json.Unmarshal(b, &eb), "%s", b)
			assert.Check(t, is.Equal(eb.Error.Code, tc.code), "%s", b)
			assert.Check(t, eb.Error.Message != "", "%s", b)
		})
	}
}
