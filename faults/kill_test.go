//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// envInt reads a positive integer from the environment, def when unset.
func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}

// churnUsers is the population of the churn workload.
const churnUsers = 30

// variant is one of the specs a churn user is ensured with; a change of
// variant is a config change (a recreate once the instance is cold).
func variant(v int) socketapi.InstanceSpec {
	return socketapi.InstanceSpec{
		Env:   map[string]string{"VARIANT": strconv.Itoa(v)},
		Files: map[string]string{"openclaw.json": variantFile(v)},
	}
}

func variantFile(v int) string { return fmt.Sprintf(`{"variant": %d}`, v) }

// churn runs the workload: ensure, touch, stop, remove and prune (its
// pause, stop and remove rules) over churnUsers users from a few workers,
// and keeps track of which users had a call in flight when.
type churn struct {
	c *socketapi.Client

	mu         sync.Mutex
	busy       map[string]int  // calls in flight per user
	dirty      map[string]bool // users with a call in flight since mark
	pruneBusy  int
	pruneDirty bool
	ensured    map[string]bool // users ensured at least once (their data must stay)
	ops        map[string]int  // calls made, by op
	errs       map[string]int  // failed calls, by op and error code
}

func newChurn(c *socketapi.Client) *churn {
	return &churn{c: c, busy: map[string]int{}, dirty: map[string]bool{}, ensured: map[string]bool{},
		ops: map[string]int{}, errs: map[string]int{}}
}

func churnUser(i int) string { return fmt.Sprintf("churn-%02d", i) }

// mark starts a new observation window: dirty becomes the users busy now.
func (w *churn) mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirty = map[string]bool{}
	for u, n := range w.busy {
		if n > 0 {
			w.dirty[u] = true
		}
	}
	w.pruneDirty = w.pruneBusy > 0
}

// touched reports whether user had a call in flight since mark (a prune
// touches everyone).
func (w *churn) touched(user string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pruneDirty || w.dirty[user]
}

func (w *churn) begin(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if user == "" {
		w.pruneBusy++
		w.pruneDirty = true
		return
	}
	w.busy[user]++
	w.dirty[user] = true
}

func (w *churn) end(user, op string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if user == "" {
		w.pruneBusy--
	} else {
		w.busy[user]--
	}
	w.ops[op]++
	if err != nil {
		code := "transport"
		var apiErr *socketapi.Error
		if errors.As(err, &apiErr) {
			code = apiErr.Code
		}
		w.errs[op+" "+code]++
	} else if op == "ensure" {
		w.ensured[user] = true
	}
}

func (w *churn) everEnsured() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortedKeys(w.ensured)
}

// step makes one random call; it reports whether the agent did not answer.
func (w *churn) step(ctx context.Context, rng *rand.Rand) (gone bool) {
	user := churnUser(rng.IntN(churnUsers))
	r := rng.IntN(100)
	op := ""
	var call func() error
	switch {
	case r < 55:
		op = "ensure"
		spec := variant(rng.IntN(3))
		call = func() error { _, err := w.c.Ensure(ctx, user, spec); return err }
	case r < 70:
		op = "touch"
		call = func() error { _, err := w.c.Touch(ctx, user); return err }
	case r < 82:
		op = "stop"
		call = func() error { _, err := w.c.Stop(ctx, user); return err }
	case r < 94:
		op = "remove"
		call = func() error { return w.c.Remove(ctx, user, false) }
	default:
		op, user = "prune", ""
		// minutes, hours: pause after 3 s idle, stop after 6 s, remove
		// after 20 s.
		pauseAfter, stopAfter, removeAfter := 0.05, 0.1, 20.0/3600
		call = func() error {
			_, err := w.c.Prune(ctx, socketapi.PruneRequest{IdlePauseMinutes: &pauseAfter, IdleStopMinutes: &stopAfter, IdleHours: &removeAfter})
			return err
		}
	}
	w.begin(user)
	err := call()
	w.end(user, op, err)
	var apiErr *socketapi.Error
	return err != nil && !errors.As(err, &apiErr)
}

// ensureAll ensures every churn user with variant v, four at a time, and
// hands each outcome to check.
func (w *churn) ensureAll(check func(user string, in socketapi.Instance, err error), v int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range churnUsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u := churnUser(i)
			w.begin(u)
			in, err := w.c.Ensure(context.Background(), u, variant(v))
			w.end(u, "ensure", err)
			check(u, in, err)
		}()
	}
	wg.Wait()
}

// burst makes n random calls at once and waits for them.
func (w *churn) burst(n int, seed uint64) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			w.step(ctx, rand.New(rand.NewPCG(seed, uint64(i))))
		}()
	}
	wg.Wait()
}

// run runs workers until stop is closed, then waits for them.
func (w *churn) run(workers int, seed uint64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if w.step(ctx, rng) {
					return // the agent is gone
				}
			}
		}()
	}
	return &wg
}

// TestKillChurn SIGKILLs the agent at random points of the churn workload
// (ZAKI_FAULTS_KILLS times, 100 by default) and checks every invariant
// after each restart.
func TestKillChurn(t *testing.T) {
	l := newLedger(t, "agent SIGKILL during churn")
	kills := envInt("ZAKI_FAULTS_KILLS", 100)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	// A short hot window, so that a change of variant recreates instances
	// (cold) as well as marking them stale (hot). The engine's List
	// (`docker ps`) answers half a second late: the agent serves before
	// its first reconciliation, and each round's first calls land in
	// that window.
	shim := dockerShim(t)
	assert.NilError(t, os.WriteFile(filepath.Join(shim, "slow"), []byte("ps\n"), 0o644))
	p := testenv.StartAgent(t, testenv.AgentOptions{
		Config:  "# churn\n[hot]\nwindowMinutes = 0.05\n",
		Args:    loadTolerant,
		Env:     shimEnv(shim),
		Serving: true,
	})
	w := newChurn(p.Client)

	// Everyone starts with an instance.
	w.ensureAll(func(u string, _ socketapi.Instance, err error) { assert.Check(t, err, u) }, 0)

	var restartTotal time.Duration
	checked, inWindow := 0, 0
	for round := 1; round <= kills; round++ {
		stop := make(chan struct{})
		workers := w.run(4, seed+uint64(round), stop)
		time.Sleep(time.Duration(100+rng.IntN(1900)) * time.Millisecond)

		// Observe, then kill: users with a call in flight at any time from
		// here to the kill are left out of the "not stopped by the death"
		// check (the workload itself may have stopped or removed them).
		w.mark()
		before := labelled(t, p)
		plugin := pluginPid(p)
		pluginKids := descendants(plugin)
		p.Kill()
		l.fault(1)
		close(stop)
		workers.Wait()
		// systemd ends the rest of the service's cgroup when its main
		// process dies; here the plugin notices on its own and its docker
		// commands die with it.
		waitGone(t, l, append([]int{plugin}, pluginKids...))

		start := time.Now()
		p.Start()
		restartTotal += time.Since(start)
		// Every fourth round, four calls at once, before the first
		// reconciliation ends: what the agent says and does in that
		// window must keep every invariant below.
		if round%4 == 1 {
			if h, err := p.Client.Health(context.Background()); err == nil && !h.Agent.Ready {
				inWindow++
			}
			w.burst(4, seed+uint64(round)<<20)
		}
		t1 := time.Now()
		checked += checkInvariants(t, l, p, w, before, round)
		if testing.Verbose() {
			t.Logf("round %d: restart %v, checks %v", round, t1.Sub(start), time.Since(t1))
		}
		if t.Failed() {
			t.Logf("round %d failed; stopping", round)
			break
		}
	}

	// Everyone can be ensured afterwards, and the invariants still hold.
	w.ensureAll(func(u string, in socketapi.Instance, err error) {
		if !l.check(err == nil && in.State == socketapi.StateRunning, "ensure %s after the churn: %v", u, err) {
			t.Logf("%s: %s", u, testenv.Docker(t, "ps", "-a", "--filter", "label="+p.LabelPrefix+".userId="+u, "--format", "{{.ID}} {{.Status}} {{.Ports}}"))
		}
	}, 1)
	w.mark()
	checkInvariants(t, l, p, w, nil, kills+1)
	l.check(inWindow > 0, "no round's calls came before the first reconciliation: the start-up window went untested")
	t.Logf("%d of %d restarts called before their first reconciliation ended", inWindow, (kills+3)/4)
	t.Logf("restarts took %v on average; %d running instances checked not stopped by a death", restartTotal/time.Duration(max(kills, 1)), checked)
	t.Logf("calls: %v; failed calls: %v", w.ops, w.errs)
}

// waitGone waits until every pid in pids has exited.
func waitGone(t testing.TB, l *ledger, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		for syscall.Kill(pid, 0) == nil && procState(pid) != "Z" {
			if time.Now().After(deadline) {
				l.check(false, "pid %d of the killed agent's plugin still alive 10s after the agent died", pid)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkInvariants checks, after a restart, everything the agent promises
// about its state; before is the engine's view just before the kill (nil
// to skip the "stopped by the death" check). It returns the number of
// running instances checked for that.
func checkInvariants(t *testing.T, l *ledger, p *testenv.AgentProc, w *churn, before []containerInfo, round int) int {
	t.Helper()
	ctx := context.Background()
	at := fmt.Sprintf("round %d", round)

	// The registry parses (with the registry's own strict decoder).
	reg, err := readRegistry(p.StateDir)
	if !l.check(err == nil, "%s: %v", at, err) {
		return 0
	}

	now := labelled(t, p)
	byUser := map[string][]containerInfo{}
	for _, c := range now {
		byUser[userOf(p, c)] = append(byUser[userOf(p, c)], c)
	}
	// Each user has at most one container.
	for u, cs := range byUser {
		l.check(len(cs) == 1, "%s: user %s has %d containers", at, u, len(cs))
	}
	// No port is held by two users: in the reservations, in the records,
	// and on the engine.
	holder := map[int]string{}
	for u, port := range reg.Ports {
		other, dup := holder[port]
		l.check(!dup, "%s: port %d reserved for %s and %s", at, port, u, other)
		holder[port] = u
	}
	for u, rec := range reg.Records {
		l.check(rec.Port == reg.Ports[u], "%s: %s's record has port %d, its reservation is %d", at, u, rec.Port, reg.Ports[u])
	}
	published := map[string]string{}
	for _, c := range now {
		u := userOf(p, c)
		for _, b := range c.HostConfig.PortBindings[containerPort] {
			other, dup := published[b.HostPort]
			l.check(!dup, "%s: host port %s published for %s and %s", at, b.HostPort, u, other)
			published[b.HostPort] = u
			l.check(b.HostPort == strconv.Itoa(reg.Ports[u]), "%s: %s's container publishes %s, its reservation is %d", at, u, b.HostPort, reg.Ports[u])
		}
	}
	// Every running labelled container has an entry, in the API and on disk.
	list, err := p.Client.List(ctx, "")
	l.check(err == nil, "%s: list: %v", at, err)
	listed := map[string]socketapi.Instance{}
	for _, in := range list {
		listed[in.UserID] = in
	}
	for _, c := range now {
		if !c.State.Running {
			continue
		}
		u := userOf(p, c)
		l.check(listed[u].ContainerID == c.ID, "%s: running container %s of %s: API entry %+v", at, c.ID[:12], u, listed[u])
		l.check(reg.Records[u].ContainerID == c.ID, "%s: running container %s of %s: registry.json has %q", at, c.ID[:12], u, reg.Records[u].ContainerID)
	}
	// No user's data dir is lost, and the user's file is whole.
	for _, u := range w.everEnsured() {
		b, err := os.ReadFile(filepath.Join(p.StateDir, "instances", u, "openclaw.json"))
		whole := string(b) == variantFile(0) || string(b) == variantFile(1) || string(b) == variantFile(2)
		l.check(err == nil && whole, "%s: data of %s: %q %v", at, u, b, err)
	}
	// No instance that was running was stopped (or restarted) by the death.
	checked := 0
	if before != nil {
		after := map[string]containerInfo{}
		for _, c := range now {
			after[c.ID] = c
		}
		for _, b := range before {
			u := userOf(p, b)
			if !b.State.Running || w.touched(u) {
				continue
			}
			checked++
			a, ok := after[b.ID]
			l.check(ok && a.State.Running && a.State.StartedAt == b.State.StartedAt,
				"%s: %s's container %s, running before the kill, after the restart: present=%v running=%v startedAt %s -> %s",
				at, u, b.ID[:12], ok, a.State.Running, b.State.StartedAt, a.State.StartedAt)
		}
	}
	return checked
}
