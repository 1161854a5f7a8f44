package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// FileName is the registry file in the state dir; LegacyCopyFile the copy
// of an imported legacy registry kept beside it.
const (
	FileName       = "registry.json"
	LegacyCopyFile = "registry.legacy.json"
)

// DefaultFlushInterval bounds how long a touch waits in memory.
const DefaultFlushInterval = time.Second

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives imports, clean-ups and flush failures; slog.Default()
	// when nil.
	Logger *slog.Logger
	// FlushInterval is how long a touch may wait before it is written
	// (DefaultFlushInterval when 0); it is also what a crash can lose.
	FlushInterval time.Duration
	// LegacyPath names the platform's old registry file, imported when the
	// state dir holds no registry yet. A missing file is not an error.
	LegacyPath string
	// ObserveWrite, when set, is called after every write of the registry
	// file with its duration (encode, write, fsync, rename, directory
	// fsync) and its error.
	ObserveWrite func(d time.Duration, err error)
	// Fault, when set, is called before each step of every atomic write
	// with the target's base name; an error it returns fails that step as
	// the operating system would (for tests: syscall.ENOSPC is a full disk).
	Fault func(file string, step WriteStep) error
}

// Registry is the open registry of one state dir. Its methods are safe for
// concurrent use. Reads never wait for a write in progress.
type Registry struct {
	dir, path string
	opts      Options
	log       *slog.Logger
	lock      *os.File

	snap  atomic.Pointer[state] // what readers see; always on disk already (but touches)
	dirty atomic.Bool           // touches not yet written
	wake  chan struct{}         // a touch made the registry dirty
	stop  chan struct{}
	done  chan struct{}

	closed atomic.Bool
	mu     sync.Mutex // serialises writers; held across a write
	buf    []byte     // encode buffer, reused under mu
}

// Open opens the registry of state dir dir (created when missing, mode
// 0700): it locks the dir, removes temp files a crash left behind, loads
// registry.json (an empty file counts as missing; a legacy file is
// imported, see the package doc) and starts the flusher for touches.
// A file it cannot decode is left untouched and Open fails with an error
// of class ErrCorrupt naming the file and the problem; a dir another
// process holds fails with ErrLocked naming the holder.
func Open(dir string, opts Options) (*Registry, error) {
	if opts.FlushInterval < 0 {
		return nil, errdefs.Errorf(ErrInvalid, "negative flush interval %v", opts.FlushInterval)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	r := &Registry{
		dir: dir, path: filepath.Join(dir, FileName), opts: opts, log: opts.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	r.lock = lock
	s, err := r.load()
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	r.snap.Store(s)
	go r.flusher()
	return r, nil
}

// load reads the registry file, importing a legacy one.
func (r *Registry) load() (*state, error) {
	for _, target := range []string{r.path, filepath.Join(r.dir, LegacyCopyFile)} {
		removed, err := atomicfile.RemoveTemps(target)
		for _, m := range removed {
			r.log.Info("removed a temp file left by an interrupted write", "file", m)
		}
		if err != nil {
			return nil, fmt.Errorf("remove temp files in %s: %w", r.dir, err)
		}
	}
	data, err := os.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read registry file: %w", err)
	case len(data) == 0:
		r.log.Warn("registry file is empty; starting with no records", "file", r.path)
	default:
		s, legacy, err := decode(data)
		if err != nil {
			return nil, corrupt(r.path, err)
		}
		if legacy {
			return r.importLegacy(s, r.path, data)
		}
		if r.opts.LegacyPath != "" {
			r.log.Info("legacy registry not imported: the state dir has a registry already", "legacy", r.opts.LegacyPath, "file", r.path)
		}
		return s, nil
	}
	if r.opts.LegacyPath == "" {
		return emptyState(), nil
	}
	data, err = os.ReadFile(r.opts.LegacyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return emptyState(), nil
	case err != nil:
		return nil, fmt.Errorf("read legacy registry: %w", err)
	case len(data) == 0:
		r.log.Warn("legacy registry is empty; nothing to import", "legacy", r.opts.LegacyPath)
		return emptyState(), nil
	}
	s, legacy, err := decode(data)
	if err != nil {
		return nil, corrupt(r.opts.LegacyPath, err)
	}
	if !legacy {
		r.log.Info("legacy registry is in the current format; loading it as it is", "legacy", r.opts.LegacyPath)
	}
	return r.importLegacy(s, r.opts.LegacyPath, data)
}

func corrupt(path string, err error) error {
	return errdefs.Errorf(ErrCorrupt, "registry file %s is corrupt: %w (left as it is: repair it or restore a backup)", path, err)
}

// importLegacy keeps a copy of the legacy file beside registry.json, then
// writes s as registry.json. Both writes are atomic and the copy comes
// first, so a crash in between imports again, from the same original.
func (r *Registry) importLegacy(s *state, from string, original []byte) (*state, error) {
	cp := filepath.Join(r.dir, LegacyCopyFile)
	if old, err := os.ReadFile(cp); err == nil && !bytes.Equal(old, original) {
		cp = filepath.Join(r.dir, fmt.Sprintf("registry.legacy-%d.json", time.Now().UnixMilli()))
	}
	if err := writeFileAtomic(cp, original, r.opts.Fault); err != nil {
		return nil, fmt.Errorf("import legacy registry %s: keep a copy: %w", from, err)
	}
	if err := r.write(s); err != nil {
		return nil, fmt.Errorf("import legacy registry %s: %w", from, err)
	}
	r.log.Info("imported the legacy registry", "from", from, "records", len(s.list), "ports", len(s.ports), "copy", cp)
	return s, nil
}

// Close writes the pending touches, stops the flusher and releases the
// state dir. It returns the error of that last write, if any; the lock is
// released either way. Call it after the last Touch: a touch that races
// Close may be lost. Reads keep working on the last state; changes fail
// with ErrClosed.
func (r *Registry) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.flushLocked()
	if uerr := unlockDir(r.lock); err == nil && uerr != nil {
		err = fmt.Errorf("release state dir lock: %w", uerr)
	}
	return err
}

// Get returns the record of userID.
func (r *Registry) Get(userID string) (Record, bool) {
	e, ok := r.snap.Load().recs[userID]
	if !ok {
		return Record{}, false
	}
	return e.record(), true
}

// List returns every record, sorted by user ID.
func (r *Registry) List() []Record {
	s := r.snap.Load()
	out := make([]Record, 0, len(s.list))
	for _, e := range s.list {
		out = append(out, e.record())
	}
	return out
}

// Len returns the number of records.
func (r *Registry) Len() int { return len(r.snap.Load().list) }

// Put creates or replaces the records, all in one durable write: when it
// returns nil, they are on disk. A record's Port must be its user's
// reservation (else ErrPortConflict); for a user without one, Port 0 means
// no port, and any other port is reserved for the user (adoption) unless
// another user holds it (ErrPortConflict). A record
// that differs from the one in memory only in LastUsedAtMs is a touch:
// no write for it. On error nothing changed, in memory or on disk (but
// LastUsedAtMs, which moves as with Touch).
func (r *Registry) Put(recs ...Record) error {
	seen := make(map[string]bool, len(recs))
	for i := range recs {
		if err := recs[i].validate(); err != nil {
			return err
		}
		if seen[recs[i].UserID] {
			return errdefs.Errorf(ErrInvalid, "put: user %q appears twice", recs[i].UserID)
		}
		seen[recs[i].UserID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	cur := r.snap.Load()
	st := newStage(cur)
	type touch struct {
		e  *entry
		at int64
	}
	var touches []touch
	var fresh []*entry
	for _, rec := range recs {
		if err := st.claim(rec.UserID, rec.Port); err != nil {
			return err
		}
		if err := st.claimUID(rec.UserID, rec.UID); err != nil {
			return err
		}
		e := newEntry(rec)
		old := cur.recs[rec.UserID]
		if old != nil && bytes.Equal(old.prefix, e.prefix) {
			touches = append(touches, touch{old, rec.LastUsedAtMs})
			continue
		}
		if old != nil {
			e.raise(old.lastUsed.Load())
		}
		st.put(e)
		fresh = append(fresh, e)
	}
	for _, t := range touches {
		if t.e.raise(t.at) {
			r.markDirty()
		}
	}
	if !st.changed() {
		return nil
	}
	if err := r.commit(st.done()); err != nil {
		return err
	}
	// A touch may have landed on a replaced entry between staging and the
	// swap; Touch re-checks after the swap, this catches the other order.
	for _, e := range fresh {
		if old := cur.recs[e.rec.UserID]; old != nil && e.raise(old.lastUsed.Load()) {
			r.markDirty()
		}
	}
	return nil
}

// Delete removes the records of userIDs (absent ones are ignored) in one
// durable write. Their port reservations stay.
func (r *Registry) Delete(userIDs ...string) error {
	for _, id := range userIDs {
		if err := ValidateUserID(id); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	st := newStage(r.snap.Load())
	for _, id := range userIDs {
		st.del(id)
	}
	if !st.changed() {
		return nil
	}
	return r.commit(st.done())
}

// Touch sets the record's LastUsedAtMs to atMs when that is later. It is
// the hot path: memory only, no allocation, no lock; the change reaches
// the disk within FlushInterval (or at Flush, Close, or the next durable
// change). It returns false when userID has no record.
func (r *Registry) Touch(userID string, atMs int64) bool {
	if r.closed.Load() {
		return false
	}
	e := r.snap.Load().recs[userID]
	for e != nil {
		if !e.raise(atMs) {
			return true
		}
		r.markDirty()
		// A writer may have replaced the entry meanwhile: touch the new one.
		cur := r.snap.Load().recs[userID]
		if cur == e {
			return true
		}
		e = cur
	}
	return false
}

// Flush writes the pending touches now.
func (r *Registry) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	return r.flushLocked()
}

func (r *Registry) flushLocked() error {
	if !r.dirty.Swap(false) {
		return nil
	}
	if err := r.write(r.snap.Load()); err != nil {
		r.markDirty()
		return err
	}
	return nil
}

func (r *Registry) markDirty() {
	if r.dirty.Load() || !r.dirty.CompareAndSwap(false, true) {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// flusher writes touches at most FlushInterval after the first one since
// the last write. It ends when Close closes r.stop.
func (r *Registry) flusher() {
	defer close(r.done)
	failing := false
	t := time.NewTimer(r.opts.FlushInterval)
	t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		t.Reset(r.opts.FlushInterval)
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if err := r.Flush(); err != nil && !errors.Is(err, ErrClosed) {
			if !failing {
				r.log.Error("registry: cannot write touches; retrying", "err", err, "every", r.opts.FlushInterval)
			}
			failing = true
		} else if failing {
			r.log.Info("registry: writing touches again")
			failing = false
		}
	}
}

// commit writes next and then makes it the state readers see. The write
// carries every touch so far. Called with r.mu held.
func (r *Registry) commit(next *state) error {
	wasDirty := r.dirty.Swap(false)
	if err := r.write(next); err != nil {
		if wasDirty {
			r.markDirty()
		}
		return err
	}
	r.snap.Store(next)
	return nil
}

// write encodes s and replaces the registry file with it.
func (r *Registry) write(s *state) error {
	start := time.Now()
	r.buf = s.encode(r.buf[:0])
	err := writeFileAtomic(r.path, r.buf, r.opts.Fault)
	if r.opts.ObserveWrite != nil {
		r.opts.ObserveWrite(time.Since(start), err)
	}
	if err != nil {
		return fmt.Errorf("write registry %s: %w", r.path, err)
	}
	return nil
}
