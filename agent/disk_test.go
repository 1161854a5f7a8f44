package agent

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
)

// usageOf measures dir and fails the test on an error.
func usageOf(t *testing.T, dir string) (int64, bool) {
	t.Helper()
	n, complete, err := dirUsage(context.Background(), dir)
	assert.NilError(t, err)
	return n, complete
}

func writeBytes(t *testing.T, path string, n int) {
	t.Helper()
	assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	assert.NilError(t, os.WriteFile(path, make([]byte, n), 0o600))
}

// The measurement counts allocated blocks: real data in full, a hard link
// once, a sparse file's holes not at all, a symlink as itself (never what
// it points to), nothing beyond a mount, and says when it stopped short.
func TestDirUsage(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	n, complete := usageOf(t, dir)
	assert.Check(t, n == 0 && complete, "a missing dir: %d %v", n, complete)

	assert.NilError(t, os.Mkdir(dir, 0o700))
	empty, _ := usageOf(t, dir)

	writeBytes(t, filepath.Join(dir, "a", "b", "big"), 1<<20)
	withFile, complete := usageOf(t, dir)
	assert.Check(t, complete)
	assert.Check(t, withFile-empty >= 1<<20, "1 MiB written: %d more bytes", withFile-empty)
	assert.Check(t, withFile-empty < 1<<20+64<<10, "1 MiB written: %d more bytes", withFile-empty)

	// A second name of the same file costs nothing more.
	assert.NilError(t, os.Link(filepath.Join(dir, "a", "b", "big"), filepath.Join(dir, "big-again")))
	linked, _ := usageOf(t, dir)
	assert.Check(t, is.Equal(linked, withFile), "a hard link counted twice")

	// A sparse file of 1 GiB takes (almost) nothing.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	assert.NilError(t, err)
	assert.NilError(t, f.Truncate(1<<30))
	f.Close()
	sparse, _ := usageOf(t, dir)
	assert.Check(t, sparse-linked < 64<<10, "a sparse file counted as %d bytes", sparse-linked)

	// A symlink to a large file outside is not followed.
	writeBytes(t, filepath.Join(root, "outside"), 4<<20)
	assert.NilError(t, os.Symlink(filepath.Join(root, "outside"), filepath.Join(dir, "link")))
	assert.NilError(t, os.Symlink(root, filepath.Join(dir, "dirlink")))
	symlinked, complete := usageOf(t, dir)
	assert.Check(t, complete)
	assert.Check(t, symlinked-sparse < 64<<10, "symlinks counted as %d bytes", symlinked-sparse)

	t.Run("deeper than the walk goes", func(t *testing.T) {
		deep := filepath.Join(root, "deep")
		p := deep
		for range maxWalkDepth + 2 {
			p = filepath.Join(p, "d")
		}
		// Paths past PATH_MAX: make it relative, a level at a time.
		assert.NilError(t, os.MkdirAll(deep, 0o700))
		fd, err := syscall.Open(deep, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		assert.NilError(t, err)
		for range maxWalkDepth + 2 {
			assert.NilError(t, syscall.Mkdirat(fd, "d", 0o700))
			next, err := syscall.Openat(fd, "d", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			assert.NilError(t, err)
			syscall.Close(fd)
			fd = next
		}
		syscall.Close(fd)
		_, complete := usageOf(t, deep)
		assert.Check(t, !complete, "a tree deeper than %d levels reported complete", maxWalkDepth)
	})

	t.Run("a mount is not crossed", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mounting a tmpfs needs root")
		}
		mnt := filepath.Join(dir, "mnt")
		assert.NilError(t, os.Mkdir(mnt, 0o700))
		before, _ := usageOf(t, dir)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Skipf("mount a tmpfs: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		writeBytes(t, filepath.Join(mnt, "on-the-mount"), 4<<20)
		after, _ := usageOf(t, dir)
		assert.Check(t, after-before < 64<<10, "the mount's 4 MiB counted: %d more bytes", after-before)
	})
}

// userDir is user's data dir in the env's state dir.
func (e *fakeEnv) userDir(user string) string {
	return filepath.Join(e.cfg.StateDir, "instances", user)
}

// An instance whose data goes over the quota is stopped by the next
// measurement (its container and data kept, an event says why), its
// ensure and restart are refused with quota_exceeded while it stays over,
// other tenants are untouched, and it runs again once under the quota
// (data deleted, or the quota raised).
func TestDataQuota(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.DataQuota = "1m" })
	ctx := context.Background()
	spec := InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}}
	alice := e.ensure("quota-alice", spec)
	e.ensure("quota-bob", spec)
	sub := e.a.Subscribe(64)
	defer sub.Close()

	e.a.measureAll(ctx)
	in, err := e.a.Get(ctx, "quota-alice")
	assert.NilError(t, err)
	assert.Check(t, in.DataBytes > 0 && in.DataBytes < 1<<20, "alice's data measured: %d bytes", in.DataBytes)
	assert.Check(t, is.Equal(in.State, StateRunning))

	// The tenant writes 2 MiB.
	big := filepath.Join(e.userDir("quota-alice"), "workspace", "big")
	writeBytes(t, big, 2<<20)
	e.a.measureAll(ctx)
	in, err = e.a.Get(ctx, "quota-alice")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.State, StateStopped), "over the quota")
	assert.Check(t, in.DataBytes > 2<<20, "dataBytes %d", in.DataBytes)
	assert.Check(t, is.Equal(in.ContainerID, alice.ContainerID), "the container is kept")
	_, err = os.Stat(big)
	assert.Check(t, err, "the data is kept")
	bob, err := e.a.Get(ctx, "quota-bob")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(bob.State, StateRunning), "another tenant")

	ev := waitEventOf(t, sub, EventStopped, "quota-alice")
	assert.Check(t, is.Equal(ev.Message, ReasonOverQuota))
	metrics := scrape(t, e.a)
	assert.Check(t, is.Contains(metrics, "zaki_instances_over_quota 1"))
	assert.Check(t, is.Contains(metrics, "zaki_data_bytes "))

	// Refused while over, and nothing runs.
	_, err = e.a.Ensure(ctx, "quota-alice", spec, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrQuotaExceeded), "ensure over the quota: %v", err)
	assert.Check(t, is.ErrorContains(err, "instance.dataQuota 1m"))
	_, err = e.a.Restart(ctx, "quota-alice")
	assert.Check(t, errors.Is(err, errdefs.ErrQuotaExceeded), "restart over the quota: %v", err)
	in, _ = e.a.Get(ctx, "quota-alice")
	assert.Check(t, is.Equal(in.State, StateStopped))
	assert.Check(t, strings.Contains(scrape(t, e.a), `zaki_ensure_total{outcome="error_quota_exceeded"} 1`))

	// Under the quota again: the ensure measures anew and starts it.
	assert.NilError(t, os.Remove(big))
	in, err = e.a.Ensure(ctx, "quota-alice", spec, EnsureOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, OutcomeStarted))
	assert.Check(t, in.DataBytes < 1<<20, "dataBytes %d", in.DataBytes)
	assert.Check(t, strings.Contains(scrape(t, e.a), "zaki_instances_over_quota 0"))

	// Over again, then the quota raised by a reload: runs without a
	// byte deleted.
	writeBytes(t, big, 2<<20)
	e.a.measureAll(ctx)
	e.waitState("quota-alice", StateStopped)
	next := e.a.Config()
	next.Instance.DataQuota = "10m"
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	in, err = e.a.Ensure(ctx, "quota-alice", spec, EnsureOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, OutcomeStarted))

	// Off: nothing is stopped.
	next.Instance.DataQuota = ""
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	writeBytes(t, big, 12<<20)
	e.a.measureAll(ctx)
	in, _ = e.a.Get(ctx, "quota-alice")
	assert.Check(t, is.Equal(in.State, StateRunning), "quota off")
}

// A running instance found over the quota by its own ensure (the loop not
// yet round) is stopped there and refused; one removed while over (by
// pruning, say) is refused when made again.
func TestDataQuotaHeldAcrossRemoval(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.DataQuota = "1m" })
	ctx := context.Background()
	e.ensure("quota-carol", InstanceSpec{})
	writeBytes(t, filepath.Join(e.userDir("quota-carol"), "big"), 2<<20)
	// Measured (as the loop would) without its stop.
	_, err := e.a.measureUser(ctx, "quota-carol")
	assert.NilError(t, err)
	in, _ := e.a.Get(ctx, "quota-carol")
	assert.Check(t, is.Equal(in.State, StateRunning))
	_, err = e.a.Ensure(ctx, "quota-carol", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrQuotaExceeded), "%v", err)
	in, _ = e.a.Get(ctx, "quota-carol")
	assert.Check(t, is.Equal(in.State, StateStopped), "stopped by the refused ensure")

	assert.NilError(t, e.a.Remove(ctx, "quota-carol", false))
	e.a.measureAll(ctx)
	_, err = e.a.Ensure(ctx, "quota-carol", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrQuotaExceeded), "made again while over: %v", err)
	_, err = e.a.Get(ctx, "quota-carol")
	assert.Check(t, errors.Is(err, errdefs.ErrNotFound))

	// A purge deletes the data, and with it the refusal.
	assert.NilError(t, e.a.Remove(ctx, "quota-carol", true))
	e.ensure("quota-carol", InstanceSpec{})
}

// Under the free-space floor new instances are refused, with nothing
// made; existing ones still start and are reused, reads and purges work.
func TestFreeSpaceFloor(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.MinFreeSpace = "1g" })
	ctx := context.Background()
	e.ensure("floor-old", InstanceSpec{})
	e.ensure("floor-stopped", InstanceSpec{})
	_, err := e.a.Stop(ctx, "floor-stopped")
	assert.NilError(t, err)
	e.ensure("floor-purged", InstanceSpec{})

	free := uint64(100 << 20)
	e.a.freeSpace = func(path string) (uint64, error) {
		assert.Check(t, is.Equal(path, filepath.Join(e.cfg.StateDir, "instances")))
		return free, nil
	}
	creates := e.fake.Calls("Create")
	_, err = e.a.Ensure(ctx, "floor-new", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, errors.Is(err, errdefs.ErrResourceExhausted), "a new instance under the floor: %v", err)
	assert.Check(t, is.ErrorContains(err, "minFreeSpace 1g"))
	assert.Check(t, is.Equal(e.fake.Calls("Create"), creates), "a container was made")
	_, err = e.a.Get(ctx, "floor-new")
	assert.Check(t, errors.Is(err, errdefs.ErrNotFound))
	_, err = os.Lstat(e.userDir("floor-new"))
	assert.Check(t, errors.Is(err, os.ErrNotExist), "a data dir was made: %v", err)

	in, err := e.a.Ensure(ctx, "floor-old", InstanceSpec{}, EnsureOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, OutcomeReused))
	in, err = e.a.Ensure(ctx, "floor-stopped", InstanceSpec{}, EnsureOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, OutcomeStarted))
	_, err = e.a.List(ctx, "")
	assert.NilError(t, err)
	assert.NilError(t, e.a.Remove(ctx, "floor-purged", true))

	// Off, or space freed: made.
	next := e.a.Config()
	next.MinFreeSpace = "0"
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	e.ensure("floor-new", InstanceSpec{})
	next.MinFreeSpace = "1g"
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	free = 2 << 30
	e.ensure("floor-new-2", InstanceSpec{})
}

// A purge deletes the data before it writes the registry, so that on a
// full disk the write finds the room the data freed.
func TestPurgeFreesSpaceBeforeWriting(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	e.ensure("purge-full", InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}})
	dir := e.userDir("purge-full")
	// The disk is full for as long as the user's data is there.
	fault := func(file string, step registry.WriteStep) error {
		if _, err := os.Lstat(dir); err == nil {
			return syscall.ENOSPC
		}
		return nil
	}
	e.fault.Store(&fault)
	assert.NilError(t, e.a.Remove(ctx, "purge-full", true))
	_, err := e.a.Get(ctx, "purge-full")
	assert.Check(t, errors.Is(err, errdefs.ErrNotFound))
	_, err = os.Lstat(dir)
	assert.Check(t, errors.Is(err, os.ErrNotExist))
	assert.Check(t, is.Len(e.fake.Containers(), 0))
}

// waitEventOf waits for an event of type typ for user.
func waitEventOf(t *testing.T, sub *Subscription, typ, user string) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			if ev.Type == typ && ev.UserID == user {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s", typ, user)
		}
	}
}

func TestConfigDiskKeys(t *testing.T) {
	for _, bad := range []struct{ quota, floor string }{{"lots", ""}, {"", "-1g"}, {"10x", "1g"}} {
		c := DefaultConfig()
		c.Instance.DataQuota, c.MinFreeSpace = bad.quota, bad.floor
		assert.Check(t, c.Validate() != nil, "%+v accepted", bad)
	}
	for _, good := range []string{"", "0", "512m", "1.5g"} {
		c := DefaultConfig()
		c.Instance.DataQuota, c.MinFreeSpace = good, good
		assert.Check(t, c.Validate(), "%q refused", good)
	}
	c := DefaultConfig()
	assert.Check(t, is.Equal(c.dataQuota(), int64(10<<30)))
	assert.Check(t, is.Equal(c.minFree(), int64(1<<30)))
}

// scrape returns the agent's metrics in the text format.
func scrape(t *testing.T, a *Agent) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(a.metrics.Gatherer(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// The users the registry holds at start are measured once the agent is
// ready: a restart does not lift the quota for a prune interval.
func TestDataQuotaAfterRestart(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.DataQuota = "1m" })
	e.ensure("quota-dave", InstanceSpec{})
	writeBytes(t, filepath.Join(e.userDir("quota-dave"), "big"), 2<<20)
	e.restart()
	e.waitState("quota-dave", StateStopped)
	in, err := e.a.Get(context.Background(), "quota-dave")
	assert.NilError(t, err)
	assert.Check(t, in.DataBytes > 2<<20, "dataBytes %d", in.DataBytes)
}

// A measurement begun before the one recorded is dropped (an ensure's and
// the loop's may overlap); the count of users over the quota follows.
func TestDiskUsagePut(t *testing.T) {
	var d diskUsage
	d.put("u", dataUsage{Bytes: 10, AtMs: 2, Over: true})
	assert.Check(t, d.isOver("u"))
	d.put("u", dataUsage{Bytes: 1, AtMs: 1})
	assert.Check(t, d.isOver("u"), "an older measurement replaced a newer one")
	d.put("u", dataUsage{Bytes: 1, AtMs: 3})
	assert.Check(t, !d.isOver("u"))
	d.put("v", dataUsage{Bytes: 5, AtMs: 1, Over: true})
	bytes, over := d.totals()
	assert.Check(t, is.Equal(bytes, int64(6)))
	assert.Check(t, is.Equal(over, int64(1)))
	d.drop("v")
	_, over = d.totals()
	assert.Check(t, is.Equal(over, int64(0)))
}
