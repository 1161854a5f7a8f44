package agent

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// TestEngineImageRebuilt: a tag rebuilt with `docker build -t` behind the
// agent's back makes the instance stale with no ensure in between (the
// agent follows docker's image events); a hot ensure keeps it; force
// recreates it on the new image; a cold ensure after a stop recreates it.
func TestEngineImageRebuilt(t *testing.T) {
	testenv.RequireDocker(t)
	testenv.EnsureStubImage(t)
	tag := fmt.Sprintf("zaki/rebuild-test:%d-%d", os.Getpid(), rand.IntN(1e6))
	var built []string
	// Registered before the env's own cleanup, so that it runs after the
	// containers are gone.
	t.Cleanup(func() {
		exec.Command("docker", "rmi", tag).Run()
		for _, id := range built {
			exec.Command("docker", "rmi", id).Run()
		}
	})
	build := func(rev string) string {
		t.Helper()
		cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
		cmd.Stdin = strings.NewReader("FROM " + testenv.StubImage + "\nLABEL rev=" + rev + "\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		assert.NilError(t, cmd.Run(), "docker build: %s", stderr.String())
		id := testenv.Docker(t, "image", "inspect", "--format", "{{.Id}}", tag)
		built = append(built, id)
		return id
	}
	waitStale := func(e *engineEnv, user string) Instance {
		t.Helper()
		var in Instance
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			var err error
			if in, err = e.a.Get(context.Background(), user); err != nil {
				return poll.Error(err)
			}
			if !in.Stale {
				return poll.Continue("not stale yet")
			}
			return poll.Success()
		}, poll.WithTimeout(30*time.Second), poll.WithDelay(20*time.Millisecond))
		return in
	}

	id1 := build("1")
	e := newEngineEnv(t)
	spec := InstanceSpec{Image: tag}
	first := e.ensure("rebuild", spec)
	assert.Equal(t, first.Outcome, OutcomeCreated)
	assert.Equal(t, first.ImageID, id1)
	assert.Assert(t, !first.Stale)

	id2 := build("2")
	assert.Assert(t, id2 != id1)
	stale := waitStale(e, "rebuild")
	assert.Equal(t, stale.ImageID, id1)

	hot := e.ensure("rebuild", spec)
	assert.Equal(t, hot.Outcome, OutcomeReused)
	assert.Equal(t, hot.ContainerID, first.ContainerID)
	assert.Assert(t, hot.Stale)

	forced, err := e.a.Ensure(context.Background(), "rebuild", spec, EnsureOptions{Force: true})
	assert.NilError(t, err)
	assert.Equal(t, forced.Outcome, OutcomeRecreated)
	assert.Assert(t, forced.ContainerID != first.ContainerID)
	assert.Equal(t, forced.ImageID, id2)
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", "{{.Image}}", forced.ContainerID), id2)
	assert.Assert(t, !forced.Stale)
	assert.Equal(t, forced.Port, first.Port)

	// Rebuilt again, then cold (stopped): the next ensure recreates it.
	id3 := build("3")
	waitStale(e, "rebuild")
	_, err = e.a.Stop(context.Background(), "rebuild")
	assert.NilError(t, err)
	cold := e.ensure("rebuild", spec)
	assert.Equal(t, cold.Outcome, OutcomeRecreated)
	assert.Equal(t, cold.ImageID, id3)
	assert.Assert(t, !cold.Stale)
}
