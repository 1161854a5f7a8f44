package registry

import (
	"bufio"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// The crash test's workload: a base of crashBase records, then a fixed
// sequence of durable changes (reserve a port, create a record, update three
// records in one Put, delete two in one Delete), with touches in between.
const (
	crashBase  = 400
	crashKills = 200 // 40 under -race: see raceEnabled
	crashLo    = 20000
	crashHi    = 60000
)

// crashModel is the expected state after a number of changes, kept by
// plain map code that shares nothing with the registry's.
type crashModel struct {
	recs  map[string]Record // LastUsedAtMs is not compared
	ids   []string          // sorted keys of recs
	ports map[string]int
}

func newCrashModel() *crashModel {
	m := &crashModel{recs: map[string]Record{}, ports: map[string]int{}}
	for i := range crashBase {
		x := rec(fmt.Sprintf("u%04d", i), crashLo+i)
		m.recs[x.UserID], m.ports[x.UserID] = x, x.Port
		m.ids = append(m.ids, x.UserID)
	}
	return m
}

func (m *crashModel) clone() *crashModel {
	return &crashModel{recs: maps.Clone(m.recs), ids: slices.Clone(m.ids), ports: maps.Clone(m.ports)}
}

func (m *crashModel) pick(k, n int) string { return m.ids[(k*7919+n*104729)%len(m.ids)] }

// step applies change k (k >= 1) to the model and, when r is not nil,
// through the registry first.
func (m *crashModel) step(k int, r *Registry) error {
	switch k % 4 {
	case 1: // reserve a port for a new user
		id := fmt.Sprintf("n%05d", k)
		port := crashLo
		taken := map[int]bool{}
		for _, p := range m.ports {
			taken[p] = true
		}
		for taken[port] {
			port++
		}
		if r != nil {
			got, err := r.ReservePort(id, crashLo, crashHi)
			if err != nil {
				return err
			}
			if got != port {
				return fmt.Errorf("change %d: reserved port %d, the model says %d", k, got, port)
			}
		}
		m.ports[id] = port
	case 2: // create the record of the user reserved by change k-1
		x := rec(fmt.Sprintf("n%05d", k-1), m.ports[fmt.Sprintf("n%05d", k-1)])
		if r != nil {
			if err := r.Put(x); err != nil {
				return err
			}
		}
		m.recs[x.UserID] = x
		i, _ := slices.BinarySearch(m.ids, x.UserID)
		m.ids = slices.Insert(m.ids, i, x.UserID)
	case 3: // update three records at once
		var batch []Record
		for n := range 3 {
			x := m.recs[m.pick(k, n)]
			if slices.ContainsFunc(batch, func(b Record) bool { return b.UserID == x.UserID }) {
				continue
			}
			x.State, x.ConfigHash, x.ContainerID = fmt.Sprint("s", k), fmt.Sprint("h", k), fmt.Sprint("c", k)
			x.Labels = map[string]string{"k": strconv.Itoa(k)}
			batch = append(batch, x)
		}
		if r != nil {
			if err := r.Put(batch...); err != nil {
				return err
			}
		}
		for _, x := range batch {
			m.recs[x.UserID] = x
		}
	case 0: // delete two records at once
		a, b := m.pick(k, 0), m.pick(k, 1)
		if r != nil {
			if err := r.Delete(a, b); err != nil {
				return err
			}
		}
		for _, id := range []string{a, b} {
			delete(m.recs, id)
			if i, ok := slices.BinarySearch(m.ids, id); ok {
				m.ids = slices.Delete(m.ids, i, i+1)
			}
		}
	}
	return nil
}

// matches reports whether s holds exactly the model's records and ports.
func (m *crashModel) matches(s *state) error {
	if len(s.list) != len(m.ids) {
		return fmt.Errorf("%d records, want %d", len(s.list), len(m.ids))
	}
	for _, id := range m.ids {
		e, ok := s.recs[id]
		if !ok {
			return fmt.Errorf("record %q missing", id)
		}
		got, want := e.record(), m.recs[id]
		if got.LastUsedAtMs < want.LastUsedAtMs {
			return fmt.Errorf("record %q: lastUsedAtMs %d went back from %d", id, got.LastUsedAtMs, want.LastUsedAtMs)
		}
		got.LastUsedAtMs = want.LastUsedAtMs
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("record %q: got %+v, want %+v", id, got, want)
		}
	}
	if !maps.Equal(s.ports, m.ports) {
		return fmt.Errorf("ports differ: %d reservations, want %d", len(s.ports), len(m.ports))
	}
	return nil
}

// crashChild is the writer the test kills: it opens the registry (which
// holds the state after change ZAKI_REGISTRY_FROM), prints "ready", then
// makes the next changes for ever, printing "done k" after change k
// returned (was durable), touching records in between.
func crashChild() int {
	from, _ := strconv.Atoi(os.Getenv("ZAKI_REGISTRY_FROM"))
	m := newCrashModel()
	for k := 1; k <= from; k++ {
		m.step(k, nil)
	}
	r, err := Open(os.Getenv("ZAKI_REGISTRY_DIR"), Options{Logger: quiet, FlushInterval: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	for k := from + 1; ; k++ {
		if err := m.step(k, r); err != nil {
			fmt.Fprintf(os.Stderr, "change %d: %v\n", k, err)
			return 2
		}
		fmt.Printf("done %d\n", k)
		for n := range 5 {
			r.Touch(m.pick(k, n+3), 1_800_000_000_000+int64(k))
		}
	}
}

// TestCrashKill9 kills a writer with SIGKILL at random moments, crashKills
// times; after each kill registry.json parses and holds the state before or
// after the interrupted change, never a mix, never empty.
func TestCrashKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ZAKI_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (ZAKI_CRASH_SEED=%d reproduces the kill times)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	kills := crashKills
	if raceEnabled {
		kills = crashKills / 5
	}

	dir := t.TempDir()
	model := newCrashModel()
	r, err := Open(dir, Options{Logger: quiet})
	assert.NilError(t, err)
	base := make([]Record, 0, crashBase)
	for _, id := range model.ids {
		base = append(base, model.recs[id])
	}
	assert.NilError(t, r.Put(base...))
	assert.NilError(t, r.Close())

	var before, after, midWrite, beforeReady int
	var childCPU, childWall time.Duration
	at := 0 // the model holds the state after change `at`
	for kill := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=crash", "ZAKI_REGISTRY_DIR="+dir, fmt.Sprint("ZAKI_REGISTRY_FROM=", at))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		assert.NilError(t, err)
		started := time.Now()
		assert.NilError(t, cmd.Start())
		var done atomic.Int64
		done.Store(int64(at))
		ready, eof := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(eof)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if line == "ready" {
					close(ready)
				} else if k, ok := strings.CutPrefix(line, "done "); ok {
					n, _ := strconv.Atoi(k)
					done.Store(int64(n))
				}
			}
		}()
		if rng.IntN(10) == 0 {
			// Now and then while it starts up (opens, cleans up).
			time.Sleep(time.Duration(rng.IntN(int(20 * time.Millisecond))))
			beforeReady++
		} else {
			// Otherwise after 0 to 3 changes, plus up to 10 ms: anywhere
			// in a change or between two.
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: the writer did not get ready: %s", kill, stderr.String())
			}
			want := int64(at + rng.IntN(4))
			for deadline := time.Now().Add(30 * time.Second); done.Load() < want; {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("kill %d: the writer made no progress: %s", kill, stderr.String())
				}
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Duration(rng.IntN(int(10 * time.Millisecond))))
		}
		assert.NilError(t, cmd.Process.Signal(syscall.SIGKILL))
		werr := cmd.Wait()
		<-eof
		childWall += time.Since(started)
		childCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: the writer ended by itself (%v): %s", kill, werr, stderr.String())
		}

		// The file: never empty, always decodable, exactly one of two states.
		d := int(done.Load())
		data, err := os.ReadFile(filepath.Join(dir, FileName))
		assert.NilError(t, err, "kill %d", kill)
		assert.Assert(t, len(data) > 0, "kill %d: empty registry file", kill)
		s, legacy, err := decode(data)
		assert.NilError(t, err, "kill %d: the file does not decode", kill)
		assert.Assert(t, !legacy)
		for ; at < d; at++ {
			assert.NilError(t, model.step(at+1, nil))
		}
		if errBefore := model.matches(s); errBefore != nil {
			next := model.clone()
			assert.NilError(t, next.step(d+1, nil))
			if errAfter := next.matches(s); errAfter != nil {
				t.Fatalf("kill %d after change %d: the file is neither the state before change %d (%v) nor after it (%v)",
					kill, d, d+1, errBefore, errAfter)
			}
			model, at = next, d+1
			after++
		} else {
			before++
		}
		if len(temps(t, dir)) > 0 {
			midWrite++
		}

		// Open takes over: the dead writer's lock is gone, its temp file too.
		r, err := Open(dir, Options{Logger: quiet})
		assert.NilError(t, err, "kill %d", kill)
		assert.Equal(t, r.Len(), len(model.ids))
		assert.DeepEqual(t, temps(t, dir), []string(nil))
		assert.NilError(t, r.Close())
	}
	t.Logf("%d kills at %d changes: the interrupted change absent %d times, present %d times; "+
		"%d kills left a temp file (mid-write), %d hit the start-up; the writers lived %v and used %v of CPU",
		kills, at, before, after, midWrite, beforeReady, childWall, childCPU)
	assert.Assert(t, after > 0, "no kill came after a change's write and before its report")
	assert.Assert(t, midWrite > 0, "no kill landed in the middle of a write")
}
