package engineapi_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

// TestHostEngine reads from the host's engine, and only reads: this
// machine's engine must never join a swarm nor see one made by a test.
func TestHostEngine(t *testing.T) {
	testenv.RequireDocker(t)
	sock := engineapi.DefaultSocket
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	c := engineapi.New(engineapi.Config{Socket: sock})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ping, err := c.Ping(ctx)
	assert.NilError(t, err)
	assert.Check(t, ping.APIVersion != "", "ping: %+v", ping)
	v, err := c.Version(ctx)
	assert.NilError(t, err)
	assert.Check(t, v.Version != "" && v.APIVersion != "", "version: %+v", v)
	assert.Check(t, is.Equal(ping.APIVersion, v.APIVersion))
	info, err := c.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.ServerVersion, v.Version))
	assert.Check(t, info.NCPU > 0)
	t.Logf("engine %s (API %s), swarm %q", v.Version, v.APIVersion, info.Swarm.LocalNodeState)

	list, err := c.Containers(ctx, true, nil)
	assert.NilError(t, err)
	for _, ct := range list {
		assert.Check(t, ct.ID != "" && ct.State != "", "%+v", ct)
	}
	_, err = c.ContainerInspect(ctx, "zaki-engineapi-no-such-container")
	assert.Check(t, is.ErrorIs(err, errdefs.ErrNotFound))
	assert.Check(t, is.ErrorContains(err, "No such container"))
	if !info.Swarm.ControlAvailable { // a manager lists its nodes; any other engine refuses
		_, err = c.Nodes(ctx, nil)
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
	}
}
