package podman_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/podman"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// TestRunHealthchecks runs the plugin's healthcheck runner in process
// (under -race too): a container started before Run and one started
// after it both turn healthy, by podman's own `healthcheck run`, on a
// host where podman's systemd timers cannot run; a container whose check
// fails turns unhealthy.
func TestRunHealthchecks(t *testing.T) {
	prefix := engine(t)
	t.Parallel()
	p := podman.New(podman.Config{Healthchecks: podman.HealthPlugin, HealthLock: filepath.Join(t.TempDir(), "health.lock")})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	create := func(name string, test []string) string {
		t.Helper()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		id, err := p.Create(ctx, runtime.ContainerSpec{
			Name: name, Image: testenv.StubImage,
			Cmd:         []string{"-data", "/tmp"},
			Healthcheck: &runtime.Healthcheck{Test: test, Interval: time.Second, Timeout: 3 * time.Second, Retries: 1},
		})
		assert.NilError(t, err)
		assert.NilError(t, p.Start(ctx, id))
		return id
	}
	before := create(prefix+"-hc-before", []string{"/gateway-stub", "-probe"})

	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30 s of its ctx's end")
		}
	}()

	after := create(prefix+"-hc-after", []string{"/gateway-stub", "-probe"})
	failing := create(prefix+"-hc-failing", []string{"/gateway-stub", "-probe", "-addr", "127.0.0.1:1"})
	for id, want := range map[string]string{before: "healthy", after: "healthy", failing: "unhealthy"} {
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			c, err := p.Inspect(ctx, id)
			if err != nil {
				return poll.Error(err)
			}
			switch c.Health {
			case want:
				return poll.Success()
			case "starting", "healthy", "unhealthy":
				return poll.Continue("health of %s: %q", c.Name, c.Health)
			}
			return poll.Error(fmt.Errorf("health of %s: %q", c.Name, c.Health))
		}, poll.WithTimeout(90*time.Second), poll.WithDelay(250*time.Millisecond))
	}
	info, err := p.Info(ctx)
	assert.NilError(t, err)
	assert.Equal(t, info.Runtime, "podman")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if info, err := p.Info(ctx); err != nil || info.CgroupVersion == "" {
			return poll.Continue("Info without the host facts yet: %+v %v", info, err)
		}
		return poll.Success()
	}, poll.WithTimeout(90*time.Second), poll.WithDelay(250*time.Millisecond))
}
