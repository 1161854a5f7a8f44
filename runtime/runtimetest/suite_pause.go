package runtimetest

import (
	"io"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testPause: Pause and Resume are idempotent and emit pause and unpause
// events; a paused container is reported paused (and Running), refuses
// Exec with ErrConflict, gives its logs, and is stopped, restarted and
// force-removed like a running one; a stopped one is ErrConflict for
// both, a missing one ErrNotFound.
func (s *suite) testPause(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("pause")
	labels := s.labels("zaki.test.pause", "1")
	w := s.watch(t, labels)
	id := s.create(t, s.simpleSpec(name, labels))
	s.start(t, name)

	for i := 1; i <= 2; i++ {
		if err := s.rt.Pause(ctx, name); err != nil {
			t.Fatalf("pause %s (call %d): %v", name, i, err)
		}
	}
	w.until(t, 30*time.Second, "pause event", func(ev runtime.Event) bool { return ev.Action == runtime.EventPause && ev.ID == id })
	if c := s.inspect(t, name); c.State != runtime.StatePaused || !c.Running() {
		t.Errorf("inspect %s after pause: state %q (Running %v), want %q", name, c.State, c.Running(), runtime.StatePaused)
	}
	if _, err := s.rt.Exec(ctx, name, runtime.ExecOptions{Cmd: StubCmd("echo", "x"), Timeout: s.cfg.Timeout}); runtime.Class(err) != runtime.ErrConflict {
		t.Errorf("exec in paused %s: got %v, want class %v", name, err, runtime.ErrConflict)
	}
	rc, err := s.rt.Logs(ctx, name, runtime.LogOptions{})
	if err != nil {
		t.Fatalf("logs of paused %s: %v", name, err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Errorf("read logs of paused %s: %v", name, err)
	}
	rc.Close()

	for i := 1; i <= 2; i++ {
		if err := s.rt.Resume(ctx, id); err != nil {
			t.Fatalf("resume %s (call %d): %v", name, i, err)
		}
	}
	w.until(t, 30*time.Second, "unpause event", func(ev runtime.Event) bool { return ev.Action == runtime.EventUnpause && ev.ID == id })
	if c := s.inspect(t, name); c.State != runtime.StateRunning {
		t.Errorf("inspect %s after resume: state %q, want %q", name, c.State, runtime.StateRunning)
	}

	// A paused container restarts, and stops. Not under gVisor: engine
	// 20.10 with runsc cannot restart a paused container ("id already in
	// use", and the container is left stopped; found by make faults,
	// open in issue 18's note): there it is resumed first.
	if err := s.rt.Pause(ctx, name); err != nil {
		t.Fatalf("pause %s again: %v", name, err)
	}
	if s.cfg.OCIRuntime == "runsc" {
		if err := s.rt.Resume(ctx, name); err != nil {
			t.Fatalf("resume %s before its restart (gVisor): %v", name, err)
		}
	}
	if err := s.rt.Restart(ctx, name, stopTimeout); err != nil {
		t.Fatalf("restart paused %s: %v", name, err)
	}
	if c := s.inspect(t, name); c.State != runtime.StateRunning {
		t.Errorf("inspect %s after restarting it paused: state %q, want %q", name, c.State, runtime.StateRunning)
	}
	if err := s.rt.Pause(ctx, name); err != nil {
		t.Fatalf("pause %s once more: %v", name, err)
	}
	if s.cfg.OCIRuntime == "runsc" {
		// Nor stop one that can start again (see above).
		if err := s.rt.Resume(ctx, name); err != nil {
			t.Fatalf("resume %s before its stop (gVisor): %v", name, err)
		}
	}
	if err := s.rt.Stop(ctx, []string{name}, stopTimeout); err != nil {
		t.Fatalf("stop paused %s: %v", name, err)
	}
	if c := s.inspect(t, name); c.Running() {
		t.Errorf("inspect %s after stopping it paused: state %q, want not running", name, c.State)
	}
	if err := s.rt.Pause(ctx, name); runtime.Class(err) != runtime.ErrConflict {
		t.Errorf("pause stopped %s: got %v, want class %v", name, err, runtime.ErrConflict)
	}
	if err := s.rt.Resume(ctx, name); runtime.Class(err) != runtime.ErrConflict {
		t.Errorf("resume stopped %s: got %v, want class %v", name, err, runtime.ErrConflict)
	}

	// A paused container is removed by force.
	s.start(t, name)
	if err := s.rt.Pause(ctx, name); err != nil {
		t.Fatalf("pause %s before removing it: %v", name, err)
	}
	if err := s.rt.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("force-remove paused %s: %v", name, err)
	}
	if _, err := s.rt.Inspect(ctx, name); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect %s removed paused: got %v, want class %v", name, err, runtime.ErrNotFound)
	}

	missing := s.name("pause-missing")
	if err := s.rt.Pause(ctx, missing); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("pause missing %s: got %v, want class %v", missing, err, runtime.ErrNotFound)
	}
	if err := s.rt.Resume(ctx, missing); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("resume missing %s: got %v, want class %v", missing, err, runtime.ErrNotFound)
	}
}
