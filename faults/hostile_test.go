package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// escapes are strings built to escape whatever they end up in: a path, an
// argv, an env file, a label.
var escapes = []string{
	"..", ".", "../", "../../etc/passwd", "a/../../b", "/etc/passwd", "a/b",
	"--privileged", "-v=/:/host", "--net=host", "-e",
	"a\x00b", "a\nb", "a\rb", "a b", "a;rm -rf /", "$(id)", "`id`", "a=b",
	"ä", "\u202eevil", strings.Repeat("a", 10*1024),
}

// TestHostileInput sends user IDs, env keys and values, file names,
// labels, resources and images built to escape, through the Go client and
// as raw HTTP: every one is refused with 400 invalid_argument (an image
// outside allowedImages: 403 forbidden) before any
// engine call (the agent's docker commands are counted by a shim on its
// PATH, and its runtime calls by GET /metrics), and no file is ever
// written outside the user's data dir, symlinks and hard links included.
func TestHostileInput(t *testing.T) {
	l := newLedger(t, "hostile input")
	shim := dockerShim(t)
	p := testenv.StartAgent(t, testenv.AgentOptions{
		Env: shimEnv(shim),
		// No periodic resync during the test: every engine call counted
		// would be the hostile request's.
		Config: "# harness\n[prune]\nintervalMinutes = 600\n",
	})
	ctx := context.Background()
	_, err := p.Client.Ensure(ctx, "victim", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "v1"}})
	assert.NilError(t, err)
	// Control: the shim does see the agent's docker commands.
	assert.Assert(t, len(shimCalls(shim)) > 0 && runtimeCalls(t, p.Client) > 0, "the shim and the metrics saw no engine call: the test would prove nothing")
	// The agent's own background work after its start (image references
	// resolved again after the first reconciliation) ends first: from
	// here on, every engine call would be one a refused call caused.
	waitQuiet(t, p, shim)
	before := treeOf(t, p.Dir)

	// refused runs call and checks that it was refused with 400 and that
	// the agent made no engine call meanwhile.
	// refusedAs checks that call is refused with status and class, and
	// that nothing reached the engine.
	refusedAs := func(t *testing.T, what string, status int, class error, call func() error) {
		t.Helper()
		shimBefore, metricsBefore := len(shimCalls(shim)), runtimeCalls(t, p.Client)
		l.fault(1)
		err := call()
		var apiErr *socketapi.Error
		l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == status && errors.Is(err, class),
			"%s: want %d %v, got %v", what, status, class, err)
		shimAfter, metricsAfter := shimCalls(shim), runtimeCalls(t, p.Client)
		l.checkT(t, len(shimAfter) == shimBefore, "%s: the agent ran docker %v", what, shimAfter[shimBefore:])
		l.checkT(t, metricsAfter == metricsBefore, "%s: runtime calls %v -> %v", what, metricsBefore, metricsAfter)
	}
	refused := func(t *testing.T, what string, call func() error) {
		t.Helper()
		refusedAs(t, what, http.StatusBadRequest, socketapi.ErrInvalidArgument, call)
	}
	// An image that is no valid reference is invalid input (400); a valid
	// one outside allowedImages is forbidden (403), as the packaged config
	// says.
	imageRefused := func(t *testing.T, what, img string, call func() error) {
		t.Helper()
		if runtime.ValidateImage(img) != nil {
			refused(t, what, call)
			return
		}
		refusedAs(t, what, http.StatusForbidden, socketapi.ErrForbidden, call)
	}

	t.Run("user IDs", func(t *testing.T) {
		ids := append([]string{}, escapes...)
		ids = append(ids, "-", "_a", strings.Repeat("b", 64))
		for _, id := range ids {
			q := fmt.Sprintf("%.40q", id)
			refused(t, "ensure "+q, func() error { _, err := p.Client.Ensure(ctx, id, socketapi.InstanceSpec{}); return err })
			refused(t, "get "+q, func() error { _, err := p.Client.Get(ctx, id); return err })
			refused(t, "touch "+q, func() error { _, err := p.Client.Touch(ctx, id); return err })
			refused(t, "stop "+q, func() error { _, err := p.Client.Stop(ctx, id); return err })
			refused(t, "restart "+q, func() error { _, err := p.Client.Restart(ctx, id); return err })
			refused(t, "remove "+q, func() error { return p.Client.Remove(ctx, id, true) })
			refused(t, "logs "+q, func() error {
				rc, err := p.Client.Logs(ctx, id, socketapi.LogOptions{})
				if err == nil {
					rc.Close()
				}
				return err
			})
		}
	})

	t.Run("env keys and values", func(t *testing.T) {
		for _, k := range append(escapes, "", "1A") {
			refused(t, fmt.Sprintf("env key %.40q", k), func() error {
				_, err := p.Client.Ensure(ctx, "victim", socketapi.InstanceSpec{Env: map[string]string{k: "x"}})
				return err
			})
		}
		for _, v := range []string{"x\nINJECTED=1", "x\ry", "x\x00y"} {
			refused(t, fmt.Sprintf("env value %q", v), func() error {
				_, err := p.Client.Ensure(ctx, "victim", socketapi.InstanceSpec{Env: map[string]string{"OK_KEY": v}})
				return err
			})
		}
	})

	t.Run("file names", func(t *testing.T) {
		// Relative paths of plain names are files of the data dir (a name is
		// never an argument of a command): "a/b", "-e", ".hidden" are
		// valid, every other escape is not.
		valid := map[string]bool{"a/b": true, "--privileged": true, "-e": true}
		var names []string
		for _, name := range escapes {
			if !valid[name] {
				names = append(names, name)
			}
		}
		names = append(names, "", "x/..", "a/./b", "a//b", "./a", "a/", "a\\b", "a/b/c/d/e/f/g/h/i")
		for _, name := range names {
			refused(t, fmt.Sprintf("file %.40q", name), func() error {
				_, err := p.Client.Ensure(ctx, "victim", socketapi.InstanceSpec{Files: map[string]string{name: "pwned"}})
				return err
			})
		}
	})

	t.Run("labels and resources", func(t *testing.T) {
		specs := map[string]socketapi.InstanceSpec{
			"the agent's label":    {Labels: map[string]string{p.LabelPrefix + ".userId": "bob"}},
			"the agent's prefix":   {Labels: map[string]string{p.LabelPrefix: "1"}},
			"label value newline":  {Labels: map[string]string{"plan": "a\nb"}},
			"label key escape":     {Labels: map[string]string{"--privileged": "1"}},
			"memory over ceiling":  {Resources: &socketapi.Resources{Memory: "64g"}},
			"memory under minimum": {Resources: &socketapi.Resources{Memory: "1k"}},
			"memory garbage":       {Resources: &socketapi.Resources{Memory: "2g --privileged"}},
			"cpus over ceiling":    {Resources: &socketapi.Resources{CPUs: 64}},
			"cpus negative":        {Resources: &socketapi.Resources{CPUs: -1}},
			"pids over ceiling":    {Resources: &socketapi.Resources{Pids: 1 << 40}},
			"pids negative":        {Resources: &socketapi.Resources{Pids: -1}},
			"file too large":       {Files: map[string]string{"big.json": strings.Repeat("x", 300<<10)}},
			"too many files":       {Files: manyFiles(70)},
			"too many env vars":    {Env: manyEnv(300)},
		}
		for what, spec := range specs {
			refused(t, what, func() error { _, err := p.Client.Ensure(ctx, "victim", spec); return err })
		}
	})

	t.Run("images outside allowedImages", func(t *testing.T) {
		for _, img := range []string{
			"alpine:latest", "busybox", "docker.io/library/alpine:3", "zaki", "zaki/../alpine", "zaki/x/y",
			"localhost:5000/zaki/x", "evil.example/zaki/gateway-stub:latest", "--privileged", "-v=/:/host",
			"zaki/x --privileged", "zaki/x\n", "zaki/x\x00", "ZAKI/X", "zaki/" + strings.Repeat("a", 10*1024),
		} {
			imageRefused(t, fmt.Sprintf("image %.40q", img), img, func() error {
				_, err := p.Client.Ensure(ctx, "newcomer", socketapi.InstanceSpec{Image: img})
				return err
			})
		}
	})

	t.Run("raw requests", func(t *testing.T) {
		for _, r := range []struct{ method, path, body string }{
			{"PUT", "/v1/instances/..%2F..%2Fetc", ""},
			{"PUT", "/v1/instances/%2E%2E", ""},
			{"PUT", "/v1/instances/a%00b", ""},
			{"PUT", "/v1/instances/a%0Ab", ""},
			{"PUT", "/v1/instances/--privileged", ""},
			{"GET", "/v1/instances/%2Fetc%2Fpasswd", ""},
			{"DELETE", "/v1/instances/..?purge=true", ""},
			{"PUT", "/v1/instances/victim", `{"privileged": true}`},
			{"PUT", "/v1/instances/victim", `{"hostConfig": {"Binds": ["/:/host"]}}`},
			{"PUT", "/v1/instances/victim", `{"env": {"A": "x"}, "env": {"B": "y"}}`},
			{"PUT", "/v1/instances/victim", `{"files": {"../../x": "pwned"}}`},
			{"PUT", "/v1/instances/victim", `{"files": {"a\u0000b": "pwned"}}`},
			{"PUT", "/v1/instances/victim", `{"env": {"LD_PRELOAD\n": "x"}}`},
			{"PUT", "/v1/instances/victim", "{\"image\": \"zaki/\xff\"}"},
			{"POST", "/v1/prune", `{"idleHours": -1}`},
			{"GET", "/v1/instances?state=..%2F", ""},
		} {
			refused(t, r.method+" "+r.path+" "+r.body, func() error { return rawCall(p.Socket, r.method, r.path, r.body) })
		}
		imageRefused(t, `PUT /v1/instances/victim {"image": "alpine"}`, "alpine", func() error {
			return rawCall(p.Socket, "PUT", "/v1/instances/victim", `{"image": "alpine"}`)
		})
		// A path that names no route at all is 404, not 400, and no engine
		// call either.
		shimBefore := len(shimCalls(shim))
		err := rawCall(p.Socket, "PUT", "/v1/instances/../../etc", "")
		var apiErr *socketapi.Error
		l.fault(1)
		l.checkT(t, errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound, "PUT /v1/instances/../../etc: %v", err)
		l.checkT(t, len(shimCalls(shim)) == shimBefore, "PUT /v1/instances/../../etc reached the engine")
	})

	// Nothing appeared or changed outside the victim's data dir: the only
	// changes anywhere under the agent's dir are registry writes.
	t.Run("nothing written by the refused calls", func(t *testing.T) {
		after := treeOf(t, p.Dir)
		for path, sum := range after {
			if filepath.Base(path) == "registry.json" || strings.HasPrefix(filepath.Base(path), "gateway-stub.") {
				continue
			}
			l.checkT(t, before[path] == sum, "%s appeared or changed: %q", path, sum)
		}
	})

	t.Run("symlinks and hard links in the data dir are never followed", func(t *testing.T) {
		outside := t.TempDir()
		target := filepath.Join(outside, "target")
		assert.NilError(t, os.WriteFile(target, []byte("ORIGINAL"), 0o644))
		hardTarget := filepath.Join(p.Dir, "hard-target") // same filesystem as the data dir
		assert.NilError(t, os.WriteFile(hardTarget, []byte("ORIGINAL"), 0o644))
		t.Cleanup(func() { os.Remove(hardTarget) })

		// The container owns its data dir and can plant links there; the
		// agent writes the user's files on the next create or start.
		assert.NilError(t, p.Client.Remove(ctx, "victim", false))
		data := filepath.Join(p.StateDir, "instances", "victim")
		assert.NilError(t, os.Remove(filepath.Join(data, "openclaw.json")))
		assert.NilError(t, os.Symlink(target, filepath.Join(data, "openclaw.json")))
		assert.NilError(t, os.Link(hardTarget, filepath.Join(data, "notes.md")))
		assert.NilError(t, os.Symlink(outside, filepath.Join(data, "escape")))
		assert.NilError(t, os.Symlink("../../../../../../../../"+target, filepath.Join(data, "relative.json")))
		l.fault(4)
		_, err := p.Client.Ensure(ctx, "victim", socketapi.InstanceSpec{Files: map[string]string{
			"openclaw.json": "pwned-1", "notes.md": "pwned-2", "relative.json": "pwned-3",
		}})
		assert.NilError(t, err)
		for _, f := range []string{target, hardTarget} {
			b, _ := os.ReadFile(f)
			l.checkT(t, string(b) == "ORIGINAL", "%s outside the data dir now holds %q", f, b)
		}
		for name, want := range map[string]string{"openclaw.json": "pwned-1", "notes.md": "pwned-2", "relative.json": "pwned-3"} {
			fi, err := os.Lstat(filepath.Join(data, name))
			l.checkT(t, err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600, "%s: %v %v, want a regular file of mode 0600", name, fi, err)
			b, _ := os.ReadFile(filepath.Join(data, name))
			l.checkT(t, string(b) == want, "%s holds %q, want %q", name, b, want)
		}
		ents, _ := os.ReadDir(outside)
		l.checkT(t, len(ents) == 1, "files appeared outside: %v", ents)

		// The data dir itself replaced by a symlink: refused, nothing written
		// where it points.
		evil := filepath.Join(p.StateDir, "instances", "mallory")
		assert.NilError(t, os.Symlink(outside, evil))
		l.fault(1)
		_, err = p.Client.Ensure(ctx, "mallory", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "pwned"}})
		l.checkT(t, err != nil, "ensure with a symlinked data dir succeeded")
		ents, _ = os.ReadDir(outside)
		l.checkT(t, len(ents) == 1, "files written through a symlinked data dir: %v", ents)
		assert.NilError(t, os.Remove(evil))

		// Purge removes the links, never what they point to.
		l.fault(1)
		assert.NilError(t, p.Client.Remove(ctx, "victim", true))
		for _, f := range []string{target, hardTarget} {
			b, err := os.ReadFile(f)
			l.checkT(t, err == nil && string(b) == "ORIGINAL", "purge reached %s: %q %v", f, b, err)
		}
		_, err = os.Lstat(data)
		l.checkT(t, os.IsNotExist(err), "purge left the data dir: %v", err)
	})
}

// rawCall sends one HTTP/1.1 request on the agent's socket as it is
// written (no escaping, no cleaning) and returns the API's error, if any.
func rawCall(socket, method, path, body string) error {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: zaki-agent\r\nConnection: close\r\n", method, path)
	if body != "" {
		fmt.Fprintf(c, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(c, "\r\n%s", body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		return nil
	}
	var eb socketapi.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return &socketapi.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
}

func manyFiles(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("f%d.json", i)] = "{}"
	}
	return m
}

func manyEnv(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("K%d", i)] = "v"
	}
	return m
}

// treeOf returns every file under dir with its size and content hash
// (symlinks by their target).
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			out[path] = "-> " + target
		case d.Type().IsRegular():
			b, _ := os.ReadFile(path)
			out[path] = fmt.Sprintf("%d:%x", len(b), fnv(b))
		case d.IsDir():
			out[path] = "dir"
		}
		return nil
	})
	return out
}

func fnv(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
