package runtimetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testInfo: Info answers and names the runtime and the engine's version.
func (s *suite) testInfo(t *testing.T) {
	info, err := s.rt.Info(s.ctx(t))
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Runtime == "" {
		t.Errorf("info: Runtime is empty")
	}
	if info.EngineVersion == "" {
		t.Errorf("info: EngineVersion is empty")
	}
}

// testImages: ImageID is a "sha256:" ID for Image and "" for an image
// that is not there.
func (s *suite) testImages(t *testing.T) {
	ctx := s.ctx(t)
	id, err := s.rt.ImageID(ctx, s.cfg.Image)
	if err != nil {
		t.Fatalf("image id %s: %v", s.cfg.Image, err)
	}
	if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+64 {
		t.Errorf("image id %s: got %q, want sha256:<64 hex> (Config.Image must be present)", s.cfg.Image, id)
	}
	absent := "zaki/conformance-absent:" + strings.ToLower(s.run)
	id, err = s.rt.ImageID(ctx, absent)
	if err != nil {
		t.Fatalf("image id %s: %v", absent, err)
	}
	if id != "" {
		t.Errorf("image id %s: got %q, want \"\"", absent, id)
	}
}

// testPull: PullImage brings PullRef in (ImageID "", then an ID),
// reporting progress lines only while it runs, and an image event stream
// (EventOptions.Images) tells of it; a reference nobody serves fails.
func (s *suite) testPull(t *testing.T) {
	if s.cfg.PullSetup != nil {
		s.cfg.PullSetup(t)
	}
	if s.cfg.PullRef == "" {
		t.Skip("Config.PullRef is empty: no pull check (allowed without a real engine only)")
	}
	ref := s.cfg.PullRef
	ctx := s.ctx(t)
	id, err := s.rt.ImageID(ctx, ref)
	if err != nil {
		t.Fatalf("image id %s: %v", ref, err)
	}
	if id != "" {
		t.Fatalf("image id %s before the pull: got %q, want \"\" (PullSetup must remove it)", ref, id)
	}
	events := s.watchOpts(t, runtime.EventOptions{Labels: s.labels(), Images: true})

	var (
		mu       sync.Mutex
		lines    []runtime.PullProgress
		returned bool
		late     int
	)
	err = s.rt.PullImage(ctx, ref, func(p runtime.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			late++
		}
		lines = append(lines, p)
	})
	mu.Lock()
	returned = true
	got := append([]runtime.PullProgress(nil), lines...)
	mu.Unlock()
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if len(got) == 0 {
		t.Errorf("pull %s: got no progress lines, want at least one", ref)
	}
	for _, p := range got {
		if p.Ref != ref || strings.TrimSpace(p.Status) == "" {
			t.Errorf("pull %s: progress %+v: want Ref %q and a status", ref, p, ref)
		}
	}
	id, err = s.rt.ImageID(ctx, ref)
	if err != nil {
		t.Fatalf("image id %s after the pull: %v", ref, err)
	}
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("image id %s after the pull: got %q, want an ID", ref, id)
	}
	if info, err := s.rt.Info(ctx); err == nil && info.ImageEvents {
		events.until(t, 30*time.Second, "image pull event", func(ev runtime.Event) bool {
			return ev.Image && ev.Action == runtime.EventImagePull
		})
	}
	// A pull from a registry that does not answer fails (whatever the class).
	bad := "127.0.0.1:1/zaki/conformance-absent:" + strings.ToLower(s.run)
	if err := s.rt.PullImage(ctx, bad, nil); err == nil {
		t.Errorf("pull %s: got no error, want one", bad)
	} else if runtime.Class(err) == nil {
		t.Errorf("pull %s: error %q belongs to no error class", bad, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if late > 0 {
		t.Errorf("pull %s: progress called %d times after PullImage returned", ref, late)
	}
}

// testNetworks: EnsureNetwork and RemoveNetwork are idempotent.
func (s *suite) testNetworks(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("net-idem")
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		s.rt.RemoveNetwork(ctx, name)
	})
	spec := runtime.NetworkSpec{Name: name, DisableICC: true, Labels: s.labels()}
	for i := 1; i <= 2; i++ {
		if err := s.rt.EnsureNetwork(ctx, spec); err != nil {
			t.Fatalf("ensure network %s (call %d): %v", name, i, err)
		}
	}
	// The network is usable: a container joins it.
	c := s.simpleSpec(s.name("net-user"), nil)
	c.Network = name
	s.create(t, c)
	if err := s.rt.Remove(ctx, []string{c.Name}, runtime.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove %s: %v", c.Name, err)
	}
	for i := 1; i <= 2; i++ {
		if err := s.rt.RemoveNetwork(ctx, name); err != nil {
			t.Errorf("remove network %s (call %d): %v", name, i, err)
		}
	}
	// Without the network, a container cannot join it.
	c.Name = s.name("net-gone")
	s.removeLater(t, c.Name)
	if _, err := s.rt.Create(ctx, c); err == nil {
		if err := s.rt.Start(ctx, c.Name); err == nil {
			t.Errorf("create and start %s on removed network %s: got no error, want one", c.Name, name)
		}
	}
}
