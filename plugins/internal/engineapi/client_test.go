package engineapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

func TestPing(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, exchange{method: http.MethodGet, path: "/_ping"})
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		w.Write([]byte("OK"))
	})
	got, err := c.Ping(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, engineapi.Ping{APIVersion: "1.41", OSType: "linux"}))
}

func TestVersion(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/version", answer: `{"Platform": {"Name": ""},
		"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0"}`})
	got, err := c.Version(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, engineapi.Version{Version: "20.10.24+dfsg1", APIVersion: "1.41", MinAPIVersion: "1.12",
		Os: "linux", Arch: "amd64", KernelVersion: "6.1.0"}))
}

func TestInfo(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/info", answer: `{"ID": "X:Y", "Name": "host-1",
		"ServerVersion": "20.10.24+dfsg1", "NCPU": 2, "MemTotal": 8272408576, "CgroupVersion": "1",
		"SecurityOptions": ["name=seccomp,profile=default"],
		"Swarm": {"NodeID": "60gvrl6tm78dmak4yl7srz94v", "NodeAddr": "172.31.0.2", "LocalNodeState": "active",
		          "ControlAvailable": true, "Error": "", "RemoteManagers": [{"NodeID": "60gv", "Addr": "172.31.0.2:2377"}],
		          "Nodes": 3, "Managers": 1, "Cluster": {"ID": "c"}}}`})
	got, err := c.Info(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.Name, "host-1"))
	assert.Check(t, is.Equal(got.NCPU, 2))
	assert.Check(t, is.DeepEqual(got.Swarm, engineapi.SwarmInfo{NodeID: "60gvrl6tm78dmak4yl7srz94v", NodeAddr: "172.31.0.2",
		LocalNodeState: "active", ControlAvailable: true, Nodes: 3, Managers: 1}))
}

func TestAPIVersionOverride(t *testing.T) {
	sock := listen(t, func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, exchange{method: http.MethodGet, path: "/v1.44/version"})
		w.Write([]byte(`{"ApiVersion": "1.44"}`))
	})
	c := engineapi.New(engineapi.Config{Socket: sock, APIVersion: "1.44"})
	assert.Check(t, is.Equal(c.APIVersion(), "1.44"))
	v, err := c.Version(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(v.APIVersion, "1.44"))
}

func TestError(t *testing.T) {
	for _, tc := range []struct {
		code  int
		body  string
		class error
		text  string
	}{
		{400, `{"message":"client version 1.41 is too new"}`, errdefs.ErrInvalidArgument, "engine: client version 1.41 is too new (400)"},
		{401, `{"message":"no"}`, errdefs.ErrForbidden, "engine: no (401)"},
		{403, `{"message":"no"}`, errdefs.ErrForbidden, "engine: no (403)"},
		{404, `{"message":"No such container: x"}`, errdefs.ErrNotFound, "engine: No such container: x (404)"},
		{409, `{"message":"Container x is paused"}`, errdefs.ErrConflict, "engine: Container x is paused (409)"},
		{429, ``, errdefs.ErrTooManyRequests, "engine: Too Many Requests (429)"},
		{500, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`, errdefs.ErrConflict, "engine: rpc error: code = Unknown desc = update out of sequence (500)"},
		{500, `{"message":"boom"}`, errdefs.ErrUnavailable, "engine: boom (500)"},
		{503, "not json\n", errdefs.ErrUnavailable, "engine: not json (503)"},
		{302, ``, errdefs.ErrUnavailable, "engine: Found (302)"},
		{400, `{"message":"bad value hunter22 in X=hunter22, y=1"}`, errdefs.ErrInvalidArgument, "engine: bad value <redacted> in X=<redacted>, y=1 (400)"},
	} {
		err := engineapi.Error(tc.code, []byte(tc.body), []string{"hunter22", "1"})
		assert.Check(t, is.Equal(errdefs.Class(err), tc.class), "%d %s", tc.code, tc.body)
		assert.Check(t, is.Error(err, tc.text))
	}
}

func TestDialFailure(t *testing.T) {
	c := engineapi.New(engineapi.Config{Socket: filepath.Join(t.TempDir(), "none.sock")})
	_, err := c.Version(context.Background())
	assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
}

func TestContextEnds(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err := c.Info(ctx)
	assert.Check(t, is.ErrorIs(err, context.Canceled))
	assert.Check(t, errdefs.Class(err) == nil, "a canceled call is not the engine's fault: %v", err)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = c.Info(ctx)
	assert.Check(t, is.Equal(errdefs.Class(err), errdefs.ErrTimeout), "%v", err)
}

func TestMaxResponse(t *testing.T) {
	sock := listen(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"Version": "` + strings.Repeat("x", 100) + `"}`))
	})
	c := engineapi.New(engineapi.Config{Socket: sock, MaxResponse: 64})
	_, err := c.Version(context.Background())
	assert.Check(t, is.ErrorIs(err, errdefs.ErrResourceExhausted))
}

func TestBadAnswer(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/info", answer: `{"Swarm": "no"}`})
	_, err := c.Info(context.Background())
	assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
}

func TestFilters(t *testing.T) {
	var f engineapi.Filters
	f = f.Add("label", "a=1").Add("label", "b").Add("name", "x")
	assert.Check(t, is.DeepEqual(f, engineapi.Filters{"label": {"a=1", "b"}, "name": {"x"}}))
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/containers/json",
		query:  url.Values{"all": {"1"}, "filters": {`{"label":["a=1","b"],"name":["x"]}`}},
		answer: `[]`})
	got, err := c.Containers(context.Background(), true, f)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0))
}

func TestNoRedirect(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1.41/containers/x/json", http.StatusMovedPermanently)
	})
	_, err := c.ContainerInspect(context.Background(), "x y")
	assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
	assert.Check(t, !errors.Is(err, errdefs.ErrNotFound))
}
