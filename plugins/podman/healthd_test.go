package podman

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// TestLockFile: one holder at a time; the lock passes on when released.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockFile(t.Context(), path)
	assert.NilError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = lockFile(ctx, path)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan error, 1)
	go func() {
		unlock2, err := lockFile(t.Context(), path)
		if err == nil {
			unlock2()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		assert.NilError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the lock was not taken within 5 s of its release")
	}
}

func TestRunsHealthchecks(t *testing.T) {
	assert.Assert(t, New(Config{Healthchecks: HealthPlugin}).runsHealthchecks())
	assert.Assert(t, !New(Config{Healthchecks: HealthEngine}).runsHealthchecks())
}
