package engineapi_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

// exchange is one request a test expects and the engine's answer to it.
type exchange struct {
	method string
	path   string     // with the version, "/v1.41/services"
	query  url.Values // exactly these parameters (nil: none)
	body   string     // the request's JSON, compared decoded ("": no body)
	status int        // 200 when zero
	answer string     // the answer's body
}

// serve starts an engine stand-in that answers with h (see listen), and
// returns a Client of it.
func serve(t *testing.T, h http.HandlerFunc) *engineapi.Client {
	t.Helper()
	c := engineapi.New(engineapi.Config{Socket: listen(t, h)})
	t.Cleanup(func() { c.Close() })
	return c
}

// listen starts an engine stand-in on a Unix socket in t.TempDir() that
// answers with h, and returns the socket's path.
func listen(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return sock
}

// fake serves ex once: it checks the request against ex (a mismatch
// fails t) and answers as ex says, as the engine does.
func fake(t *testing.T, ex exchange) *engineapi.Client {
	t.Helper()
	var calls atomic.Int32
	t.Cleanup(func() { assert.Check(t, is.Equal(calls.Load(), int32(1)), "calls to %s %s", ex.method, ex.path) })
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		checkRequest(t, r, ex)
		w.Header().Set("Content-Type", "application/json")
		if ex.status != 0 {
			w.WriteHeader(ex.status)
		}
		io.WriteString(w, ex.answer)
	})
}

// checkRequest checks that r is the request ex expects.
func checkRequest(t *testing.T, r *http.Request, ex exchange) {
	t.Helper()
	assert.Check(t, is.Equal(r.Method, ex.method))
	assert.Check(t, is.Equal(r.URL.Path, ex.path))
	q := r.URL.Query()
	if ex.query == nil {
		ex.query = url.Values{}
	}
	assert.Check(t, is.DeepEqual(q, ex.query))
	b, err := io.ReadAll(r.Body)
	assert.Check(t, err)
	if ex.body == "" {
		assert.Check(t, is.Equal(string(b), ""))
		return
	}
	assert.Check(t, is.Equal(r.Header.Get("Content-Type"), "application/json"))
	var got, want any
	assert.Check(t, json.Unmarshal(b, &got), "request body %s", b)
	assert.Check(t, json.Unmarshal([]byte(ex.body), &want), "test's body %s", ex.body)
	assert.Check(t, is.DeepEqual(got, want), "request body %s", b)
}
