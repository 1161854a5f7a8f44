package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// response is a raw answer of the API.
type response struct {
	status int
	header http.Header
	body   string
}

// errorCode returns the code of an error body ("" when there is none).
func (r response) errorCode() string {
	var eb socketapi.ErrorBody
	json.Unmarshal([]byte(r.body), &eb)
	return eb.Error.Code
}

// message returns the message of an error body.
func (r response) message() string {
	var eb socketapi.ErrorBody
	json.Unmarshal([]byte(r.body), &eb)
	return eb.Error.Message
}

// raw sends one request over the socket as any HTTP client would, with
// the given headers ("Name: value").
func raw(t testing.TB, socket, method, path, body string, headers ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, rd)
	assert.NilError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		if k == "Host" {
			req.Host = strings.TrimSpace(v) // the client sends req.Host, not the header
			continue
		}
		req.Header.Set(k, strings.TrimSpace(v))
	}
	hc := &http.Client{Transport: socketapi.NewTransport(socket)}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// start starts an agent over the fake runtime served on a temp socket.
func start(t testing.TB, opts ...func(*apitest.Options)) *apitest.Env {
	t.Helper()
	var o apitest.Options
	for _, f := range opts {
		f(&o)
	}
	return apitest.Start(t, o)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type (
	daemonConfig = daemon.Config
	serverConfig = server.Config
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func struct0() socketapi.InstanceSpec { return socketapi.InstanceSpec{} }
