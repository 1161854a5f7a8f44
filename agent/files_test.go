package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// The platform's layout: two sub-dirs of the data dir, each mounted.
var twoMounts = func(c *Config) {
	c.Instance.Mounts = []string{".openclaw:/home/node/.openclaw", "workspace:/home/node/workspace"}
}

func TestConfigMounts(t *testing.T) {
	for name, tc := range map[string]struct {
		mounts []string
		want   string
	}{
		"default":          {},
		"two":              {mounts: []string{".openclaw:/home/node/.openclaw", "workspace:/home/node/workspace"}},
		"whole dir":        {mounts: []string{".:/data"}},
		"no colon":         {mounts: []string{"workspace"}, want: "want subdir:/container/path"},
		"absolute sub-dir": {mounts: []string{"/etc:/etc"}, want: "not an absolute one"},
		"dotdot sub-dir":   {mounts: []string{"../x:/x"}, want: `".." elements`},
		"relative target":  {mounts: []string{"w:home/w"}, want: "clean absolute path"},
		"unclean target":   {mounts: []string{"w:/home/../w"}, want: "clean absolute path"},
		"root target":      {mounts: []string{"w:/"}, want: "clean absolute path"},
		"comma target":     {mounts: []string{"w:/a,b"}, want: "clean absolute path"},
		"same sub-dir":     {mounts: []string{"w:/a", "w:/b"}, want: "mounted twice"},
		"nested sub-dirs":  {mounts: []string{"w:/a", "w/x:/b"}, want: "nest"},
		"dot and sub-dir":  {mounts: []string{".:/a", "w:/b"}, want: "nest"},
		"same target":      {mounts: []string{"a:/x", "b:/x"}, want: "used twice"},
		"nested targets":   {mounts: []string{"a:/x", "b:/x/y"}, want: "nest"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Instance.Mounts = tc.mounts
			err := cfg.Validate()
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, "instance.mounts")
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestConfigReservedPorts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Instance.ReservedPorts = []string{"18790", "19001-19100"}
	assert.NilError(t, cfg.Validate())
	for _, bad := range []string{"x", "0", "70000", "20-10", "1-"} {
		cfg.Instance.ReservedPorts = []string{bad}
		assert.ErrorContains(t, cfg.Validate(), "instance.reservedPorts")
	}
}

func TestFilesAcrossMounts(t *testing.T) {
	e := newFakeEnv(t, twoMounts)
	ctx := context.Background()
	dir := filepath.Join(e.cfg.StateDir, "instances", "ana")
	spec := InstanceSpec{
		Files:     map[string]string{".openclaw/openclaw.json": `{"gateway":{}}`},
		SeedFiles: map[string]string{"workspace/SOUL.md": "soul", "workspace/memory/2026-12-05.md": "day one"},
	}
	in := e.ensure("ana", spec)
	cs, ok := e.fake.CreatedSpec(in.ContainerID)
	assert.Assert(t, ok)
	assert.DeepEqual(t, cs.Mounts, []runtime.Mount{
		{Source: filepath.Join(dir, ".openclaw"), Target: "/home/node/.openclaw"},
		{Source: filepath.Join(dir, "workspace"), Target: "/home/node/workspace"},
	})
	for name, want := range map[string]string{".openclaw/openclaw.json": `{"gateway":{}}`, "workspace/SOUL.md": "soul", "workspace/memory/2026-12-05.md": "day one"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		assert.NilError(t, err)
		assert.Equal(t, string(b), want)
		fi, err := os.Stat(filepath.Join(dir, name))
		assert.NilError(t, err)
		assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))
	}
	for _, d := range []string{"workspace", "workspace/memory", ".openclaw"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		assert.NilError(t, err)
		assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o700), d)
	}

	// The instance edits a seed file; a stop, a start and a recreate keep
	// the edit. A plain start rewrites nothing, not even managed files.
	soul := filepath.Join(dir, "workspace/SOUL.md")
	assert.NilError(t, os.WriteFile(soul, []byte("edited by the instance"), 0o600))
	cfgFile := filepath.Join(dir, ".openclaw/openclaw.json")
	assert.NilError(t, os.WriteFile(cfgFile, []byte("changed by hand"), 0o600))
	_, err := e.a.Stop(ctx, "ana")
	assert.NilError(t, err)
	assert.Equal(t, e.ensure("ana", spec).Outcome, OutcomeStarted)
	b, _ := os.ReadFile(cfgFile)
	assert.Equal(t, string(b), "changed by hand", "a plain start rewrote a managed file")

	// Seed files are not hashed; managed files are.
	spec2 := spec
	spec2.SeedFiles = map[string]string{"workspace/SOUL.md": "another soul"}
	same := e.ensure("ana", spec2)
	assert.Equal(t, same.ConfigHash, in.ConfigHash)
	spec2.Files = map[string]string{".openclaw/openclaw.json": `{"gateway":{"v":2}}`}
	e.clock.Add(10 * time.Minute)
	re := e.ensure("ana", spec2)
	assert.Equal(t, re.Outcome, OutcomeRecreated)
	assert.Assert(t, re.ConfigHash != in.ConfigHash)
	b, _ = os.ReadFile(soul)
	assert.Equal(t, string(b), "edited by the instance")
	b, _ = os.ReadFile(cfgFile)
	assert.Equal(t, string(b), `{"gateway":{"v":2}}`)
}

func TestFilesOutsideMountsRefused(t *testing.T) {
	e := newFakeEnv(t, twoMounts)
	_, err := e.a.Ensure(context.Background(), "bo", InstanceSpec{Files: map[string]string{"notes.txt": "x"}}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrInvalidArgument), "got %v", err)
	assert.ErrorContains(t, err, "no mounted sub-dir")
}

func TestFilesThroughSymlinkRefused(t *testing.T) {
	e := newFakeEnv(t, twoMounts)
	outside := t.TempDir()
	dir := filepath.Join(e.cfg.StateDir, "instances", "cy")
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "workspace"), 0o700))
	// Planted by the instance: a link out of the data dir.
	assert.NilError(t, os.Symlink(outside, filepath.Join(dir, "workspace", "memory")))
	e.fake.ResetCalls()
	for name, spec := range map[string]InstanceSpec{
		"file":      {Files: map[string]string{"workspace/memory/x.md": "x", "workspace/a.md": "a"}},
		"seed file": {SeedFiles: map[string]string{"workspace/memory/x.md": "x", "workspace/a.md": "a"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.a.Ensure(context.Background(), "cy", spec, EnsureOptions{})
			assert.Assert(t, errors.Is(err, errdefs.ErrConflict), "got %v", err)
			assert.ErrorContains(t, err, "symlink")
			entries, err := os.ReadDir(outside)
			assert.NilError(t, err)
			assert.Equal(t, len(entries), 0, "written outside the data dir")
			_, err = os.Lstat(filepath.Join(dir, "workspace", "a.md"))
			assert.Assert(t, errors.Is(err, os.ErrNotExist), "a refused ensure wrote a file")
		})
	}
	// A mounted sub-dir that is a symlink is refused too: the engine would
	// follow it.
	assert.NilError(t, os.RemoveAll(filepath.Join(dir, "workspace")))
	assert.NilError(t, os.Symlink(outside, filepath.Join(dir, "workspace")))
	_, err := e.a.Ensure(context.Background(), "cy", InstanceSpec{}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrConflict), "got %v", err)
	assert.Equal(t, e.fake.Calls("Create"), 0)
}

func TestRefusedRecreateKeepsContainer(t *testing.T) {
	e := newFakeEnv(t, twoMounts)
	first := e.ensure("di", InstanceSpec{Files: map[string]string{"workspace/notes/a.md": "a"}})
	dir := filepath.Join(e.cfg.StateDir, "instances", "di")
	assert.NilError(t, os.RemoveAll(filepath.Join(dir, "workspace", "notes")))
	assert.NilError(t, os.Symlink(t.TempDir(), filepath.Join(dir, "workspace", "notes")))
	e.clock.Add(10 * time.Minute) // cold: a changed spec would recreate it
	_, err := e.a.Ensure(context.Background(), "di", InstanceSpec{Files: map[string]string{"workspace/notes/a.md": "b"}}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrConflict), "got %v", err)
	c, ok := e.fake.Container("zaki-user-di")
	assert.Assert(t, ok, "the old container was removed")
	assert.Equal(t, c.ID, first.ContainerID)
}
