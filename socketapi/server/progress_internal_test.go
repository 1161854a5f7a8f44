package server

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// stuckWriter is a response writer whose reader does not read: every
// Write blocks until release is closed.
type stuckWriter struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	release chan struct{}
	writing chan struct{} // closed at the first Write
	once    sync.Once
}

func (w *stuckWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.writing) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ResponseRecorder.Write(b)
}

// TestProgressSlowReader: a reader that does not read never blocks the
// progress callback (the agent calls it from the pull every waiter
// shares): lines past the buffer are dropped, the result line is not.
func TestProgressSlowReader(t *testing.T) {
	w := &stuckWriter{ResponseRecorder: httptest.NewRecorder(), release: make(chan struct{}), writing: make(chan struct{})}
	pw := newProgressWriter(w)
	go pw.run()
	pw.progress(socketapi.PullProgress{Image: "i", Status: "first"})
	<-w.writing // the writer is stuck in its first line
	const n = 10 * progressBuffer
	for i := 0; i < n; i++ {
		pw.progress(socketapi.PullProgress{Image: "i", Status: "more"})
	}
	close(w.release)
	pw.finish()
	pw.write(socketapi.StreamLine{Pull: &socketapi.PullResult{Image: "i"}})

	assert.Check(t, is.Equal(w.Code, http.StatusOK))
	assert.Check(t, is.Equal(w.Header().Get("Content-Type"), "application/x-ndjson"))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(w.Body.Bytes()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// The first, at most a buffer's worth of the others, the result.
	assert.Check(t, len(lines) <= progressBuffer+2, "%d lines", len(lines))
	assert.Check(t, len(lines) >= 3, "%d lines", len(lines))
	assert.Check(t, is.Equal(lines[0], `{"progress":{"image":"i","status":"first"}}`))
	assert.Check(t, is.Equal(lines[len(lines)-1], `{"pull":{"image":"i"}}`))
	for _, l := range lines[1 : len(lines)-1] {
		assert.Check(t, strings.Contains(l, `"more"`), l)
	}
}

func TestWantsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                     false,
		"application/json":     false,
		"*/*":                  false,
		"application/x-ndjson": true,
		"application/json, application/x-ndjson;q=0.9": true,
		"application/x-ndjson;q=0":                     false,
		"text/plain,application/x-ndjson":              true,
	} {
		r := httptest.NewRequest(http.MethodPut, "/v1/instances/a", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		assert.Check(t, is.Equal(wantsNDJSON(r), want), accept)
	}
}
