package engineapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

func TestServiceLogs(t *testing.T) {
	tail := 1
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, exchange{method: http.MethodGet, path: "/v1.41/services/9mnp/logs", query: url.Values{
			"stdout": {"1"}, "stderr": {"1"}, "timestamps": {"1"}, "tail": {"1"}}})
		w.Write(frame(engineapi.Stdout, "out 1\n"))
		w.Write(frame(engineapi.Stderr, "err 1\n"))
	})
	rc, err := c.ServiceLogs(context.Background(), "9mnp", engineapi.LogsOptions{Timestamps: true, Tail: &tail})
	assert.NilError(t, err)
	b, err := io.ReadAll(engineapi.Merge(rc))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "out 1\nerr 1\n"))
}

func TestServiceLogsErrors(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/services/nope/logs",
		query:  url.Values{"stdout": {"1"}, "stderr": {"1"}},
		status: http.StatusNotFound, answer: `{"message":"service nope not found"}`})
	_, err := c.ServiceLogs(context.Background(), "nope", engineapi.LogsOptions{})
	assert.Check(t, is.ErrorIs(err, errdefs.ErrNotFound))
	_, err = c.ServiceLogs(context.Background(), "../x", engineapi.LogsOptions{})
	assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument))
}

func TestPullImage(t *testing.T) {
	c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/images/create",
		query: url.Values{"fromImage": {"127.0.0.1:5000/zaki/x:v1"}},
		answer: `{"status":"Pulling from zaki/x","id":"v1"}
{"status":"Downloading","id":"abc","progress":"[=> ]"}
{"status":"Status: Downloaded newer image for 127.0.0.1:5000/zaki/x:v1"}
`})
	var got []engineapi.PullStatus
	err := c.PullImage(context.Background(), "127.0.0.1:5000/zaki/x:v1", func(s engineapi.PullStatus) { got = append(got, s) })
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 3))
	assert.Check(t, is.DeepEqual(got[1], engineapi.PullStatus{ID: "abc", Status: "Downloading", Progress: "[=> ]"}))
}

func TestPullImageFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		answer string
		class  error
	}{
		{"in the stream", 0, `{"status":"Pulling"}` + "\n" + `{"error":"manifest for x:v9 not found","errorDetail":{"message":"manifest for x:v9 not found"}}`, errdefs.ErrNotFound},
		{"broken stream", 0, `{"status":`, errdefs.ErrUnavailable},
		{"refused", http.StatusNotFound, `{"message":"pull access denied for x"}`, errdefs.ErrNotFound},
		{"engine error", http.StatusInternalServerError, `{"message":"Get https://r/v2/: dial tcp: i/o timeout"}`, errdefs.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/images/create",
				query: url.Values{"fromImage": {"x:v9"}}, status: tc.status, answer: tc.answer})
			err := c.PullImage(context.Background(), "x:v9", nil)
			assert.Check(t, is.ErrorIs(err, tc.class), "got %v", err)
		})
	}
	c := engineapi.New(engineapi.Config{Socket: "/nonexistent"})
	assert.Check(t, is.ErrorIs(c.PullImage(context.Background(), "-x", nil), errdefs.ErrInvalidArgument))
}
