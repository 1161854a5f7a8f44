package engineapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

const (
	serviceUpdate = `{"Type":"service","Action":"update","Actor":{"ID":"9mnp","Attributes":{"name":"zaki-user-u1","replicas.new":"1","replicas.old":"0"}},"scope":"swarm","time":1764928800,"timeNano":1764928800000000005}`
	containerDie  = `{"status":"die","id":"e5d6","from":"img","Type":"container","Action":"die","Actor":{"ID":"e5d6","Attributes":{"exitCode":"137","zaki.user":"u1"}},"scope":"local","time":1764928801,"timeNano":1764928801000000000}`
)

// eventsEngine answers GET /events with chunks, flushing after each, then
// keeps the stream open until the request ends (or returns at once when
// end).
func eventsEngine(t *testing.T, want url.Values, end bool, chunks ...string) *engineapi.Client {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, exchange{method: http.MethodGet, path: "/v1.41/events", query: want})
		w.Header().Set("Content-Type", "application/json")
		for _, c := range chunks {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
		if !end {
			<-r.Context().Done()
		}
	})
}

func TestEvents(t *testing.T) {
	want := url.Values{"filters": {`{"scope":["swarm"],"type":["service","node"]}`}, "since": {"1764928800.000000000"}}
	// The second event comes cut in two writes, as a stream may.
	c := eventsEngine(t, want, false, serviceUpdate+"\n", containerDie[:30], containerDie[30:]+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := c.Events(ctx, engineapi.EventsOptions{
		Filters: engineapi.Filters{"type": {"service", "node"}, "scope": {"swarm"}}, Since: time.Unix(1764928800, 0)})
	assert.NilError(t, err)
	defer s.Close()

	e, err := s.Recv()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.Type, "service"))
	assert.Check(t, is.Equal(e.Action, "update"))
	assert.Check(t, is.Equal(e.Actor.ID, "9mnp"))
	assert.Check(t, is.Equal(e.Actor.Attributes["replicas.new"], "1"))
	assert.Check(t, is.Equal(e.Scope, "swarm"))
	assert.Check(t, e.Time().Equal(time.Unix(1764928800, 5)))

	e, err = s.Recv()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(e.Action, "die"))
	assert.Check(t, is.Equal(e.Actor.Attributes["exitCode"], "137"))

	cancel()
	_, err = s.Recv()
	assert.Check(t, is.ErrorIs(err, io.EOF), "ctx done ends the stream")
}

func TestEventsEnd(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		c := eventsEngine(t, nil, false, serviceUpdate)
		s, err := c.Events(context.Background(), engineapi.EventsOptions{})
		assert.NilError(t, err)
		_, err = s.Recv()
		assert.NilError(t, err)
		assert.NilError(t, s.Close())
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, io.EOF))
	})
	t.Run("until", func(t *testing.T) {
		c := eventsEngine(t, url.Values{"until": {"1764928802.000000000"}}, true, serviceUpdate)
		s, err := c.Events(context.Background(), engineapi.EventsOptions{Until: time.Unix(1764928802, 0)})
		assert.NilError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.NilError(t, err)
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, io.EOF))
	})
	t.Run("engine ended it", func(t *testing.T) {
		c := eventsEngine(t, nil, true, serviceUpdate)
		s, err := c.Events(context.Background(), engineapi.EventsOptions{})
		assert.NilError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.NilError(t, err)
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
	})
	t.Run("cut in an event", func(t *testing.T) {
		c := eventsEngine(t, nil, true, serviceUpdate[:40])
		s, err := c.Events(context.Background(), engineapi.EventsOptions{})
		assert.NilError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
	})
	t.Run("garbage", func(t *testing.T) {
		c := eventsEngine(t, nil, false, "<html>\n")
		s, err := c.Events(context.Background(), engineapi.EventsOptions{})
		assert.NilError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
	})
	t.Run("too long", func(t *testing.T) {
		long := `{"Type":"container","Actor":{"Attributes":{"x":"` + strings.Repeat("x", 2<<20) + `"}}}`
		c := eventsEngine(t, nil, false, long)
		s, err := c.Events(context.Background(), engineapi.EventsOptions{})
		assert.NilError(t, err)
		defer s.Close()
		_, err = s.Recv()
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
		assert.Check(t, is.ErrorContains(err, "longer than"))
	})
	t.Run("refused", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/events", query: url.Values{"filters": {`{"type":["nope"]}`}},
			status: http.StatusBadRequest, answer: `{"message":"Invalid filter 'type=nope'"}`})
		_, err := c.Events(context.Background(), engineapi.EventsOptions{Filters: engineapi.Filters{"type": {"nope"}}})
		assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument))
	})
}
