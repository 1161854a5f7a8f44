package socketapi_test

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestEngineConflictsAndExhaustion: what stands in an ensure's way on a
// real host reaches the API with its class, never as a 500. The agent has
// two host ports.
//
//   - a container named zaki-user-<id> that zaki-agent does not manage
//     (no labels): 409 conflict, naming it;
//   - a labelled container of another user claiming a port that is
//     reserved already: 409 conflict;
//   - a new user when every port is reserved: 503 resource_exhausted.
func TestEngineConflictsAndExhaustion(t *testing.T) {
	en := startEngineWithPorts(t, 2)
	image := testenv.EnsureStubImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := en.Client

	// The name of an unmanaged container.
	stray := en.user("stray")
	strayName := "zaki-user-" + stray
	dockerCreate(t, strayName, image)
	_, err := c.Ensure(ctx, stray, socketapi.InstanceSpec{})
	wantAPIError(t, err, http.StatusConflict, socketapi.CodeConflict, socketapi.ErrConflict)
	assert.Check(t, is.ErrorContains(err, "container "+strayName+" exists but is not managed by zaki-agent"))
	assert.Check(t, dockerInspect(t, strayName) != nil, "the unmanaged container must be left alone")

	// A labelled container whose port is another user's.
	owner := en.user("owner")
	in, err := c.Ensure(ctx, owner, socketapi.InstanceSpec{})
	assert.NilError(t, err)
	t.Cleanup(func() { c.Remove(context.Background(), owner, true) })
	squatter := en.user("squatter")
	dockerCreate(t, "zaki-user-"+squatter, image,
		"--label", en.prefix+".instance=1",
		"--label", en.prefix+".userId="+squatter,
		"--label", en.prefix+".port="+strconv.Itoa(in.Port))
	_, err = c.Ensure(ctx, squatter, socketapi.InstanceSpec{})
	wantAPIError(t, err, http.StatusConflict, socketapi.CodeConflict, socketapi.ErrConflict)
	assert.Check(t, is.ErrorContains(err, "port "+strconv.Itoa(in.Port)+" is reserved by user \""+owner+"\""))

	// The second port, then none.
	second := en.user("second")
	_, err = c.Ensure(ctx, second, socketapi.InstanceSpec{})
	assert.NilError(t, err)
	t.Cleanup(func() { c.Remove(context.Background(), second, true) })
	_, err = c.Ensure(ctx, en.user("third"), socketapi.InstanceSpec{})
	wantAPIError(t, err, http.StatusServiceUnavailable, socketapi.CodeResourceExhausted, socketapi.ErrResourceExhausted)
	assert.Check(t, is.ErrorContains(err, "no free port"))
}

// dockerCreate creates (does not start) a container of image, removed
// when the test ends.
func dockerCreate(t *testing.T, name, image string, args ...string) {
	t.Helper()
	args = append(append([]string{"create", "--name", name}, args...), image)
	out, err := exec.Command("docker", args...).CombinedOutput()
	assert.NilError(t, err, "docker create: %s", out)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
}

// wantAPIError checks that err is the API's answer of that status, code
// and class.
func wantAPIError(t *testing.T, err error, status int, code string, class error) {
	t.Helper()
	var ae *socketapi.Error
	assert.Assert(t, errors.As(err, &ae), "got %v, want an API error", err)
	assert.Check(t, is.Equal(ae.Status, status), ae.Message)
	assert.Check(t, is.Equal(ae.Code, code), ae.Message)
	assert.Check(t, errors.Is(err, class))
}
