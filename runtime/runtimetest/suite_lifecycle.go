package runtimetest

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testLifecycle: start, stop and remove are idempotent, restart runs a
// stopped container, and a removed container is ErrNotFound.
func (s *suite) testLifecycle(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("life")
	id := s.create(t, s.simpleSpec(name, nil))

	for i := 1; i <= 2; i++ {
		if err := s.rt.Start(ctx, name); err != nil {
			t.Fatalf("start %s (call %d): %v", name, i, err)
		}
	}
	c := s.inspect(t, id)
	if c.State != runtime.StateRunning || !c.Running() || c.StartedAt.IsZero() {
		t.Errorf("inspect %s after start: state %q StartedAt %v, want %q and a start time", name, c.State, c.StartedAt, runtime.StateRunning)
	}

	for i := 1; i <= 2; i++ {
		if err := s.rt.Stop(ctx, []string{name}, stopTimeout); err != nil {
			t.Fatalf("stop %s (call %d): %v", name, i, err)
		}
	}
	c = s.inspect(t, name)
	if c.Running() || c.FinishedAt.IsZero() {
		t.Errorf("inspect %s after stop: state %q FinishedAt %v, want not running and a finish time", name, c.State, c.FinishedAt)
	}

	if err := s.rt.Restart(ctx, name, stopTimeout); err != nil {
		t.Fatalf("restart stopped %s: %v", name, err)
	}
	if c := s.inspect(t, name); c.State != runtime.StateRunning {
		t.Errorf("inspect %s after restart: state %q, want %q", name, c.State, runtime.StateRunning)
	}
	if err := s.rt.Restart(ctx, name, stopTimeout); err != nil {
		t.Fatalf("restart running %s: %v", name, err)
	}
	if c := s.inspect(t, name); c.State != runtime.StateRunning {
		t.Errorf("inspect %s after the second restart: state %q, want %q", name, c.State, runtime.StateRunning)
	}
	if err := s.rt.Stop(ctx, []string{id}, stopTimeout); err != nil {
		t.Fatalf("stop %s by ID: %v", name, err)
	}

	for i := 1; i <= 2; i++ {
		if err := s.rt.Remove(ctx, []string{name}, runtime.RemoveOptions{}); err != nil {
			t.Fatalf("remove %s (call %d): %v", name, i, err)
		}
	}
	if _, err := s.rt.Inspect(ctx, name); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect removed %s: got %v, want class %v", name, err, runtime.ErrNotFound)
	}
	if _, err := s.rt.Inspect(ctx, id); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect removed %s by ID: got %v, want class %v", name, err, runtime.ErrNotFound)
	}

	missing := s.name("never-created")
	if err := s.rt.Stop(ctx, []string{missing}, stopTimeout); err != nil {
		t.Errorf("stop missing %s: got %v, want no error", missing, err)
	}
	if err := s.rt.Remove(ctx, []string{missing}, runtime.RemoveOptions{}); err != nil {
		t.Errorf("remove missing %s: got %v, want no error", missing, err)
	}
	if err := s.rt.Start(ctx, missing); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("start missing %s: got %v, want class %v", missing, err, runtime.ErrNotFound)
	}
	if err := s.rt.Restart(ctx, missing, stopTimeout); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("restart missing %s: got %v, want class %v", missing, err, runtime.ErrNotFound)
	}
}

// stopTimeout is the grace period the suite stops containers with.
const stopTimeout = 5 * time.Second

// testBatch: Stop and Remove take several references, skip missing ones,
// and report per-reference failures in a *runtime.BatchError.
func (s *suite) testBatch(t *testing.T) {
	ctx := s.ctx(t)
	a, b, c := s.name("batch-a"), s.name("batch-b"), s.name("batch-c")
	missing, missing2 := s.name("batch-missing"), s.name("batch-missing2")
	for _, n := range []string{a, b, c} {
		s.create(t, s.simpleSpec(n, nil))
	}
	s.start(t, a)
	s.start(t, b)

	if err := s.rt.Stop(ctx, []string{a, b, missing}, stopTimeout); err != nil {
		t.Fatalf("stop [%s %s %s]: %v", a, b, missing, err)
	}
	for _, n := range []string{a, b} {
		if c := s.inspect(t, n); c.Running() {
			t.Errorf("inspect %s after the batch stop: state %q, want stopped", n, c.State)
		}
	}

	if err := s.rt.Remove(ctx, []string{a, missing}, runtime.RemoveOptions{}); err != nil {
		t.Fatalf("remove [%s %s]: %v", a, missing, err)
	}
	if _, err := s.rt.Inspect(ctx, a); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect %s after the batch remove: got %v, want class %v", a, err, runtime.ErrNotFound)
	}

	// A running container is not removed without Force; the others are.
	s.start(t, c)
	err := s.rt.Remove(ctx, []string{c, b, missing2}, runtime.RemoveOptions{})
	var be *runtime.BatchError
	switch {
	case err == nil:
		t.Errorf("remove [%s(running) %s %s] without force: got no error, want a *runtime.BatchError for %s", c, b, missing2, c)
	case !errors.As(err, &be):
		t.Errorf("remove [%s(running) %s %s] without force: got %T %v, want a *runtime.BatchError", c, b, missing2, err, err)
	default:
		if got := slices.Sorted(maps.Keys(be.Failed)); !slices.Equal(got, []string{c}) {
			t.Errorf("remove without force: failed refs %v, want [%s]", got, c)
		}
		if runtime.Class(be.Failed[c]) == nil {
			t.Errorf("remove without force: the error for %s (%v) belongs to no error class", c, be.Failed[c])
		}
	}
	if _, err := s.rt.Inspect(ctx, b); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect %s after the partly failed remove: got %v, want class %v", b, err, runtime.ErrNotFound)
	}
	if got := s.inspect(t, c); !got.Running() {
		t.Errorf("inspect %s after the refused remove: state %q, want running", c, got.State)
	}
	if err := s.rt.Remove(ctx, []string{c}, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove %s with force: %v", c, err)
	}
	if _, err := s.rt.Inspect(ctx, c); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect %s after the forced remove: got %v, want class %v", c, err, runtime.ErrNotFound)
	}
	if err := s.rt.Stop(ctx, nil, stopTimeout); err != nil {
		t.Errorf("stop of no containers: %v", err)
	}
	if err := s.rt.Remove(ctx, nil, runtime.RemoveOptions{}); err != nil {
		t.Errorf("remove of no containers: %v", err)
	}
}

// testList: List selects exactly the containers whose labels match, by
// key=value and by key alone, fully inspected.
func (s *suite) testList(t *testing.T) {
	ctx := s.ctx(t)
	const group, role, tier = "zaki.conformance.list", "zaki.conformance.role", "zaki.conformance.tier"
	sel := func(kv ...string) map[string]string {
		m := map[string]string{group: s.run}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	names := map[string]string{} // role -> name
	ids := map[string]string{}   // name -> ID
	for _, r := range []string{"a", "b", "c"} {
		labels := map[string]string{group: s.run, role: r}
		if r != "c" {
			labels[tier] = "1"
		}
		n := s.name("list-" + r)
		names[r] = n
		ids[n] = s.create(t, s.simpleSpec(n, labels))
	}
	s.start(t, names["a"])

	cases := []struct {
		name     string
		selector map[string]string
		want     []string // roles
	}{
		{"Group", sel(), []string{"a", "b", "c"}},
		{"KeyValue", sel(role, "b"), []string{"b"}},
		{"KeyOnly", sel(tier, ""), []string{"a", "b"}},
		{"TwoKeys", sel(role, "a", tier, "1"), []string{"a"}},
		{"NoMatch", sel(role, "zzz"), nil},
		{"ValueIsNotKey", sel(role, "1"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := s.rt.List(ctx, runtime.ListOptions{Labels: tc.selector})
			if err != nil {
				t.Fatalf("list %v: %v", tc.selector, err)
			}
			var got, want []string
			for _, c := range cs {
				got = append(got, c.Name)
				if ids[c.Name] != "" && c.ID != ids[c.Name] {
					t.Errorf("list %v: %s has ID %q, want %q", tc.selector, c.Name, c.ID, ids[c.Name])
				}
				for k, v := range tc.selector {
					if g, ok := c.Spec.Labels[k]; !ok || (v != "" && g != v) {
						t.Errorf("list %v: %s has Spec.Labels %v, which do not match (or List did not inspect it)", tc.selector, c.Name, c.Spec.Labels)
					}
				}
				if c.Image != s.cfg.Image || c.State == "" {
					t.Errorf("list %v: %s has Image %q State %q, want %q and a state", tc.selector, c.Name, c.Image, c.State, s.cfg.Image)
				}
			}
			for _, r := range tc.want {
				want = append(want, names[r])
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("list %v: got %v, want %v", tc.selector, got, want)
			}
		})
	}
}
