package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// A tenant that writes past its quota from inside its container (the
// stand-in gateway's POST /files, into its data mount) is stopped by the
// next measurement with its container and data kept, refused while over,
// and runs again once its data is under the quota; another tenant is
// untouched.
func TestEngineDataQuota(t *testing.T) {
	e := newEngineEnv(t, func(c *Config) { c.Instance.DataQuota = "2m" })
	ctx := context.Background()
	in := e.ensure("quota-writer", InstanceSpec{})
	other := e.ensure("quota-other", InstanceSpec{})

	chunk := strings.Repeat("z", 1<<20)
	for i := range 3 {
		httpDo(t, "POST", fmt.Sprintf("%s/files/chunk-%d", in.URL, i), chunk)
	}
	e.a.measureAll(ctx)

	got, err := e.a.Get(ctx, "quota-writer")
	assert.NilError(t, err)
	assert.Check(t, got.DataBytes >= 3<<20, "dataBytes %d", got.DataBytes)
	assert.Check(t, is.Equal(got.State, StateStopped))
	assert.Check(t, is.Equal(testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", in.ContainerID), "false"), "the engine still runs it")
	dir := filepath.Join(e.cfg.StateDir, "instances", "quota-writer")
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("chunk-%d", i)))
		assert.Check(t, err == nil && len(b) == 1<<20, "chunk %d kept: %d bytes, %v", i, len(b), err)
	}
	assert.Check(t, is.Equal(testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", other.ContainerID), "true"), "another tenant stopped")

	_, err = e.a.Ensure(ctx, "quota-writer", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrQuotaExceeded), "ensure over the quota: %v", err)
	assert.Check(t, is.Equal(testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", in.ContainerID), "false"))

	// The operator deletes some of it: under the quota, the same
	// container starts again with the rest of the data.
	assert.NilError(t, os.Remove(filepath.Join(dir, "chunk-0")))
	assert.NilError(t, os.Remove(filepath.Join(dir, "chunk-1")))
	again, err := e.a.Ensure(ctx, "quota-writer", InstanceSpec{}, EnsureOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Outcome, OutcomeStarted))
	assert.Check(t, is.Equal(again.ContainerID, in.ContainerID))
	assert.Check(t, is.Equal(httpDo(t, "GET", again.URL+"/files/chunk-2", ""), chunk))
}
