package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "zl")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestListen: the socket gets its mode and group before anyone can
// connect; a stale socket is replaced; a live one or a file that is not a
// socket is refused; closing removes the socket.
func TestListen(t *testing.T) {
	t.Run("creates dir, mode and group", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "run", "zaki", "agent.sock")
		ln, err := server.Listen(path, "nogroup")
		assert.NilError(t, err)
		fi, err := os.Lstat(path)
		assert.NilError(t, err)
		assert.Check(t, fi.Mode()&os.ModeSocket != 0)
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o660)))
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Gid, uint32(nobody)))
		di, err := os.Stat(filepath.Dir(path))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(di.Mode().Perm(), os.FileMode(0o750)))
		ents, _ := os.ReadDir(filepath.Dir(path))
		assert.Check(t, is.Len(ents, 1), "no temp dir left beside the socket")
		c, err := net.Dial("unix", path)
		assert.NilError(t, err)
		c.Close()
		assert.NilError(t, ln.Close())
		_, err = os.Lstat(path)
		assert.Check(t, os.IsNotExist(err), "closing removes the socket")
	})
	t.Run("numeric group and no group", func(t *testing.T) {
		dir := shortDir(t)
		ln, err := server.Listen(filepath.Join(dir, "a.sock"), "65534")
		assert.NilError(t, err)
		defer ln.Close()
		fi, _ := os.Lstat(filepath.Join(dir, "a.sock"))
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Gid, uint32(nobody)))
		ln2, err := server.Listen(filepath.Join(dir, "b.sock"), "")
		assert.NilError(t, err)
		defer ln2.Close()
		fi, _ = os.Lstat(filepath.Join(dir, "b.sock"))
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Gid, uint32(os.Getegid())))
	})
	t.Run("unknown group", func(t *testing.T) {
		_, err := server.Listen(filepath.Join(shortDir(t), "a.sock"), "no-such-group-zaki")
		assert.ErrorContains(t, err, "socket group")
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		old, err := net.Listen("unix", path)
		assert.NilError(t, err)
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // leaves the file, as a killed agent would
		_, err = os.Lstat(path)
		assert.NilError(t, err)
		ln, err := server.Listen(path, "")
		assert.NilError(t, err)
		defer ln.Close()
		c, err := net.Dial("unix", path)
		assert.NilError(t, err)
		c.Close()
	})
	t.Run("live socket refused", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		first, err := server.Listen(path, "")
		assert.NilError(t, err)
		defer first.Close()
		_, err = server.Listen(path, "")
		assert.ErrorContains(t, err, "another process")
		// The first one still serves.
		c, err := net.Dial("unix", path)
		assert.NilError(t, err)
		c.Close()
	})
	t.Run("not a socket refused", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		assert.NilError(t, os.WriteFile(path, []byte("precious"), 0o600))
		_, err := server.Listen(path, "")
		assert.ErrorContains(t, err, "not a socket")
		b, err := os.ReadFile(path)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(b), "precious"))
	})
	t.Run("close keeps a replacement", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		ln, err := server.Listen(path, "")
		assert.NilError(t, err)
		assert.NilError(t, os.Remove(path))
		other, err := net.Listen("unix", path)
		assert.NilError(t, err)
		defer other.Close()
		ln.Close()
		_, err = os.Lstat(path)
		assert.NilError(t, err, "another listener's socket is left alone")
	})
}

// TestNonUnixListenerForbidden: served on anything but a Unix socket the
// caller is unknown, and refused.
func TestNonUnixListenerForbidden(t *testing.T) {
	e := start(t)
	srv := server.New(server.Config{Agent: daemon.APIAgent(e.Agent), Middleware: e.Contract.Middleware, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/health")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, http.StatusForbidden))
}

// TestMetricsHandler serves the metrics on a loopback TCP address, and
// nothing else there.
func TestMetricsHandler(t *testing.T) {
	e := start(t)
	_, err := e.Client.Ensure(ctxT(t), "nina", struct0())
	assert.NilError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	hs := &http.Server{Handler: server.MetricsHandler(e.Server.Gatherer()), ReadHeaderTimeout: time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/metrics")
	assert.NilError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resp.StatusCode, 200))
	assert.Check(t, strings.Contains(string(b), `zaki_instances{state="running"} 1`), "instances gauge")
	assert.Check(t, strings.Contains(string(b), `zaki_api_requests_total{code="201",method="PUT",route="/v1/instances/{userId}"} 1`), "api counter")
	resp, err = http.Get(base + "/v1/health")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 404))
	resp, err = http.Head(base + "/metrics")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 200))
	resp, err = http.Post(base+"/metrics", "text/plain", nil)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 405))
	assert.Check(t, is.Equal(resp.Header.Get("Allow"), "GET, HEAD"))
}
