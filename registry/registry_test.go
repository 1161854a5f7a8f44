package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

func TestPutGetListDeleteSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{Logger: quiet})
	assert.NilError(t, err)
	assert.Equal(t, r.Len(), 0)

	bob, alice, carol := rec("bob", 18791), rec("alice", 18790), rec("carol", 0)
	bob.DesiredHash, bob.State = "h-new", "stopped"
	assert.NilError(t, r.Put(bob, alice, carol))
	assert.NilError(t, r.Delete("carol", "nobody"))

	got, ok := r.Get("bob")
	assert.Assert(t, ok)
	assert.DeepEqual(t, got, bob)
	_, ok = r.Get("carol")
	assert.Assert(t, !ok)
	assert.NilError(t, r.Close())

	// What the file holds is what memory held.
	r = openT(t, dir, Options{})
	assert.DeepEqual(t, r.List(), []Record{alice, bob})
	assert.DeepEqual(t, r.Ports(), map[string]int{"alice": 18790, "bob": 18791})
}

func TestReturnedRecordsAreCopies(t *testing.T) {
	r := openT(t, "", Options{})
	in := rec("alice", 0)
	assert.NilError(t, r.Put(in))
	in.Labels["plan"] = "changed by caller after Put"
	got, _ := r.Get("alice")
	got.Labels["plan"] = "changed by caller after Get"
	r.List()[0].Labels["plan"] = "changed by caller after List"
	got, _ = r.Get("alice")
	assert.Equal(t, got.Labels["plan"], "pro")
}

func TestPutAndDeleteRefuseInvalidInput(t *testing.T) {
	r := openT(t, "", Options{})
	bad := func(mut func(*Record)) Record { x := rec("alice", 0); mut(&x); return x }
	for _, tc := range []struct {
		name string
		err  error
	}{
		{name: "", err: r.Put(rec("", 0))},
		{name: "slash", err: r.Put(rec("a/b", 0))},
		{name: "dot first", err: r.Put(rec(".hidden", 0))},
		{name: "too long", err: r.Put(rec(strings.Repeat("a", 64), 0))},
		{name: "port", err: r.Put(rec("alice", 70000))},
		{name: "negative port", err: r.Put(rec("alice", -1))},
		{name: "hash version", err: r.Put(bad(func(x *Record) { x.HashVersion = -1 }))},
		{name: "utf8 image", err: r.Put(bad(func(x *Record) { x.Image = "\xff" }))},
		{name: "utf8 label", err: r.Put(bad(func(x *Record) { x.Labels = map[string]string{"k": "\xfe"} }))},
		{name: "twice in one put", err: r.Put(rec("alice", 0), rec("alice", 0))},
		{name: "delete", err: r.Delete("ok", "../x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.err, ErrInvalid)
		})
	}
	assert.Equal(t, r.Len(), 0)
	_, err := os.Stat(filepath.Join(r.dir, FileName))
	assert.Assert(t, os.IsNotExist(err), "nothing should have been written")
}

func TestValidateUserID(t *testing.T) {
	for id, ok := range map[string]bool{
		"a": true, "A9": true, "user_1.x-y": true, strings.Repeat("z", 63): true,
		"": false, "-a": false, "_a": false, ".a": false, "a b": false, "a/b": false, "é": false,
		strings.Repeat("z", 64): false, "a\n": false,
	} {
		err := ValidateUserID(id)
		assert.Equal(t, err == nil, ok, "id %q: got %v", id, err)
		if err != nil {
			assert.ErrorIs(t, err, ErrInvalid)
			assert.ErrorContains(t, err, "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
		}
	}
}

func TestTouch(t *testing.T) {
	dir := t.TempDir()
	var writes atomic.Int32
	observe := func(time.Duration, error) { writes.Add(1) }
	// A flusher that cannot run during the test: what writes is the
	// call itself.
	r := openT(t, dir, Options{FlushInterval: time.Hour, ObserveWrite: observe})
	assert.NilError(t, r.Put(rec("alice", 0)))
	assert.Equal(t, writes.Load(), int32(1))

	assert.Assert(t, !r.Touch("nobody", 5), "no record, no touch")
	assert.Assert(t, r.Touch("alice", 1_700_000_000_500))
	assert.Assert(t, r.Touch("alice", 1_700_000_000_900))
	assert.Assert(t, r.Touch("alice", 1_700_000_000_100), "an earlier time is accepted but ignored")
	got, _ := r.Get("alice")
	assert.Equal(t, got.LastUsedAtMs, int64(1_700_000_000_900))
	assert.Equal(t, writes.Load(), int32(1), "a touch is memory only")

	// A Put that only moves lastUsedAtMs is a touch too.
	x := rec("alice", 0)
	x.LastUsedAtMs = 1_700_000_000_950
	assert.NilError(t, r.Put(x))
	assert.Equal(t, writes.Load(), int32(1), "a Put of lastUsedAtMs alone is memory only")
	got, _ = r.Get("alice")
	assert.Equal(t, got.LastUsedAtMs, int64(1_700_000_000_950))

	// Coalesced: touches reach the disk in one write, within the interval.
	assert.NilError(t, r.Close())
	writes.Store(0)
	r = openT(t, dir, Options{FlushInterval: 50 * time.Millisecond, ObserveWrite: observe})
	assert.Assert(t, r.Touch("alice", 1_700_000_000_960))
	assert.Assert(t, r.Touch("alice", 1_700_000_000_970))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		e := decodeFile(t, dir).recs["alice"]
		if v := e.lastUsed.Load(); v != 1_700_000_000_970 {
			return poll.Continue("lastUsedAtMs on disk is %d", v)
		}
		if n := writes.Load(); n != 1 { // observed just after the rename
			return poll.Continue("%d writes", n)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second), poll.WithDelay(10*time.Millisecond))

	x.LastUsedAtMs = 1_700_000_001_000
	assert.NilError(t, r.Put(x))
	got, _ = r.Get("alice")
	assert.Equal(t, got.LastUsedAtMs, int64(1_700_000_001_000))

	// lastUsedAtMs never goes back, not even through a Put that changes more.
	x.LastUsedAtMs, x.State = 1, "stopped"
	assert.NilError(t, r.Put(x))
	got, _ = r.Get("alice")
	assert.Equal(t, got.LastUsedAtMs, int64(1_700_000_001_000))
	assert.Equal(t, got.State, "stopped")
}

func TestCloseFlushesTouches(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{Logger: quiet, FlushInterval: time.Hour})
	assert.NilError(t, err)
	assert.NilError(t, r.Put(rec("alice", 0)))
	assert.Assert(t, r.Touch("alice", 1_800_000_000_000))
	assert.NilError(t, r.Close())
	assert.Equal(t, decodeFile(t, dir).recs["alice"].lastUsed.Load(), int64(1_800_000_000_000))

	assert.ErrorIs(t, r.Put(rec("bob", 0)), ErrClosed)
	assert.ErrorIs(t, r.Delete("alice"), ErrClosed)
	assert.ErrorIs(t, r.Flush(), ErrClosed)
	_, err = r.ReservePort("bob", 1, 2)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Assert(t, !r.Touch("alice", 1_900_000_000_000))
	assert.NilError(t, r.Close(), "a second Close is a no-op")
}

func TestFlushWritesTouchesNow(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{FlushInterval: time.Hour})
	assert.NilError(t, r.Put(rec("alice", 0)))
	r.Touch("alice", 1_800_000_000_000)
	assert.NilError(t, r.Flush())
	assert.Equal(t, decodeFile(t, dir).recs["alice"].lastUsed.Load(), int64(1_800_000_000_000))
}

func TestTouchDoesNotAllocate(t *testing.T) {
	r := openT(t, "", Options{FlushInterval: time.Hour})
	assert.NilError(t, r.Put(rec("alice", 0)))
	at := int64(1_800_000_000_000)
	allocs := testing.AllocsPerRun(1000, func() { at++; r.Touch("alice", at) })
	assert.Equal(t, allocs, 0.0)
}

// Reads load a snapshot: they answer while a write is stuck in fsync, and
// they see the old state until the write is done.
func TestReadsDoNotWaitForWrites(t *testing.T) {
	inSync, release := make(chan struct{}), make(chan struct{})
	var block atomic.Bool
	r := openT(t, "", Options{Fault: func(_ string, step WriteStep) error {
		if step == StepSync && block.Load() {
			close(inSync)
			<-release
		}
		return nil
	}})
	assert.NilError(t, r.Put(rec("alice", 0)))
	block.Store(true)
	putDone := make(chan error)
	go func() { putDone <- r.Put(rec("bob", 0)) }()
	<-inSync

	readDone := make(chan []Record)
	go func() { r.Get("alice"); r.Touch("alice", 1); readDone <- r.List() }()
	select {
	case got := <-readDone:
		assert.Equal(t, len(got), 1, "bob must not be visible before he is on disk")
	case <-time.After(5 * time.Second):
		t.Fatal("reads blocked behind a write in progress")
	}
	block.Store(false)
	close(release)
	assert.NilError(t, <-putDone)
	assert.Equal(t, r.Len(), 2)
}

// Concurrent touches, puts, deletes and reads: run with -race. At the end
// memory and disk agree. (TestTouchRacingPutIsKept checks touches.)
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{Logger: quiet, FlushInterval: time.Millisecond})
	assert.NilError(t, err)
	const users = 20
	for i := range users {
		_, err := r.ReservePort(fmt.Sprintf("u%d", i), 20000, 30000)
		assert.NilError(t, err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := range 300 {
				i := (n + w) % users
				id := fmt.Sprintf("u%d", i)
				switch n % 6 {
				case 0:
					p, _ := r.Port(id)
					x := rec(id, p)
					x.State = fmt.Sprint("s", n)
					assert.Check(t, r.Put(x))
				case 1:
					if n%5 == 0 {
						assert.Check(t, r.Delete(id))
					}
				default:
					r.Touch(id, int64(1_700_000_000_000+n*10+w))
					r.Get(id)
					r.List()
				}
			}
		})
	}
	wg.Wait()
	mem := r.List()
	assert.NilError(t, r.Close())
	disk := openT(t, dir, Options{})
	assert.DeepEqual(t, disk.List(), mem)
	assert.Equal(t, len(disk.Ports()), users)
}

// A touch racing a Put that replaces the record is never lost.
func TestTouchRacingPutIsKept(t *testing.T) {
	r := openT(t, "", Options{FlushInterval: time.Hour})
	assert.NilError(t, r.Put(rec("alice", 0)))
	for n := range 200 {
		at := int64(1_800_000_000_000 + n)
		var wg sync.WaitGroup
		wg.Go(func() {
			x := rec("alice", 0)
			x.State = fmt.Sprint(n)
			assert.Check(t, r.Put(x))
		})
		wg.Go(func() { assert.Check(t, r.Touch("alice", at)) })
		wg.Wait()
		got, _ := r.Get("alice")
		assert.Assert(t, is.Equal(got.LastUsedAtMs, at), "round %d", n)
	}
}

func TestOpenRefusesNegativeFlushInterval(t *testing.T) {
	_, err := Open(t.TempDir(), Options{FlushInterval: -time.Second})
	assert.Assert(t, errors.Is(err, ErrInvalid))
}
