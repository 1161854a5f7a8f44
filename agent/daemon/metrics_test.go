package daemon

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// TestMetricsListenerCannotBeHeld: connections that send nothing are cut
// after the read timeout, and no more than metricsMaxConns are served at
// once, so a scrape gets through however many idle connections a local
// process opens.
func TestMetricsListenerCannotBeHeld(t *testing.T) {
	saved := []any{metricsReadTimeout, metricsMaxConns}
	metricsReadTimeout, metricsMaxConns = 300*time.Millisecond, 2
	t.Cleanup(func() {
		metricsReadTimeout, metricsMaxConns = saved[0].(time.Duration), saved[1].(int)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	stop, err := serveMetrics(addr, server.New(server.Config{}))
	assert.NilError(t, err)
	defer stop()

	var idle []net.Conn
	for range 4 { // twice the cap
		c, err := net.Dial("tcp", addr)
		assert.NilError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	assert.NilError(t, err, "a scrape behind idle connections")
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(resp.StatusCode, 200))
	assert.Check(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	// The first idle connections were accepted, then cut.
	idle[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := idle[0].Read(make([]byte, 1))
	assert.Check(t, n == 0 && err != nil, "an idle connection is closed by the server: %d %v", n, err)
}
