package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Disk: what each user's data takes (measured in the background, in user
// space: the machines the agent runs on need not have project quotas),
// the per-user quota (instance.dataQuota) and the free-space floor of the
// state dir's file system (minFreeSpace).

// ReasonOverQuota is the message of the instance.stopped event of an
// instance stopped because its data went over instance.dataQuota.
const ReasonOverQuota = "over-quota"

// measureWorkers bounds the data dirs measured at once: a walk is disk
// I/O the instances compete for.
const measureWorkers = 2

// maxWalkDepth bounds how deep a walk descends (it holds one open
// directory per level). Anything deeper is not counted and the
// measurement is logged as incomplete.
const maxWalkDepth = 256

// dataUsage is one measurement of a user's data dir.
type dataUsage struct {
	Bytes int64 // allocated blocks (st_blocks*512), each hard-linked inode once
	AtMs  int64 // when it was begun
	// Running says the container ran when it was taken: a stopped
	// instance measured since it stopped is not measured again (nothing
	// writes in its dir) until it runs.
	Running bool
	// Over says Bytes was over the quota in force when it was taken: the
	// one thing a hot ensure looks at (the quota is compared again, and
	// the dir measured again, only then).
	Over bool
}

// diskUsage holds the last measurement of each user with a record, and of
// each user without one (removed without purge) found over the quota.
type diskUsage struct {
	m    sync.Map // userID -> dataUsage
	over atomic.Int64
}

func (d *diskUsage) get(userID string) (dataUsage, bool) {
	v, ok := d.m.Load(userID)
	if !ok {
		return dataUsage{}, false
	}
	return v.(dataUsage), true
}

// bytes returns userID's last measured usage, 0 when not measured yet.
func (d *diskUsage) bytes(userID string) int64 {
	u, _ := d.get(userID)
	return u.Bytes
}

// put records u unless a measurement begun later is recorded already
// (the background walk and an ensure's may overlap).
func (d *diskUsage) put(userID string, u dataUsage) {
	for {
		prev, loaded := d.m.Load(userID)
		if !loaded {
			if _, loaded = d.m.LoadOrStore(userID, u); loaded {
				continue
			}
		} else if prev.(dataUsage).AtMs > u.AtMs {
			return
		} else if !d.m.CompareAndSwap(userID, prev, u) {
			continue
		}
		if loaded && prev.(dataUsage).Over {
			d.over.Add(-1)
		}
		if u.Over {
			d.over.Add(1)
		}
		return
	}
}

func (d *diskUsage) drop(userID string) {
	if prev, loaded := d.m.LoadAndDelete(userID); loaded && prev.(dataUsage).Over {
		d.over.Add(-1)
	}
}

// isOver reports whether userID was over its quota when last measured:
// what a hot ensure costs (one atomic load while nobody is over).
func (d *diskUsage) isOver(userID string) bool {
	if d.over.Load() == 0 {
		return false
	}
	u, _ := d.get(userID)
	return u.Over
}

// totals returns the bytes of every measured user and how many are over.
func (d *diskUsage) totals() (bytes int64, over int64) {
	d.m.Range(func(_, v any) bool {
		bytes += v.(dataUsage).Bytes
		return true
	})
	return bytes, d.over.Load()
}

// optionalSize parses a size key where "" and 0 mean off (0).
func optionalSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := runtime.ParseBytes(s)
	if err != nil || n < 0 {
		return 0, errors.New("want a size like 10g, or \"\" or 0 for off")
	}
	return n, nil
}

func (c *Config) checkDisk(p *problems) {
	if _, err := optionalSize(c.MinFreeSpace); err != nil {
		p.add("minFreeSpace %q: %v", c.MinFreeSpace, err)
	}
	if _, err := optionalSize(c.Instance.DataQuota); err != nil {
		p.add("instance.dataQuota %q: %v", c.Instance.DataQuota, err)
	}
}

// dataQuota is the quota of one user's data, 0 when off.
func (c *Config) dataQuota() int64 {
	n, _ := optionalSize(c.Instance.DataQuota)
	return n
}

// minFree is the free-space floor, 0 when off.
func (c *Config) minFree() int64 {
	n, _ := optionalSize(c.MinFreeSpace)
	return n
}

// diskLoop measures the data dirs of the users the registry held at start
// once the agent is ready (so that the quota holds across restarts), then
// every user's every prune interval; a user made since start is measured
// at the first interval. It is not watched by the liveness check: a walk
// of a large tree may take longer than its bound, and nothing else waits
// on it.
func (a *Agent) diskLoop(ctx context.Context) {
	if a.cluster != nil {
		return // the users' data lives on the nodes (see checkRuntime)
	}
	known := a.reg.List()
	select {
	case <-a.ready:
	case <-ctx.Done():
		return
	}
	a.measureUsers(ctx, known)
	for ctxwait.Sleep(ctx, minutes(a.conf().Prune.IntervalMinutes)) {
		a.measureAll(ctx)
	}
}

// measureAll measures the data dir of every user with a record (see
// measureUsers), and forgets the users removed since.
func (a *Agent) measureAll(ctx context.Context) {
	recs := a.reg.List()
	a.measureUsers(ctx, recs)
	users := make(map[string]bool, len(recs))
	for _, rec := range recs {
		users[rec.UserID] = true
	}
	// Forget the users removed since (pruned, say), except those over
	// the quota: their data is still there, and an ensure that makes
	// their instance again is refused as before.
	a.usage.m.Range(func(k, v any) bool {
		if id := k.(string); !users[id] && !v.(dataUsage).Over {
			if _, ok := a.reg.Get(id); !ok {
				a.usage.drop(id)
			}
		}
		return true
	})
}

// measureUsers measures the data dirs of recs' users (a stopped one only
// when it has not been measured since it ran), at most measureWorkers at
// once, and stops the running instances over the quota.
func (a *Agent) measureUsers(ctx context.Context, recs []registry.Record) {
	sem := make(chan struct{}, measureWorkers)
	var wg sync.WaitGroup
	for _, rec := range recs {
		running := a.liveOf(rec.UserID).running()
		if u, ok := a.usage.get(rec.UserID); ok && !running && !u.Running {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(userID string) {
			defer func() { <-sem; wg.Done() }()
			u, err := a.measureUser(ctx, userID)
			if err != nil {
				a.log.Warn("measure data dir", "user", userID, "err", err)
				return
			}
			if u.Over && a.liveOf(userID).running() {
				unlock := a.locks.lock(userID)
				defer unlock()
				if !a.usage.isOver(userID) {
					return // measured again meanwhile, under the quota
				}
				if err := a.stopOverQuota(ctx, userID); err != nil {
					a.log.Warn("stop instance over its data quota", "user", userID, "err", err)
				}
			}
		}(rec.UserID)
	}
	wg.Wait()
}

// measureUser measures userID's data dir now and records the result.
func (a *Agent) measureUser(ctx context.Context, userID string) (dataUsage, error) {
	running := a.liveOf(userID).running()
	begun := a.now().UnixMilli()
	n, complete, err := dirUsage(ctx, filepath.Join(a.dataDir, userID))
	if err != nil {
		return dataUsage{}, err
	}
	if !complete {
		a.log.Warn("data dir nests deeper than the measured depth, or has unreadable parts: not all of it is counted",
			"user", userID, "maxDepth", maxWalkDepth)
	}
	q := a.conf().dataQuota()
	u := dataUsage{Bytes: n, AtMs: begun, Running: running, Over: q > 0 && n > q}
	a.usage.put(userID, u)
	return u, nil
}

// stopOverQuota stops userID's running instance, whose data is over the
// quota; the container and the data are kept. The caller holds userID's
// lock.
func (a *Agent) stopOverQuota(ctx context.Context, userID string) error {
	ls := a.liveOf(userID)
	if !ls.running() {
		return nil
	}
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	err = a.rt.Stop(ctx, []string{ls.ID}, seconds(a.conf().Instance.StopTimeoutSeconds))
	release()
	if err != nil {
		return err
	}
	a.outage.stoppedByAgent(ls.ID, a.now())
	a.markState(userID, ls.ID, runtime.StateExited, runtime.EventDie)
	a.log.Warn("instance over its data quota: stopped, data kept", "user", userID,
		"bytes", a.usage.bytes(userID), "quota", a.conf().Instance.DataQuota)
	a.publish(Event{Type: EventStopped, UserID: userID, ContainerID: ls.ID, Message: ReasonOverQuota})
	return nil
}

// checkQuota refuses to run userID's instance while its data was last
// found over the quota: the dir is measured again first (the user may
// have freed space, the quota may have been raised), and a running
// instance still over it is stopped. The caller holds userID's lock. A
// user not found over the quota costs one atomic load.
func (a *Agent) checkQuota(ctx context.Context, userID string) error {
	if !a.usage.isOver(userID) {
		return nil
	}
	u, err := a.measureUser(ctx, userID)
	if err != nil {
		a.log.Warn("measure data dir", "user", userID, "err", err)
		u, _ = a.usage.get(userID)
	}
	if !u.Over {
		return nil
	}
	if err := a.stopOverQuota(ctx, userID); err != nil {
		a.log.Warn("stop instance over its data quota", "user", userID, "err", err)
	}
	return errdefs.Errorf(errdefs.ErrQuotaExceeded,
		"the data of user %q takes %d bytes, over instance.dataQuota %s: the instance stays stopped (its data kept) until its data dir is under the quota",
		userID, u.Bytes, a.conf().Instance.DataQuota)
}

// checkFreeSpace refuses a new instance while the file system of the
// state dir has less free space than minFreeSpace. A file system that
// cannot be asked is no reason to refuse (logged).
func (a *Agent) checkFreeSpace() error {
	floor := a.conf().minFree()
	if floor == 0 || a.cluster != nil {
		return nil
	}
	free, err := a.freeSpace(a.dataDir)
	if err != nil {
		a.log.Warn("free space of the state dir", "err", err)
		return nil
	}
	if free < uint64(floor) {
		return errdefs.Errorf(errdefs.ErrResourceExhausted,
			"the state dir's file system has %d bytes free, under minFreeSpace %s: new instances are refused until space is freed (existing ones still start)",
			free, a.conf().MinFreeSpace)
	}
	return nil
}

// freeSpace returns the space an unprivileged user may still take on the
// file system of path (statfs: Bavail*Bsize).
func freeSpace(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// dirUsage returns the disk space the tree at dir takes: the allocated
// blocks (st_blocks*512) of every entry, dir itself included, each
// hard-linked inode counted once. It never follows a symlink (a symlink
// counts as itself), never crosses into another file system (a mount
// under dir is not counted), and opens every directory relative to its
// parent with O_NOFOLLOW, so that a tenant renaming or swapping entries
// while it walks can only hide or add its own entries, never lead it
// outside dir. Entries that vanish while it walks are skipped. complete
// is false when some part was not counted (deeper than maxWalkDepth, or
// unreadable). A missing dir takes 0 bytes.
func dirUsage(ctx context.Context, dir string) (n int64, complete bool, err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return 0, false, &fs.PathError{Op: "fstat", Path: dir, Err: err}
	}
	w := walker{ctx: ctx, dev: st.Dev, seen: map[uint64]struct{}{}, complete: true}
	w.bytes = st.Blocks * 512
	if err := w.dir(fd, 1); err != nil {
		return 0, false, fmt.Errorf("measure %s: %w", dir, err)
	}
	return w.bytes, w.complete, nil
}

type walker struct {
	ctx      context.Context
	dev      uint64
	seen     map[uint64]struct{} // inodes with more than one link, counted
	bytes    int64
	complete bool
	entries  int
}

// dir counts the entries of the directory open at fd (which it closes),
// and descends into its sub-dirs.
func (w *walker) dir(fd int, depth int) error {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	for {
		names, rerr := f.Readdirnames(1024)
		for _, name := range names {
			if w.entries++; w.entries%4096 == 0 && w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			if err := w.entry(fd, name, depth); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) || rerr == nil && len(names) == 0 {
			return nil
		}
		if rerr != nil {
			w.complete = false
			return nil
		}
	}
}

func (w *walker) entry(dirfd int, name string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			w.complete = false
		}
		return nil
	}
	if st.Dev != w.dev {
		return nil // a mount point: another file system
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && st.Nlink > 1 {
		if _, dup := w.seen[st.Ino]; dup {
			return nil
		}
		w.seen[st.Ino] = struct{}{}
	}
	w.bytes += st.Blocks * 512
	if !isDir {
		return nil
	}
	if depth >= maxWalkDepth {
		w.complete = false
		return nil
	}
	cfd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
			w.complete = false
		}
		return nil
	}
	var cst unix.Stat_t
	if err := unix.Fstat(cfd, &cst); err != nil || cst.Dev != w.dev || cst.Ino != st.Ino {
		unix.Close(cfd) // swapped for another dir since the stat: counted as it was
		return nil
	}
	return w.dir(cfd, depth+1)
}
