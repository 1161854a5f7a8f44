package socketapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// platform is a fixture made the way the Zaki platform's router makes
// users: <root>/users/user-<id>/{.openclaw/openclaw.json, workspace/...},
// <root>/router/users.json, and containers zaki-user-<id> without labels.
type platform struct {
	root, usersDir, usersFile string
	users                     map[string]map[string]any
}

func newPlatform(t *testing.T) *platform {
	root := t.TempDir()
	p := &platform{root: root, usersDir: filepath.Join(root, "users"),
		usersFile: filepath.Join(root, "router", "users.json"), users: map[string]map[string]any{}}
	assert.NilError(t, os.MkdirAll(p.usersDir, 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Dir(p.usersFile), 0o755))
	return p
}

// addUser makes a user's data dir and its entry in users.json (written
// anew each time).
func (p *platform) addUser(t *testing.T, id string, port int) string {
	dir := filepath.Join(p.usersDir, "user-"+id)
	files := map[string]string{
		".openclaw/openclaw.json":        `{"gateway": {"port": 18789, "bind": "lan", "auth": {"token": "tok-` + id + `"}}}`,
		"workspace/SOUL.md":              "# Soul of " + id + "\n",
		"workspace/MEMORY.md":            "- likes tea\n- edited by the assistant\n",
		"workspace/memory/2026-12-01.md": "a day's notes\n",
	}
	for name, content := range files {
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	p.users[id] = map[string]any{"port": port, "token": "secret-" + id, "name": "N", "username": "u", "created": 1764000000000}
	b, err := json.Marshal(p.users)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(p.usersFile, b, 0o600))
	return dir
}

// container makes the router's container of a user: running (docker run
// -d) or only created.
func (p *platform) container(t *testing.T, id string, port int, image string, running bool) {
	dir := filepath.Join(p.usersDir, "user-"+id)
	name := "zaki-user-" + id
	verb := "create"
	if running {
		verb = "run"
	}
	args := []string{verb}
	if running {
		args = append(args, "-d")
	}
	args = append(args, "--name", name, "--restart", "unless-stopped",
		"-p", "127.0.0.1:"+strconv.Itoa(port)+":18789",
		"-v", filepath.Join(dir, ".openclaw")+":/home/node/.openclaw",
		"-v", filepath.Join(dir, "workspace")+":/home/node/workspace", image)
	out, err := exec.Command("docker", args...).CombinedOutput()
	assert.NilError(t, err, "docker %s: %s", verb, out)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	if running {
		// The stub writes .openclaw/gateway-stub.started as it starts:
		// the tenant's last change to its tree here.
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if _, err := os.Stat(filepath.Join(dir, ".openclaw", "gateway-stub.started")); err != nil {
				return poll.Continue("%v", err)
			}
			return poll.Success()
		}, poll.WithTimeout(time.Minute))
	}
}

// treeHash describes a tree exactly: each entry's path, type, mode, size,
// link count, symlink target and content hash.
func treeHash(t *testing.T, root string) string {
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d %d %d.%d", strings.TrimPrefix(p, root), fi.Mode(), fi.Size(), st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	assert.NilError(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func itemOf(t *testing.T, res socketapi.ImportResult, id string) socketapi.ImportItem {
	t.Helper()
	for _, it := range res.Users {
		if it.UserID == id {
			return it
		}
	}
	t.Fatalf("user %q not in the import's answer: %+v", id, res)
	return socketapi.ImportItem{}
}

func labelsOf(t *testing.T, name string) map[string]any {
	doc := dockerInspect(t, name)
	assert.Assert(t, doc != nil, "container %s is gone", name)
	m, _ := dig(doc, "Config", "Labels").(map[string]any)
	return m
}

// TestEngineImport: the platform's users come over as the router left
// them: two mounts, users.json, unlabelled containers. A dry run changes
// nothing; the import keeps the data (the hostile entries of the tenant's
// tree skipped), the ports (but one that is reserved), the running state,
// and the source byte for byte; a second import changes nothing; an
// ensure that meets an unlabelled container answers 409 naming zakictl
// import, and zakictl import then brings that user over.
func TestEngineImport(t *testing.T) {
	var lo int
	en := startEngineWith(t, 200, func(c *daemon.Config) {
		lo, _ = strconv.Atoi(strings.Split(c.Instance.PortRange, "-")[0])
		c.Instance.Mounts = []string{".openclaw:/home/node/.openclaw", "workspace:/home/node/workspace"}
		c.Instance.ReservedPorts = []string{strconv.Itoa(lo + 120)}
	})
	image := testenv.EnsureStubImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := en.Client

	// Names the sweep script knows: zaki-user-imp<x>-<pid>-<nanos>.
	running, stopped, moved := testenv.UniqueName("impa"), testenv.UniqueName("impb"), testenv.UniqueName("impc")
	pRunning, pStopped, pReserved := lo+100, lo+150, lo+120
	p := newPlatform(t)
	dir := p.addUser(t, running, pRunning)
	p.addUser(t, stopped, pStopped)
	p.addUser(t, moved, pReserved)
	p.users["../evil"] = map[string]any{"port": lo + 160}
	b, _ := json.Marshal(p.users)
	assert.NilError(t, os.WriteFile(p.usersFile, b, 0o600))
	// What a tenant may plant in its tree.
	outside := filepath.Join(p.root, "outside.txt")
	assert.NilError(t, os.WriteFile(outside, []byte("not the tenant's"), 0o600))
	assert.NilError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "workspace", "passwd")))
	assert.NilError(t, os.Symlink("/", filepath.Join(dir, ".openclaw", "root")))
	assert.NilError(t, syscall.Mkfifo(filepath.Join(dir, "workspace", "fifo"), 0o600))
	assert.NilError(t, os.Link(outside, filepath.Join(dir, "workspace", "hard.txt")))
	p.container(t, running, pRunning, image, true)
	p.container(t, stopped, pStopped, image, false)
	oldID := dig(dockerInspect(t, "zaki-user-"+running), "Id").(string)
	before := treeHash(t, p.root)

	req := socketapi.ImportRequest{UsersFile: p.usersFile, UsersDir: p.usersDir}
	dataDir := func(id string) string { return filepath.Join(en.StateDir, "instances", id) }

	t.Run("dry run changes nothing", func(t *testing.T) {
		dry := req
		dry.DryRun = true
		res, err := c.Import(ctx, dry)
		assert.NilError(t, err)
		assert.Check(t, res.DryRun)
		assert.Check(t, is.Len(res.Users, 4))
		it := itemOf(t, res, running)
		assert.Check(t, is.Equal(it.Action, socketapi.ImportWouldImport), it.Message)
		assert.Check(t, is.Equal(it.Port, pRunning))
		// openclaw.json, the three .md files, gateway-stub.started (the
		// running stub's).
		assert.Check(t, is.Equal(it.Files, 5))
		assert.Check(t, is.Len(it.Skipped, 4), "%v", it.Skipped)
		assert.Check(t, is.Equal(itemOf(t, res, stopped).Port, pStopped))
		mv := itemOf(t, res, moved)
		assert.Check(t, is.Equal(mv.OldPort, pReserved))
		assert.Check(t, mv.Port != pReserved)
		assert.Check(t, is.Equal(itemOf(t, res, "../evil").Action, socketapi.ImportInvalid))

		assert.Check(t, is.Equal(en.Registry.Len(), 0))
		assert.Check(t, is.Len(en.Registry.Ports(), 0))
		for _, id := range []string{running, stopped, moved} {
			_, err := os.Lstat(dataDir(id))
			assert.Check(t, os.IsNotExist(err), "data dir of %s: %v", id, err)
		}
		assert.Check(t, is.Len(labelsOf(t, "zaki-user-"+running), 0))
		assert.Check(t, is.Equal(dig(dockerInspect(t, "zaki-user-"+running), "Id"), oldID))
		assert.Check(t, is.Equal(dig(dockerInspect(t, "zaki-user-"+running), "State", "Running"), true))
		assert.Check(t, is.Equal(treeHash(t, p.root), before))
	})

	t.Run("import", func(t *testing.T) {
		res, err := c.Import(ctx, req)
		assert.NilError(t, err)
		assert.Check(t, !res.DryRun)

		it := itemOf(t, res, running)
		assert.Check(t, is.Equal(it.Action, socketapi.ImportImported), it.Message)
		assert.Check(t, is.Equal(it.Port, pRunning))
		assert.Check(t, is.Equal(it.OldPort, 0))
		assert.Check(t, is.Equal(it.Files, 5))
		sk := strings.Join(it.Skipped, "\n")
		for _, want := range []string{"workspace/passwd: symlink", ".openclaw/root: symlink", "workspace/fifo: fifo", "workspace/hard.txt: regular file with 2 hard links"} {
			assert.Check(t, is.Contains(sk, want))
		}
		// The data, equal; nothing hostile came over; owned by the
		// instance's user: a uid of the user's own.
		uid, ok := en.Registry.UID(running)
		assert.Check(t, ok, "the imported user has a uid of its own")
		gid := uid
		for _, name := range []string{".openclaw/openclaw.json", "workspace/SOUL.md", "workspace/MEMORY.md", "workspace/memory/2026-12-01.md"} {
			want, err := os.ReadFile(filepath.Join(dir, name))
			assert.NilError(t, err)
			got, err := os.ReadFile(filepath.Join(dataDir(running), name))
			assert.Check(t, err)
			assert.Check(t, is.Equal(string(got), string(want)), name)
			fi, err := os.Stat(filepath.Join(dataDir(running), name))
			assert.NilError(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			assert.Check(t, is.Equal(int(st.Uid), uid), name)
			assert.Check(t, is.Equal(int(st.Gid), gid), name)
			assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o600)), name)
		}
		for _, name := range []string{"workspace/passwd", ".openclaw/root", "workspace/fifo", "workspace/hard.txt"} {
			_, err := os.Lstat(filepath.Join(dataDir(running), name))
			assert.Check(t, os.IsNotExist(err), "%s was copied: %v", name, err)
		}
		leftovers, _ := filepath.Glob(filepath.Join(en.StateDir, "instances", ".import-*"))
		assert.Check(t, is.Len(leftovers, 0))

		// The old container replaced by a running instance on the port,
		// over the two mounts of the copy.
		in, err := c.Get(ctx, running)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.State, socketapi.StateRunning))
		assert.Check(t, is.Equal(in.Port, pRunning))
		doc := dockerInspect(t, "zaki-user-"+running)
		assert.Check(t, dig(doc, "Id") != oldID)
		assert.Check(t, is.Equal(labelsOf(t, "zaki-user-"+running)[en.prefix+".instance"], "1"))
		var sources []string
		for _, m := range dig(doc, "Mounts").([]any) {
			sources = append(sources, m.(map[string]any)["Source"].(string))
		}
		sort.Strings(sources)
		assert.Check(t, is.DeepEqual(sources, []string{filepath.Join(dataDir(running), ".openclaw"), filepath.Join(dataDir(running), "workspace")}))
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(pRunning) + "/health")
		assert.Check(t, err)
		if err == nil {
			resp.Body.Close()
		}

		// The stopped one: its container gone, the user recorded on its
		// port, made at its next ensure.
		st := itemOf(t, res, stopped)
		assert.Check(t, is.Equal(st.Action, socketapi.ImportImported), st.Message)
		assert.Check(t, dockerInspect(t, "zaki-user-"+stopped) == nil, "the old stopped container must be gone")
		in, err = c.Get(ctx, stopped)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Port, pStopped))
		assert.Check(t, is.Equal(in.State, socketapi.StateMissing))

		// The reserved port moved.
		mv := itemOf(t, res, moved)
		assert.Check(t, is.Equal(mv.Action, socketapi.ImportImported), mv.Message)
		assert.Check(t, is.Equal(mv.OldPort, pReserved))
		port, _ := en.Registry.Port(moved)
		assert.Check(t, is.Equal(mv.Port, port))
		assert.Check(t, port != pReserved)

		assert.Check(t, is.Equal(itemOf(t, res, "../evil").Action, socketapi.ImportInvalid))
		assert.Check(t, is.Equal(treeHash(t, p.root), before), "the source changed")

		// The stopped user's next ensure makes its instance on its port,
		// over its data.
		in, err = c.Ensure(ctx, stopped, socketapi.InstanceSpec{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Port, pStopped))
		assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
	})

	t.Run("twice changes nothing", func(t *testing.T) {
		// The registry as an import could change it (the engine's events
		// may still move states and touches meanwhile).
		registryView := func() string {
			var b strings.Builder
			for _, r := range en.Registry.List() {
				fmt.Fprintf(&b, "%s %s %d %s %d\n", r.UserID, r.ContainerID, r.Port, r.ConfigHash, r.CreatedAtMs)
			}
			fmt.Fprint(&b, en.Registry.Ports())
			return b.String()
		}
		regBefore := registryView()
		id := dig(dockerInspect(t, "zaki-user-"+running), "Id")
		data := treeHash(t, filepath.Join(en.StateDir, "instances"))
		res, err := c.Import(ctx, req)
		assert.NilError(t, err)
		for _, u := range []string{running, stopped, moved} {
			it := itemOf(t, res, u)
			assert.Check(t, is.Equal(it.Action, socketapi.ImportExists), "%s: %s", u, it.Message)
		}
		assert.Check(t, is.Equal(itemOf(t, res, running).Port, pRunning))
		assert.Check(t, is.Equal(registryView(), regBefore))
		assert.Check(t, is.Equal(dig(dockerInspect(t, "zaki-user-"+running), "Id"), id))
		assert.Check(t, is.Equal(treeHash(t, filepath.Join(en.StateDir, "instances")), data))
		assert.Check(t, is.Equal(treeHash(t, p.root), before))
	})

	t.Run("over the bound", func(t *testing.T) {
		big := testenv.UniqueName("impd")
		bdir := p.addUser(t, big, lo+170)
		assert.NilError(t, os.WriteFile(filepath.Join(bdir, "workspace", "big.bin"), make([]byte, 4096), 0o600))
		over := req
		over.Users = []string{big}
		over.MaxBytes = 4000
		res, err := c.Import(ctx, over)
		assert.NilError(t, err)
		it := itemOf(t, res, big)
		assert.Check(t, is.Equal(it.Action, socketapi.ImportFailed))
		assert.Check(t, is.Contains(it.Message, "over the bound maxBytes"))
		_, err = os.Lstat(dataDir(big))
		assert.Check(t, os.IsNotExist(err))
		leftovers, _ := filepath.Glob(filepath.Join(en.StateDir, "instances", ".import-*"))
		assert.Check(t, is.Len(leftovers, 0))
		_, held := en.Registry.Port(big)
		assert.Check(t, !held)
	})

	t.Run("ensure meets the router's container; zakictl import", func(t *testing.T) {
		late := testenv.UniqueName("impe")
		lport := lo + 180
		p.addUser(t, late, lport)
		p.container(t, late, lport, image, true)
		lateBefore := treeHash(t, filepath.Join(p.usersDir, "user-"+late))
		_, err := c.Ensure(ctx, late, socketapi.InstanceSpec{})
		wantAPIError(t, err, http.StatusConflict, socketapi.CodeConflict, socketapi.ErrConflict)
		assert.Check(t, is.ErrorContains(err, "zakictl import"))

		ctl := testenv.Binary(t, "zakictl")
		args := []string{"--socket", en.Socket, "import", "--users-file", p.usersFile, "--users-dir", p.usersDir, "--user", late}
		out, err := exec.Command(ctl, append(args, "--dry-run")...).CombinedOutput()
		assert.NilError(t, err, "%s", out)
		assert.Check(t, is.Contains(string(out), "would-import"))
		assert.Check(t, is.Contains(string(out), "dry run: 1 would-import"))
		assert.Check(t, is.Contains(string(out), "would replace an empty data dir"))
		assert.Check(t, is.Len(labelsOf(t, "zaki-user-"+late), 0))

		out, err = exec.Command(ctl, args...).CombinedOutput()
		assert.NilError(t, err, "%s", out)
		assert.Check(t, is.Contains(string(out), late))
		assert.Check(t, is.Contains(string(out), "1 imported"))
		assert.Check(t, is.Contains(string(out), "an empty data dir (from a refused ensure) replaced"))
		got, err := os.ReadFile(filepath.Join(dataDir(late), "workspace", "MEMORY.md"))
		assert.Check(t, err)
		assert.Check(t, is.Contains(string(got), "edited by the assistant"))

		out, err = exec.Command(ctl, append(args, "--json")...).Output()
		assert.NilError(t, err, "%s", out)
		var res socketapi.ImportResult
		assert.NilError(t, json.Unmarshal(out, &res))
		assert.Check(t, is.Equal(itemOf(t, res, late).Action, socketapi.ImportExists))

		in, err := c.Ensure(ctx, late, socketapi.InstanceSpec{})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(in.Port, lport))
		assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeReused))
		assert.Check(t, is.Equal(treeHash(t, filepath.Join(p.usersDir, "user-"+late)), lateBefore))
	})
}
