//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestFullDisk runs the agent on a small tmpfs and fills it: every write
// fails with an error that says the disk is full, the API never shows what
// is not on disk, nothing on disk is corrupted or left half-written, the
// agent stays up, and it recovers once space is freed. Meanwhile new
// instances are refused by the free-space floor (minFreeSpace), the other
// tenants' instances are read, reused and started, and a purge works: it
// frees the tenant's data before it writes the registry.
func TestFullDisk(t *testing.T) {
	testenv.RequireDocker(t)
	l := newLedger(t, "full disk under the state dir")
	state := filepath.Join(t.TempDir(), "state")
	assert.NilError(t, os.Mkdir(state, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0750", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on the state dir (needs root): %v: %s", err, out)
	}
	// Clean-ups run last first: this one after the agent's, which removes
	// the containers that have their data dirs on it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", state).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; unmounting lazily", state, err, out)
			exec.Command("umount", "-l", state).Run()
		}
	})
	// A floor of half the file system: met at first, not once it is
	// filled, nor after the purge below frees 1 MiB of it.
	p := testenv.StartAgent(t, testenv.AgentOptions{StateDir: state, Args: append([]string{"--min-free-space=2m"}, loadTolerant...)})
	ctx := context.Background()
	for _, u := range []string{"full-a", "full-b"} {
		_, err := p.Client.Ensure(ctx, u, socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": u + "-v1"}})
		assert.NilError(t, err)
	}
	// full-p, to be purged, writes 1 MiB from inside its container.
	purged, err := p.Client.Ensure(ctx, "full-p", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	resp, err := http.Post(purged.URL+"/files/big", "application/octet-stream", strings.NewReader(strings.Repeat("p", 1<<20)))
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)

	// consistent checks that the API shows exactly what is on disk (the
	// last-used times aside: touches are written within a second, by
	// design), that the disk holds no half-written file, and that the users'
	// files are whole.
	consistent := func(t *testing.T, at string) {
		t.Helper()
		disk, err := readRegistry(state)
		if !l.checkT(t, err == nil, "%s: %v", at, err) {
			return
		}
		list, err := p.Client.List(ctx, "")
		assert.NilError(t, err)
		l.checkT(t, len(list) == len(disk.Records), "%s: API lists %d instances, registry.json holds %d", at, len(list), len(disk.Records))
		for _, in := range list {
			rec, ok := disk.Records[in.UserID]
			l.checkT(t, ok && rec.ContainerID == in.ContainerID && rec.Port == in.Port && rec.ConfigHash == in.ConfigHash &&
				(rec.DesiredHash != "" && rec.DesiredHash != rec.ConfigHash) == in.Stale,
				"%s: API shows %s as %+v, registry.json has %+v", at, in.UserID, in, rec)
		}
		filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), ".tmp-") {
				l.checkT(t, false, "%s: half-written file left: %s", at, path)
			}
			return nil
		})
		for _, u := range []string{"full-a", "full-b"} {
			b, err := os.ReadFile(filepath.Join(state, "instances", u, "openclaw.json"))
			l.checkT(t, err == nil && strings.HasPrefix(string(b), u+"-v"), "%s: %s's file: %q %v", at, u, b, err)
		}
	}
	consistent(t, "before")

	// Fill the disk.
	filler := filepath.Join(state, "filler")
	fillDisk(t, filler)
	l.fault(1)

	diskFull := func(t *testing.T, what string, err error) {
		t.Helper()
		var apiErr *socketapi.Error
		l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && apiErr.Code == socketapi.CodeResourceExhausted &&
			strings.Contains(apiErr.Message, "no space left on device"),
			"%s on a full disk: want 503 resource_exhausted saying \"no space left on device\", got %v", what, err)
	}

	// underFloor checks the refusal of a new instance by the floor.
	underFloor := func(t *testing.T, what string, err error) {
		t.Helper()
		var apiErr *socketapi.Error
		l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && apiErr.Code == socketapi.CodeResourceExhausted &&
			strings.Contains(apiErr.Message, "under minFreeSpace 2m"),
			"%s under the floor: want 503 resource_exhausted naming minFreeSpace, got %v", what, err)
	}

	t.Run("while the disk is full", func(t *testing.T) {
		_, err := p.Client.Ensure(ctx, "full-c", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-c-v1"}})
		t.Logf("ensure on a full disk: %v", err)
		underFloor(t, "ensure a new user", err)
		_, err = p.Client.Get(ctx, "full-c")
		l.checkT(t, errors.Is(err, socketapi.ErrNotFound), "full-c after its failed ensure: %v", err)
		n := 0
		for _, c := range labelled(t, p) {
			if userOf(p, c) == "full-c" {
				n++
			}
		}
		l.checkT(t, n == 0, "full-c's failed ensure left %d containers", n)
		consistent(t, "after a failed ensure of a new user")

		// A config change of a hot instance must be recorded: refused.
		_, err = p.Client.Ensure(ctx, "full-a", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-a-v2"}})
		diskFull(t, "ensure a hot instance with a new spec", err)
		consistent(t, "after a failed ensure of a hot instance")

		// The hot path needs no write.
		in, err := p.Client.Ensure(ctx, "full-a", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-a-v1"}})
		l.checkT(t, err == nil && in.Outcome == socketapi.OutcomeReused, "hot ensure on a full disk: %+v %v", in, err)
		_, err = p.Client.Touch(ctx, "full-b")
		l.checkT(t, err == nil, "touch on a full disk: %v", err)
		// Reads of the other tenants.
		for _, u := range []string{"full-a", "full-b", "full-p"} {
			in, err := p.Client.Get(ctx, u)
			l.checkT(t, err == nil && in.State == socketapi.StateRunning, "get %s on a full disk: %+v %v", u, in, err)
		}
		list, err := p.Client.List(ctx, "")
		l.checkT(t, err == nil && len(list) == 3, "list on a full disk: %d instances, %v", len(list), err)
		// An existing instance, stopped, starts again: the floor is for
		// new instances only.
		_, err = p.Client.Stop(ctx, "full-b")
		l.checkT(t, err == nil, "stop on a full disk: %v", err)
		in, err = p.Client.Ensure(ctx, "full-b", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-b-v1"}})
		l.checkT(t, err == nil && in.Outcome == socketapi.OutcomeStarted, "start a stopped instance on a full disk: %+v %v", in, err)

		// Remove: the container goes, the entry cannot: it stays, in memory
		// as on disk.
		err = p.Client.Remove(ctx, "full-b", false)
		diskFull(t, "remove", err)
		consistent(t, "after a failed remove")

		// A purge frees the tenant's data first, so that the registry
		// write that follows finds room: the user is gone, on disk too.
		err = p.Client.Remove(ctx, "full-p", true)
		l.checkT(t, err == nil, "purge on a full disk: %v", err)
		_, err = p.Client.Get(ctx, "full-p")
		l.checkT(t, errors.Is(err, socketapi.ErrNotFound), "full-p after its purge: %v", err)
		_, err = os.Lstat(filepath.Join(state, "instances", "full-p"))
		l.checkT(t, errors.Is(err, fs.ErrNotExist), "full-p's data after its purge: %v", err)
		disk, err := readRegistry(state)
		_, kept := disk.Records["full-p"]
		l.checkT(t, err == nil && !kept, "full-p's entry after its purge: kept %v, %v", kept, err)
		consistent(t, "after a purge on a full disk")
		// Still under the floor.
		_, err = p.Client.Ensure(ctx, "full-c", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-c-v1"}})
		underFloor(t, "ensure a new user after the purge", err)

		h, err := p.Client.Health(ctx)
		l.checkT(t, err == nil && h.Status == socketapi.HealthOK, "health on a full disk: %+v %v", h, err)
		l.checkT(t, p.Running(), "the agent died of the full disk")
	})

	// Free the space.
	assert.NilError(t, os.Remove(filler))

	t.Run("once space is freed", func(t *testing.T) {
		in, err := p.Client.Ensure(ctx, "full-c", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-c-v1"}})
		l.checkT(t, err == nil && in.State == socketapi.StateRunning, "ensure a new user: %v", err)
		in, err = p.Client.Ensure(ctx, "full-a", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-a-v2"}})
		l.checkT(t, err == nil && in.Stale, "ensure a hot instance with a new spec: %+v %v", in, err)
		_, err = p.Client.Ensure(ctx, "full-b", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "full-b-v1"}})
		l.checkT(t, err == nil, "ensure the user whose remove failed: %v", err)
		assert.NilError(t, p.Client.Remove(ctx, "full-b", false))
		// Touches reach the disk again.
		touched, err := p.Client.Touch(ctx, "full-c")
		assert.NilError(t, err)
		waitFor(t, 10*time.Second, "touch written", func() (bool, string) {
			disk, err := readRegistry(state)
			if err != nil {
				return false, err.Error()
			}
			return disk.Records["full-c"].LastUsedAtMs >= touched.LastUsedAtMs, fmt.Sprint(disk.Records["full-c"].LastUsedAtMs)
		})
		l.checkT(t, true, "touch written")
		consistent(t, "after recovery")
		// And a crash now loses nothing.
		p.Kill()
		p.Start()
		consistent(t, "after recovery and a restart")
	})
}

// fillDisk writes path until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	assert.NilError(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			assert.Assert(t, errors.Is(err, syscall.ENOSPC), "filling the disk: %v", err)
			break
		}
	}
	// The last partial blocks too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	var st syscall.Statfs_t
	assert.NilError(t, syscall.Statfs(filepath.Dir(path), &st))
	t.Logf("disk full: %d bytes free", st.Bavail*uint64(st.Bsize))
}
