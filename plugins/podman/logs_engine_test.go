package podman_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/podman"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// TestLogBound: a chatty container's k8s-file log stays within
// Log.MaxSize on the real podman (conmon empties its one file at the
// size; max-file has no meaning there), and reads back as one file.
func TestLogBound(t *testing.T) {
	prefix := engine(t)
	t.Parallel()
	p := podman.New(podman.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	name := prefix + "-chatty"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	const maxSize = 1 << 20
	// The stand-in writes 6 MB on stdout and as much on stderr, then exits.
	id, err := p.Create(ctx, runtime.ContainerSpec{
		Name: name, Image: testenv.StubImage, Cmd: []string{"-exec", "spam", "6000000"},
		Log: runtime.LogConfig{MaxSize: "1m", MaxFiles: 3},
	})
	assert.NilError(t, err)
	c, err := p.Inspect(ctx, id)
	assert.NilError(t, err)
	assert.DeepEqual(t, c.Spec.Log, runtime.LogConfig{MaxSize: strconv.Itoa(maxSize), MaxFiles: 1})
	assert.NilError(t, p.Start(ctx, id))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		c, err := p.Inspect(ctx, id)
		if err != nil {
			return poll.Error(err)
		}
		if c.Running() {
			return poll.Continue("still writing")
		}
		return poll.Success()
	}, poll.WithTimeout(90*time.Second))
	path := strings.TrimSpace(podmanRun(t, "inspect", "--format", "{{.HostConfig.LogConfig.Path}}", id))
	fi, err := os.Stat(path)
	assert.NilError(t, err)
	assert.Assert(t, fi.Size() <= maxSize, "%s: %d bytes", path, fi.Size())
}
