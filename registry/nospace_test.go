package registry

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
)

// A write that fails at any step (a full disk) returns a clear error and
// changes nothing: not memory, not the file; no temp file stays; the next
// write, once there is space, succeeds.
func TestWriteFailureChangesNothing(t *testing.T) {
	for _, step := range []WriteStep{StepCreate, StepWrite, StepSync, StepClose, StepRename, StepSyncDir} {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			var full bool
			r := openT(t, dir, Options{
				Fault: func(file string, s WriteStep) error {
					if full && s == step {
						return syscall.ENOSPC
					}
					return nil
				},
			})
			assert.NilError(t, r.Put(rec("alice", 0)))
			_, err := r.ReservePort("alice", 18790, 18799)
			assert.NilError(t, err)
			before := readFile(t, filepath.Join(dir, FileName))
			mem, ports := r.List(), r.Ports()

			full = true
			for _, op := range []struct {
				name string
				do   func() error
			}{
				{"put", func() error { return r.Put(rec("bob", 0)) }},
				{"delete", func() error { return r.Delete("alice") }},
				{"reserve", func() error { _, err := r.ReservePort("bob", 18790, 18799); return err }},
				{"flush", func() error { r.Touch("alice", 1_800_000_000_000); return r.Flush() }},
			} {
				err := op.do()
				assert.ErrorIs(t, err, syscall.ENOSPC, op.name)
				assert.ErrorContains(t, err, "write registry "+filepath.Join(dir, FileName)+": ")
				assert.ErrorContains(t, err, "no space left on device")
				if step != StepSyncDir { // after the rename the file is the new one; see below
					assert.Equal(t, string(readFile(t, filepath.Join(dir, FileName))), string(before), op.name)
				}
				assert.DeepEqual(t, temps(t, dir), []string(nil))
			}
			// Memory is unchanged (but for the touch, which waits to be written).
			got := r.List()
			assert.Equal(t, got[0].LastUsedAtMs, int64(1_800_000_000_000))
			got[0].LastUsedAtMs = mem[0].LastUsedAtMs
			assert.DeepEqual(t, got, mem)
			assert.DeepEqual(t, r.Ports(), ports)

			// Space again: everything works, and the pending touch is written.
			full = false
			assert.NilError(t, r.Put(rec("bob", 0)))
			s := decodeFile(t, dir)
			assert.Equal(t, len(s.list), 2)
			assert.Equal(t, s.recs["alice"].lastUsed.Load(), int64(1_800_000_000_000))
			assert.DeepEqual(t, temps(t, dir), []string(nil))
		})
	}
}

// A real full file system: a small tmpfs (needs root; skipped otherwise).
func TestWriteOnFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	r := openT(t, dir, Options{})
	var recs []Record
	for i := range 100 {
		recs = append(recs, rec(string(rune('a'+i%26))+string(rune('a'+i/26)), 0))
	}
	assert.NilError(t, r.Put(recs...))
	before := readFile(t, filepath.Join(dir, FileName))
	mem := r.List()

	// Fill the file system.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	assert.NilError(t, err)
	chunk := make([]byte, 4096)
	for {
		if _, err := filler.Write(chunk); err != nil {
			assert.Assert(t, errors.Is(err, syscall.ENOSPC), "filling: %v", err)
			break
		}
	}
	assert.NilError(t, filler.Close())

	x := rec("zz", 0)
	x.State = "a change that needs space"
	err = r.Put(x)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.ErrorContains(t, err, "no space left on device")
	t.Logf("the error: %v", err)
	assert.DeepEqual(t, r.List(), mem)
	assert.Equal(t, string(readFile(t, filepath.Join(dir, FileName))), string(before))
	assert.DeepEqual(t, temps(t, dir), []string(nil))

	assert.NilError(t, os.Remove(filepath.Join(dir, "filler")))
	assert.NilError(t, r.Put(x))
	assert.Equal(t, len(decodeFile(t, dir).list), 101)
}

// The flusher retries a failed write of touches until it succeeds.
func TestFlusherRetries(t *testing.T) {
	dir := t.TempDir()
	var full atomic.Bool
	failures := make(chan struct{}, 100)
	r := openT(t, dir, Options{
		FlushInterval: 5 * time.Millisecond,
		Fault: func(string, WriteStep) error {
			if full.Load() {
				return syscall.ENOSPC
			}
			return nil
		},
		ObserveWrite: func(_ time.Duration, err error) {
			if err != nil {
				select {
				case failures <- struct{}{}:
				default:
				}
			}
		},
	})
	assert.NilError(t, r.Put(rec("alice", 0)))
	full.Store(true)
	r.Touch("alice", 1_800_000_000_000)
	for range 2 { // a failure, then a retry that fails too
		select {
		case <-failures:
		case <-time.After(5 * time.Second):
			t.Fatal("the flusher did not try to write the touch")
		}
	}
	full.Store(false)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if v := decodeFile(t, dir).recs["alice"].lastUsed.Load(); v != 1_800_000_000_000 {
			return poll.Continue("lastUsedAtMs on disk is %d", v)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(5*time.Millisecond))
}
