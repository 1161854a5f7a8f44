package runtimetest

import (
	"fmt"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// The hooks below make things happen behind the caller's back, as another
// client of the engine or the kernel would. They are not calls: Calls does
// not count them, faults and a down engine do not affect them (but while
// the engine is down nobody hears their events: the streams are broken).

// Down makes the engine unreachable: every call fails with ErrUnavailable,
// open event streams end with ErrUnavailable (after what they queued) and
// log followers fail with it. Containers keep their state.
func (f *Fake) Down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return
	}
	f.down = true
	close(f.downCh)
	f.breakStreamsLocked(errDown)
}

// Up makes the engine reachable again after Down.
func (f *Fake) Up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		return
	}
	f.down = false
	f.downCh = make(chan struct{})
}

// IsDown reports whether the engine is down.
func (f *Fake) IsDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// Exit makes a running container's process exit with code, as a crash
// would: event die, then the restart policy (a policy restart emits start).
func (f *Fake) Exit(ref string, code int) error {
	return f.died("exit", ref, func(c *fakeContainer) { f.diedLocked(c, code, false) })
}

// Kill kills a running container from outside, as `docker kill` by someone
// else would: events kill, die with exitCode, then the restart policy.
func (f *Fake) Kill(ref string, exitCode int) error {
	return f.died("kill", ref, func(c *fakeContainer) {
		f.emit(c, runtime.EventKill, 0, "")
		f.diedLocked(c, exitCode, false)
	})
}

// OOM has the kernel kill a running container for memory: events oom, die
// with exit code 137, OOMKilled set, then the restart policy.
func (f *Fake) OOM(ref string) error {
	return f.died("oom", ref, func(c *fakeContainer) {
		f.emit(c, runtime.EventOOM, 0, "")
		f.diedLocked(c, 137, true)
	})
}

func (f *Fake) died(what, ref string, do func(*fakeContainer)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, ref, err)
	}
	if !c.running() {
		return fmt.Errorf("%s %q: container is %s, not running", what, ref, c.state)
	}
	do(c)
	return nil
}

// RemoveBehindBack removes a container as `docker rm -f` by someone else
// would: events kill and die (137) when it runs, then destroy.
func (f *Fake) RemoveBehindBack(ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("remove %q: %w", ref, err)
	}
	f.removeLocked(c)
	return nil
}

// SetHealth sets a running container's health status ("healthy",
// "unhealthy", "starting") and emits health_status.
func (f *Fake) SetHealth(ref, status string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("set health %q: %w", ref, err)
	}
	if !c.running() {
		return fmt.Errorf("set health %q: container is %s, not running", ref, c.state)
	}
	c.health = status
	f.emit(c, runtime.EventHealth, 0, status)
	return nil
}
