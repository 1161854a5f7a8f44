package agent

// Mounts, files, seed files and ports against the real Docker engine.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// readIn reads a file at an absolute path as the instance's container
// sees it, through the engine (docker cp, which resolves its mounts).
func readIn(t *testing.T, in Instance, p string) string {
	t.Helper()
	out, err := exec.Command("docker", "cp", in.ContainerID+":"+p, "-").Output()
	assert.NilError(t, err, "docker cp %s", p)
	tr := tar.NewReader(bytes.NewReader(out))
	_, err = tr.Next()
	assert.NilError(t, err)
	b, err := io.ReadAll(tr)
	assert.NilError(t, err)
	return string(b)
}

func TestEngineMountsAndSeedFiles(t *testing.T) {
	e := newEngineEnv(t, twoMounts)
	dir := filepath.Join(e.cfg.StateDir, "instances", "tree")
	spec := InstanceSpec{
		Files: map[string]string{".openclaw/openclaw.json": `{"gateway":{"port":18789}}`},
		SeedFiles: map[string]string{
			"workspace/SOUL.md":              "# Soul\n",
			"workspace/MEMORY.md":            "# Memory\n",
			"workspace/memory/2026-12-05.md": "day one\n",
		},
	}
	first := e.ensure("tree", spec)
	assert.Equal(t, first.Outcome, OutcomeCreated)

	// The tree is in the container, at both paths.
	assert.Equal(t, readIn(t, first, "/home/node/.openclaw/openclaw.json"), `{"gateway":{"port":18789}}`)
	assert.Equal(t, readIn(t, first, "/home/node/workspace/SOUL.md"), "# Soul\n")
	assert.Equal(t, readIn(t, first, "/home/node/workspace/memory/2026-12-05.md"), "day one\n")
	mounts := strings.Fields(testenv.Docker(t, "inspect", "-f", `{{range .Mounts}}{{.Source}}={{.Destination}} {{end}}`, first.ContainerID))
	sort.Strings(mounts)
	assert.DeepEqual(t, mounts, []string{filepath.Join(dir, ".openclaw") + "=/home/node/.openclaw", filepath.Join(dir, "workspace") + "=/home/node/workspace"})

	// The instance (its own uid) edits a seed file and writes its own file
	// in a sub-dir the agent made.
	assert.Equal(t, httpDo(t, "POST", first.URL+"/write?path=/home/node/workspace/MEMORY.md", "remembered by the assistant"), "written\n")
	assert.Equal(t, httpDo(t, "POST", first.URL+"/write?path=/home/node/workspace/memory/2026-12-06.md", "day two"), "written\n")
	b, err := os.ReadFile(filepath.Join(dir, "workspace", "MEMORY.md"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "remembered by the assistant")

	// Stop and start: nothing rewritten.
	_, err = e.a.Stop(context.Background(), "tree")
	assert.NilError(t, err)
	started := e.ensure("tree", spec)
	assert.Equal(t, started.Outcome, OutcomeStarted)
	assert.Equal(t, readIn(t, started, "/home/node/workspace/MEMORY.md"), "remembered by the assistant")

	// A seed file changes nothing; a managed file changes the hash, and the
	// cold instance is made anew with it. The edit survives.
	spec.SeedFiles = map[string]string{"workspace/MEMORY.md": "# Memory, v2\n"}
	assert.Equal(t, e.ensure("tree", spec).ConfigHash, first.ConfigHash)
	spec.Files = map[string]string{".openclaw/openclaw.json": `{"gateway":{"port":18789,"v":2}}`}
	e.clock.Add(6 * time.Minute)
	re := e.ensure("tree", spec)
	assert.Equal(t, re.Outcome, OutcomeRecreated)
	assert.Assert(t, re.ConfigHash != first.ConfigHash)
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", `{{index .Config.Labels "`+e.cfg.Instance.LabelPrefix+`.configHash"}}`, re.ContainerID), re.ConfigHash)
	assert.Equal(t, readIn(t, re, "/home/node/.openclaw/openclaw.json"), `{"gateway":{"port":18789,"v":2}}`)
	assert.Equal(t, readIn(t, re, "/home/node/workspace/MEMORY.md"), "remembered by the assistant")
	assert.Equal(t, readIn(t, re, "/home/node/workspace/memory/2026-12-06.md"), "day two")
}

func TestEngineFilePathsRefused(t *testing.T) {
	e := newEngineEnv(t, twoMounts)
	ctx := context.Background()
	in := e.ensure("safe", InstanceSpec{})
	dir := filepath.Join(e.cfg.StateDir, "instances", "safe")
	outside := t.TempDir()
	// A symlink planted in the data dir, where the instance can write.
	assert.NilError(t, os.Symlink(outside, filepath.Join(dir, "workspace", "memory")))
	for name, tc := range map[string]struct {
		spec  InstanceSpec
		class error
	}{
		"dotdot":          {InstanceSpec{Files: map[string]string{"workspace/../../escape": "x"}}, errdefs.ErrInvalidArgument},
		"absolute":        {InstanceSpec{Files: map[string]string{"/etc/escape": "x"}}, errdefs.ErrInvalidArgument},
		"seed dotdot":     {InstanceSpec{SeedFiles: map[string]string{"../escape": "x"}}, errdefs.ErrInvalidArgument},
		"through symlink": {InstanceSpec{Files: map[string]string{"workspace/memory/x.md": "x", "workspace/ok.md": "ok"}}, errdefs.ErrConflict},
		// With a managed file, so that the spec changes: seed files alone
		// are not hashed, and a running instance is reused without a write.
		"seed through": {InstanceSpec{Files: map[string]string{"workspace/ok.md": "ok"}, SeedFiles: map[string]string{"workspace/memory/x.md": "x"}}, errdefs.ErrConflict},
	} {
		t.Run(name, func(t *testing.T) {
			e.clock.Add(6 * time.Minute) // cold: a changed spec would recreate it
			_, err := e.a.Ensure(ctx, "safe", tc.spec, EnsureOptions{})
			assert.Assert(t, errors.Is(err, tc.class), "got %v", err)
		})
	}
	entries, err := os.ReadDir(outside)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0, "written outside the data dir")
	_, err = os.Lstat(filepath.Join(dir, "workspace", "ok.md"))
	assert.Assert(t, errors.Is(err, os.ErrNotExist), "a refused ensure wrote a file")
	_, err = os.Lstat(filepath.Join(e.cfg.StateDir, "escape"))
	assert.Assert(t, errors.Is(err, os.ErrNotExist))
	// The instance was left alone.
	assert.Equal(t, testenv.Docker(t, "inspect", "-f", "{{.State.Running}}", in.ContainerID), "true")
}

func TestEnginePortInUseSkipped(t *testing.T) {
	e := newEngineEnv(t)
	lo, _, err := e.cfg.Instance.Ports()
	assert.NilError(t, err)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo))
	if err != nil {
		t.Skipf("port %d is in use already: %v", lo, err)
	}
	defer ln.Close()
	in := e.ensure("skip", InstanceSpec{})
	assert.Assert(t, in.Port != lo, "handed out a port another process holds")
	assert.Equal(t, strings.TrimSpace(httpDo(t, "GET", in.URL+"/health", "")), "ok")
}

func TestEnginePortTakenAtStartMovesUser(t *testing.T) {
	e := newEngineEnv(t)
	ctx := context.Background()
	first := e.ensure("mover", InstanceSpec{})
	_, err := e.a.Stop(ctx, "mover")
	assert.NilError(t, err)
	// Another process takes the port while the instance is stopped.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first.Port))
	assert.NilError(t, err)
	defer ln.Close()

	sub := e.a.Subscribe(256)
	defer sub.Close()
	in := e.ensure("mover", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Assert(t, in.Port != first.Port)
	p, _ := e.reg.Port("mover")
	assert.Equal(t, p, in.Port)
	assert.Equal(t, strings.TrimSpace(httpDo(t, "GET", in.URL+"/health", "")), "ok")
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			if ev.Type == EventPortChanged {
				assert.Equal(t, ev.UserID, "mover")
				assert.Equal(t, ev.OldPort, first.Port)
				assert.Equal(t, ev.Port, in.Port)
				return
			}
		case <-deadline:
			t.Fatal("no instance.port_changed event")
		}
	}
}
