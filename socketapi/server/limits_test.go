package server_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// TestStreamBounds: event streams and log followers past their bounds are
// 429 too_many_requests with the envelope, per user and in all; a stream
// closed gives its slot back.
func TestStreamBounds(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Server = func(c *server.Config) {
			c.MaxEventStreams = 2
			c.MaxLogFollowers = 3
			c.MaxLogFollowersPerUser = 2
		}
	})
	c, ctx := e.Client, ctxT(t)

	var streams []*socketapi.EventStream
	for range 2 {
		es, err := c.Events(ctx)
		assert.NilError(t, err)
		streams = append(streams, es)
	}
	r := raw(t, e.Socket, "GET", "/v1/events", "")
	assert.Check(t, is.Equal(r.status, 429), r.body)
	assert.Check(t, is.Equal(r.errorCode(), "too_many_requests"), r.body)
	assert.Check(t, is.Contains(r.body, "2 event streams are open"))
	streams[0].Close()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		es, err := c.Events(ctx)
		if errors.Is(err, socketapi.ErrTooManyRequests) {
			return poll.Continue("the closed stream's slot is not free yet")
		}
		if err != nil {
			return poll.Error(err)
		}
		streams = append(streams, es)
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
	for _, es := range streams {
		es.Close()
	}

	for _, u := range []string{"ivan", "judy"} {
		_, err := c.Ensure(ctx, u, socketapi.InstanceSpec{})
		assert.NilError(t, err)
	}
	follow := func(u string) (io.ReadCloser, error) {
		return c.Logs(ctx, u, socketapi.LogOptions{Follow: true})
	}
	var held []io.ReadCloser
	for range 2 {
		rc, err := follow("ivan")
		assert.NilError(t, err)
		held = append(held, rc)
	}
	_, err := follow("ivan")
	assert.Check(t, errors.Is(err, socketapi.ErrTooManyRequests), "a third follower of one user: %v", err)
	assert.Check(t, is.ErrorContains(err, `of user "ivan"`))
	// Without follow, logs are read and done: not bounded.
	rc, err := c.Logs(ctx, "ivan", socketapi.LogOptions{})
	assert.NilError(t, err)
	rc.Close()
	rc, err = follow("judy")
	assert.NilError(t, err)
	held = append(held, rc)
	_, err = follow("judy")
	assert.Check(t, errors.Is(err, socketapi.ErrTooManyRequests), "past the total: %v", err)
	assert.Check(t, is.ErrorContains(err, "3 log followers are open"))
	for _, rc := range held {
		rc.Close()
	}
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		rc, err := follow("judy")
		if errors.Is(err, socketapi.ErrTooManyRequests) {
			return poll.Continue("slots not given back yet")
		}
		if err != nil {
			return poll.Error(err)
		}
		rc.Close()
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
}

// TestEventsHeartbeat: a stream on which no event flows gets blank lines,
// which the Go client skips.
func TestEventsHeartbeat(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Server = func(c *server.Config) { c.Heartbeat = 50 * time.Millisecond }
	})
	ctx := ctxT(t)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://localhost/v1/events", nil)
	assert.NilError(t, err)
	hc := &http.Client{Transport: socketapi.NewTransport(e.Socket)}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for range 3 {
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Check(t, is.Equal(line, "\n"))
	}

	es, err := e.Client.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()
	time.Sleep(200 * time.Millisecond) // a few heartbeats go by first
	_, err = e.Client.Ensure(ctx, "kim", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	ev, err := es.Recv()
	assert.NilError(t, err)
	assert.Check(t, ev.Type != "", "an event, not a blank: %+v", ev)
}
