package runtimetest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testContext: every method gives up at once on a ctx that is already
// done: a cancelled ctx is context.Canceled (or ErrTimeout), a passed
// deadline is ErrTimeout; nothing hangs and nothing is created. Events and
// Logs may instead return a stream that ends at once.
func (s *suite) testContext(t *testing.T) {
	name := s.name("ctx")
	s.create(t, s.simpleSpec(name, nil))
	created := s.name("ctx-new")
	s.removeLater(t, created)
	network := s.name("net-ctx")
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		s.rt.RemoveNetwork(ctx, network)
	})
	pull := s.cfg.PullRef
	if pull == "" {
		pull = s.cfg.Image
	}

	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Info", func(ctx context.Context) error { _, err := s.rt.Info(ctx); return err }},
		{"ImageID", func(ctx context.Context) error { _, err := s.rt.ImageID(ctx, s.cfg.Image); return err }},
		{"PullImage", func(ctx context.Context) error { return s.rt.PullImage(ctx, pull, nil) }},
		{"EnsureNetwork", func(ctx context.Context) error {
			return s.rt.EnsureNetwork(ctx, runtime.NetworkSpec{Name: network, Labels: s.labels()})
		}},
		{"RemoveNetwork", func(ctx context.Context) error { return s.rt.RemoveNetwork(ctx, network) }},
		{"Create", func(ctx context.Context) error { _, err := s.rt.Create(ctx, s.simpleSpec(created, nil)); return err }},
		{"Start", func(ctx context.Context) error { return s.rt.Start(ctx, name) }},
		{"Stop", func(ctx context.Context) error { return s.rt.Stop(ctx, []string{name}, stopTimeout) }},
		{"Restart", func(ctx context.Context) error { return s.rt.Restart(ctx, name, stopTimeout) }},
		{"Pause", func(ctx context.Context) error { return s.rt.Pause(ctx, name) }},
		{"Resume", func(ctx context.Context) error { return s.rt.Resume(ctx, name) }},
		{"Remove", func(ctx context.Context) error {
			return s.rt.Remove(ctx, []string{created}, runtime.RemoveOptions{Force: true})
		}},
		{"Inspect", func(ctx context.Context) error { _, err := s.rt.Inspect(ctx, name); return err }},
		{"List", func(ctx context.Context) error {
			_, err := s.rt.List(ctx, runtime.ListOptions{Labels: s.labels()})
			return err
		}},
		{"Events", func(ctx context.Context) error {
			stream, err := s.rt.Events(ctx, runtime.EventOptions{Labels: s.labels()})
			if err != nil {
				return err
			}
			defer stream.Close()
			if _, err := stream.Recv(); err == nil {
				return errors.New("events: got an event from a stream whose ctx was done")
			}
			return nil
		}},
		{"Logs", func(ctx context.Context) error {
			rc, err := s.rt.Logs(ctx, name, runtime.LogOptions{Follow: true})
			if err != nil {
				return err
			}
			defer rc.Close()
			io.ReadAll(rc)
			return nil
		}},
	}
	kinds := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		ok   func(error) bool
		want string
	}{
		{
			name: "Canceled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx, cancel
			},
			ok: func(err error) bool {
				return errors.Is(err, context.Canceled) || runtime.Class(err) == runtime.ErrTimeout
			},
			want: "context.Canceled or class timeout",
		},
		{
			name: "Deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
			},
			ok:   func(err error) bool { return runtime.Class(err) == runtime.ErrTimeout },
			want: "class timeout",
		},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, c := range calls {
				ctx, cancel := k.ctx()
				var err error
				if !within(t, s.cfg.Timeout, c.name+" with a done ctx", func() { err = c.call(ctx) }) {
					cancel()
					continue
				}
				cancel()
				stream := c.name == "Events" || c.name == "Logs"
				switch {
				case err == nil && !stream:
					t.Errorf("%s with a done ctx: got no error, want %s", c.name, k.want)
				case err != nil && !k.ok(err):
					t.Errorf("%s with a done ctx: got %v (class %v), want %s", c.name, err, runtime.Class(err), k.want)
				}
			}
		})
	}
	ctx := s.ctx(t)
	if _, err := s.rt.Inspect(ctx, created); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("inspect %s after creates with a done ctx: got %v, want class %v", created, err, runtime.ErrNotFound)
	}
	if c := s.inspect(t, name); c.State != runtime.StateCreated {
		t.Errorf("inspect %s after starts with a done ctx: state %q, want %q", name, c.State, runtime.StateCreated)
	}
}
