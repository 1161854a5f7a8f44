package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// TestHTTPError maps every class to its status and code, wrapped or not,
// and the client's *Error maps back to the same class.
func TestHTTPError(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		class  error
	}{
		{errdefs.Errorf(errdefs.ErrInvalidArgument, "bad"), 400, "invalid_argument", socketapi.ErrInvalidArgument},
		{socketapi.Errorf(socketapi.ErrForbidden, "no"), 403, "forbidden", socketapi.ErrForbidden},
		{fmt.Errorf("get: %w", errdefs.Errorf(errdefs.ErrNotFound, "gone")), 404, "not_found", socketapi.ErrNotFound},
		{socketapi.Errorf(socketapi.ErrMethodNotAllowed, "PATCH"), 405, "method_not_allowed", socketapi.ErrMethodNotAllowed},
		{errdefs.Errorf(errdefs.ErrAlreadyExists, "dup"), 409, "conflict", socketapi.ErrAlreadyExists},
		{fmt.Errorf("resync: %w", errdefs.Errorf(errdefs.ErrConflict, "container not managed")), 409, "conflict", socketapi.ErrConflict},
		{fmt.Errorf("put: %w", errdefs.Errorf(registry.ErrPortConflict, "port taken")), 409, "conflict", socketapi.ErrConflict},
		{socketapi.Errorf(socketapi.ErrTooLarge, "big"), 413, "too_large", socketapi.ErrTooLarge},
		{fmt.Errorf("pick: %w: all reserved", registry.ErrNoFreePort), 503, "resource_exhausted", socketapi.ErrResourceExhausted},
		{errdefs.Errorf(errdefs.ErrDataLoss, "corrupt"), 500, "internal", socketapi.ErrInternal},
		{fmt.Errorf("instance: %w", errdefs.Errorf(errdefs.ErrInstanceFailed, "exited with code 3")), 502, "instance_failed", socketapi.ErrInstanceFailed},
		{fmt.Errorf("ensure: %w", errdefs.Errorf(errdefs.ErrPullFailed, "pull image %q: manifest unknown", "x")), 502, "pull_failed", socketapi.ErrPullFailed},
		{fmt.Errorf("ensure: %w", errdefs.Errorf(errdefs.ErrForbidden, "image not allowed")), 403, "forbidden", socketapi.ErrForbidden},
		{errdefs.Errorf(errdefs.ErrTooManyRequests, "2 running"), 429, "too_many_requests", socketapi.ErrTooManyRequests},
		{fmt.Errorf("ensure: %w", errdefs.Errorf(errdefs.ErrQuotaExceeded, "over instance.dataQuota")), 507, "quota_exceeded", socketapi.ErrQuotaExceeded},
		{fmt.Errorf("ensure: %w", errdefs.Errorf(errdefs.ErrNodeUnavailable, "node n2 is not ready: node n2 is down")), 503, "node_unavailable", socketapi.ErrNodeUnavailable},
		{fmt.Errorf("x: %w", errdefs.Errorf(errdefs.ErrUnavailable, "down")), 503, "runtime_unavailable", socketapi.ErrUnavailable},
		{errdefs.Errorf(errdefs.ErrTimeout, "slow"), 504, "timeout", socketapi.ErrTimeout},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), 504, "timeout", socketapi.ErrTimeout},
		{errors.New("disk on fire"), 500, "internal", socketapi.ErrInternal},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			status, body := socketapi.HTTPError(c.err)
			assert.Check(t, is.Equal(status, c.status))
			assert.Check(t, is.Equal(body.Error.Code, c.code))
			assert.Check(t, is.Equal(body.Error.Message, c.err.Error()))
			back := &socketapi.Error{Status: status, Code: body.Error.Code, Message: body.Error.Message}
			assert.Check(t, errors.Is(back, c.class))
			assert.Check(t, is.Equal(back.Error(), c.err.Error()))
			assert.Check(t, is.Equal(socketapi.StatusOfCode(c.code), c.status))
		})
	}
	// The wire does not tell the two classes of "conflict" apart: the
	// client's error is of both.
	back := &socketapi.Error{Status: 409, Code: "conflict"}
	assert.Check(t, errors.Is(back, socketapi.ErrConflict))
	assert.Check(t, errors.Is(back, socketapi.ErrAlreadyExists))
	// A code from a newer agent falls back on its status (503: unavailable).
	assert.Check(t, errors.Is(&socketapi.Error{Status: 503, Code: "gone_fishing"}, socketapi.ErrUnavailable))
	assert.Check(t, errors.Is(&socketapi.Error{Status: 404, Code: "gone_fishing"}, socketapi.ErrNotFound))
	assert.Check(t, errors.Is(&socketapi.Error{Status: 418, Code: "teapot"}, socketapi.ErrInternal))
}

// TestOpenAPIErrorCodes: the document's error codes are exactly the API's.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc, err := apitest.LoadDoc()
	assert.NilError(t, err)
	var inDoc []string
	for _, v := range doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum {
		inDoc = append(inDoc, v.(string))
	}
	var codes []string
	for c, status := range socketapi.Codes() {
		codes = append(codes, c)
		assert.Check(t, http.StatusText(status) != "", c)
	}
	sort.Strings(inDoc)
	sort.Strings(codes)
	assert.Check(t, is.DeepEqual(inDoc, codes))
}

// TestClientSocket: the zero client reaches $ZAKI_SOCKET, else the
// default; Socket wins.
func TestClientSocket(t *testing.T) {
	t.Setenv("ZAKI_SOCKET", "")
	var c socketapi.Client
	assert.Check(t, is.Equal(c.SocketPath(), socketapi.DefaultSocket))
	t.Setenv("ZAKI_SOCKET", "/tmp/x.sock")
	assert.Check(t, is.Equal(c.SocketPath(), "/tmp/x.sock"))
	c.Socket = "/tmp/y.sock"
	assert.Check(t, is.Equal(c.SocketPath(), "/tmp/y.sock"))
}

// TestZeroClient calls an agent with a zero Client through $ZAKI_SOCKET,
// and sees the progress of the image pull of its first ensure.
func TestZeroClient(t *testing.T) {
	e := apitest.Start(t, apitest.Options{})
	t.Setenv("ZAKI_SOCKET", e.Socket)
	var c socketapi.Client
	ctx := context.Background()
	var lines []string
	in, err := c.EnsureWithProgress(ctx, "zed", socketapi.InstanceSpec{}, func(pp socketapi.PullProgress) {
		assert.Check(t, is.Equal(pp.Image, "alpine/openclaw:latest"))
		lines = append(lines, pp.Status)
	})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, "created"))
	assert.Assert(t, len(lines) >= 3, "progress lines %q", lines)
	assert.Check(t, is.Equal(lines[0], "latest: Pulling from alpine/openclaw"))
	assert.Check(t, is.Contains(lines[len(lines)-1], "Downloaded newer image"))

	_, err = c.Get(ctx, "zeta")
	assert.Check(t, errors.Is(err, socketapi.ErrNotFound))
	var ae *socketapi.Error
	assert.Assert(t, errors.As(err, &ae))
	assert.Check(t, is.Equal(ae.Status, 404))
	assert.Check(t, is.Equal(ae.Code, "not_found"))
	assert.Check(t, is.Equal(ae.Message, `no instance for user "zeta"`))
}
