package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

func TestEnsureCreates(t *testing.T) {
	e := newFakeEnv(t)
	spec := InstanceSpec{
		Env:    map[string]string{"OPENCLAW_TOKEN": "s3cret-value"},
		Files:  map[string]string{"openclaw.json": `{"a":1}`},
		Labels: map[string]string{"plan": "pro"},
	}
	in := e.ensure("alice", spec)
	assert.Equal(t, in.Outcome, OutcomeCreated)
	assert.Equal(t, in.State, StateRunning)
	assert.Equal(t, in.ContainerName, "zaki-user-alice")
	assert.Assert(t, in.Port >= 20000 && in.Port <= 20099, "port %d", in.Port)
	assert.Equal(t, in.URL, fmt.Sprintf("http://127.0.0.1:%d", in.Port))
	assert.Assert(t, strings.HasPrefix(in.ConfigHash, "v2-"))

	created, ok := e.fake.CreatedSpec(in.ContainerID)
	assert.Assert(t, ok)
	assert.Equal(t, created.Env["OPENCLAW_TOKEN"], "s3cret-value")
	assert.Equal(t, created.Labels["zaki.instance"], "1")
	assert.Equal(t, created.Labels["zaki.userId"], "alice")
	assert.Equal(t, created.Labels["zaki.port"], fmt.Sprint(in.Port))
	assert.Equal(t, created.Labels["zaki.configHash"], in.ConfigHash)
	assert.Equal(t, created.Labels["plan"], "pro")
	for k, v := range created.Labels {
		assert.Assert(t, !strings.Contains(v, "s3cret"), "label %s holds the secret", k)
	}
	// The container defaults (packaging/config.toml).
	// A uid of its own (gid the same) from instance.uidRange, in the record.
	uid, ok := e.reg.UID("alice")
	assert.Assert(t, ok && uid >= 200000 && uid <= 299999, "uid %d", uid)
	assert.Equal(t, created.User, fmt.Sprintf("%d:%d", uid, uid))
	if rec, _ := e.reg.Get("alice"); rec.UID != uid {
		t.Errorf("record uid %d, want %d", rec.UID, uid)
	}
	assert.Assert(t, created.Init)
	assert.Equal(t, created.Resources.CPUs, 2.0)
	assert.Equal(t, created.Resources.Memory, fmt.Sprint(2<<30))
	assert.Equal(t, created.Resources.MemorySwap, created.Resources.Memory)
	assert.Equal(t, created.Resources.PidsLimit, int64(100))
	assert.Equal(t, created.Resources.CPUShares, int64(512))
	assert.DeepEqual(t, created.Resources.Ulimits, []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}})
	assert.Assert(t, created.Security.ReadOnlyRoot)
	assert.DeepEqual(t, created.Security.Tmpfs, []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}})
	assert.DeepEqual(t, created.Security.CapDrop, []string{"ALL"})
	assert.Assert(t, created.Security.NoNewPrivileges)
	assert.DeepEqual(t, created.Restart, runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5})
	assert.Equal(t, created.Network, "zaki")
	assert.DeepEqual(t, created.Ports, []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: in.Port, ContainerPort: 18789, Protocol: "tcp"}})
	dataDir := filepath.Join(e.cfg.StateDir, "instances", "alice")
	assert.DeepEqual(t, created.Mounts, []runtime.Mount{{Source: dataDir, Target: "/home/node/.openclaw"}})

	// The network exists with inter-container traffic off.
	nets := e.fake.Networks()
	assert.Equal(t, len(nets), 1)
	assert.Equal(t, nets[0].Name, "zaki")
	assert.Assert(t, nets[0].DisableICC)

	// The data dir and its file: owned by the container user, private.
	fi, err := os.Stat(dataDir)
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o700))
	assert.Equal(t, fi.Sys().(*syscall.Stat_t).Uid, uint32(uid))
	assert.Equal(t, fi.Sys().(*syscall.Stat_t).Gid, uint32(uid))
	fi, err = os.Stat(filepath.Join(dataDir, "openclaw.json"))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))
	assert.Equal(t, fi.Sys().(*syscall.Stat_t).Uid, uint32(uid))
	assert.Equal(t, fi.Sys().(*syscall.Stat_t).Gid, uint32(uid))
	b, err := os.ReadFile(filepath.Join(dataDir, "openclaw.json"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"a":1}`)

	// The registry has it, durably.
	rec, ok := e.reg.Get("alice")
	assert.Assert(t, ok)
	assert.Equal(t, rec.ContainerID, in.ContainerID)
	raw, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "registry.json"))
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(string(raw), in.ContainerID))
	assert.Assert(t, !strings.Contains(string(raw), "s3cret"), "registry holds the secret")
}

func TestEnsureHotPathMakesNoRuntimeCall(t *testing.T) {
	e := newFakeEnv(t)
	spec := InstanceSpec{Env: map[string]string{"K": "v"}, Labels: map[string]string{"a": "b", "c": "d"}}
	first := e.ensure("bob", spec)
	e.fake.ResetCalls()
	for range 100 {
		in := e.ensure("bob", InstanceSpec{Labels: map[string]string{"c": "d", "a": "b"}, Env: map[string]string{"K": "v"}})
		assert.Equal(t, in.Outcome, OutcomeReused)
		assert.Equal(t, in.ContainerID, first.ContainerID)
		assert.Assert(t, !in.Stale)
	}
	assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)
}

// cmpNonZero drops zero counts before comparing call counts.
var cmpNonZero = cmpopts.IgnoreMapEntries(func(_ string, v int) bool { return v == 0 })

func TestEnsureStartsStopped(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("carol", InstanceSpec{})
	_, err := e.a.Stop(context.Background(), "carol")
	assert.NilError(t, err)
	e.waitState("carol", StateStopped)
	again := e.ensure("carol", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeStarted)
	assert.Equal(t, again.ContainerID, in.ContainerID)
	assert.Equal(t, again.State, StateRunning)
}

func TestEnsureConfigChangeHotAndCold(t *testing.T) {
	e := newFakeEnv(t)
	v1 := InstanceSpec{Env: map[string]string{"MODEL": "a"}}
	v2 := InstanceSpec{Env: map[string]string{"MODEL": "b"}}
	first := e.ensure("dave", v1)
	dataFile := filepath.Join(e.cfg.StateDir, "instances", "dave", "notes.txt")
	assert.NilError(t, os.WriteFile(dataFile, []byte("keep me"), 0o600))

	// Hot: used just now, so the change waits.
	hot := e.ensure("dave", v2)
	assert.Equal(t, hot.Outcome, OutcomeReused)
	assert.Equal(t, hot.ContainerID, first.ContainerID)
	assert.Assert(t, hot.Stale)
	got, _ := e.a.Get(context.Background(), "dave")
	assert.Assert(t, got.Stale)

	// Asking for the old config again while hot: not stale any more.
	back := e.ensure("dave", v1)
	assert.Equal(t, back.Outcome, OutcomeReused)
	assert.Assert(t, !back.Stale)
	e.ensure("dave", v2)

	// Cold: past the hot window, the next ensure recreates.
	e.clock.Add(6 * time.Minute)
	cold := e.ensure("dave", v2)
	assert.Equal(t, cold.Outcome, OutcomeRecreated)
	assert.Assert(t, cold.ContainerID != first.ContainerID)
	assert.Assert(t, cold.ConfigHash != first.ConfigHash)
	assert.Assert(t, !cold.Stale)
	assert.Equal(t, cold.Port, first.Port)
	c, ok := e.fake.Container(cold.ContainerID)
	assert.Assert(t, ok)
	assert.Equal(t, c.Spec.Labels["zaki.configHash"], cold.ConfigHash)
	_, ok = e.fake.Container(first.ContainerID)
	assert.Assert(t, !ok, "old container still there")
	b, err := os.ReadFile(dataFile)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "keep me")

	// A stopped instance with another config is cold too.
	_, err = e.a.Stop(context.Background(), "dave")
	assert.NilError(t, err)
	e.waitState("dave", StateStopped)
	again := e.ensure("dave", v1)
	assert.Equal(t, again.Outcome, OutcomeRecreated)
}

func TestEnsureConcurrentOneUser(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.Delay("Create", 20*time.Millisecond)
	var wg sync.WaitGroup
	ids := make([]string, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := e.a.Ensure(context.Background(), "erin", InstanceSpec{}, EnsureOptions{})
			ids[i], errs[i] = in.ContainerID, err
		}()
	}
	wg.Wait()
	for i := range 50 {
		assert.NilError(t, errs[i])
		assert.Equal(t, ids[i], ids[0])
	}
	assert.Equal(t, e.fake.Calls("Create"), 1)
	assert.Equal(t, len(e.fake.Containers()), 1)
}

func TestEnsureConcurrentUsers(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.Delay("Start", 20*time.Millisecond)
	var wg sync.WaitGroup
	ins := make([]Instance, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ins[i], errs[i] = e.a.Ensure(context.Background(), fmt.Sprintf("user%02d", i), InstanceSpec{}, EnsureOptions{})
		}()
	}
	wg.Wait()
	ports := map[int]string{}
	for i, in := range ins {
		assert.NilError(t, errs[i])
		assert.Equal(t, in.State, StateRunning)
		if other, dup := ports[in.Port]; dup {
			t.Fatalf("port %d given to %s and %s", in.Port, other, in.UserID)
		}
		ports[in.Port] = in.UserID
	}
	assert.Equal(t, len(e.fake.Containers()), 20)
}

func TestEnsurePartialFailureKeepsPortAndData(t *testing.T) {
	e := newFakeEnv(t)
	boom := errors.New("boom: cannot start")
	e.fake.FailNext("Start", 1, boom)
	_, err := e.a.Ensure(context.Background(), "frank", InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}}, EnsureOptions{})
	assert.ErrorContains(t, err, "boom")
	assert.ErrorContains(t, err, "container removed")
	assert.Equal(t, len(e.fake.Containers()), 0)
	port, ok := e.reg.Port("frank")
	assert.Assert(t, ok, "port reservation lost")
	_, err = os.Stat(filepath.Join(e.cfg.StateDir, "instances", "frank", "openclaw.json"))
	assert.NilError(t, err)
	_, err = e.a.Get(context.Background(), "frank")
	assert.Assert(t, errors.Is(err, errdefs.ErrNotFound))

	in := e.ensure("frank", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeCreated)
	assert.Equal(t, in.Port, port)
}

func TestEnsureNeverReady(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.ReadinessTimeoutSeconds = 0.3 })
	e.a.probe = func(ctx context.Context, addr string) error { return errors.New("connection refused") }
	_, err := e.a.Ensure(context.Background(), "gina", InstanceSpec{}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrTimeout), "got %v", err)
	assert.ErrorContains(t, err, "not ready within")
	assert.Equal(t, len(e.fake.Containers()), 0)
	_, ok := e.reg.Port("gina")
	assert.Assert(t, ok)
}

func TestEnsureDiesBeforeReady(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) {
		c.Instance.ReadinessTimeoutSeconds = 5
		c.Instance.Restart = "no"
	})
	var once sync.Once
	e.a.probe = func(ctx context.Context, addr string) error {
		once.Do(func() { e.fake.Exit(e.fake.Containers()[0].ID, 3) })
		return errors.New("refused")
	}
	_, err := e.a.Ensure(context.Background(), "hank", InstanceSpec{}, EnsureOptions{})
	assert.ErrorContains(t, err, "before it became ready")
	assert.Check(t, errors.Is(err, errdefs.ErrInstanceFailed), "got %v", err)
}

func TestEnsureBadInputTouchesNothing(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.ResetCalls()
	long := strings.Repeat("a", 10<<10)
	for name, tc := range map[string]struct {
		user  string
		spec  InstanceSpec
		class error // ErrInvalidArgument when nil
	}{
		"dotdot user":        {user: "../etc"},
		"option user":        {user: "--privileged"},
		"nul user":           {user: "a\x00b"},
		"newline user":       {user: "a\nb"},
		"long user":          {user: long},
		"empty user":         {user: ""},
		"image not allowed":  {user: "ok", spec: InstanceSpec{Image: "evil/image:latest"}, class: errdefs.ErrForbidden},
		"image option":       {user: "ok", spec: InstanceSpec{Image: "--privileged"}},
		"env key with =":     {user: "ok", spec: InstanceSpec{Env: map[string]string{"A=B": "x"}}},
		"env key nul":        {user: "ok", spec: InstanceSpec{Env: map[string]string{"A\x00": "x"}}},
		"env value newline":  {user: "ok", spec: InstanceSpec{Env: map[string]string{"A": "x\nB=y"}}},
		"file escapes":       {user: "ok", spec: InstanceSpec{Files: map[string]string{"../x": "y"}}},
		"file absolute":      {user: "ok", spec: InstanceSpec{Files: map[string]string{"/etc/passwd": "y"}}},
		"file inner dotdot":  {user: "ok", spec: InstanceSpec{Files: map[string]string{"a/../../x": "y"}}},
		"file dot element":   {user: "ok", spec: InstanceSpec{Files: map[string]string{"a/./b": "y"}}},
		"file double slash":  {user: "ok", spec: InstanceSpec{Files: map[string]string{"a//b": "y"}}},
		"file trailing /":    {user: "ok", spec: InstanceSpec{Files: map[string]string{"a/": "y"}}},
		"file too deep":      {user: "ok", spec: InstanceSpec{Files: map[string]string{"1/2/3/4/5/6/7/8/9": "y"}}},
		"file and dir":       {user: "ok", spec: InstanceSpec{Files: map[string]string{"a": "y", "a/b": "z"}}},
		"seed escapes":       {user: "ok", spec: InstanceSpec{SeedFiles: map[string]string{"../x": "y"}}},
		"seed and file":      {user: "ok", spec: InstanceSpec{Files: map[string]string{"a": "y"}, SeedFiles: map[string]string{"a": "z"}}},
		"seed too large":     {user: "ok", spec: InstanceSpec{SeedFiles: map[string]string{"a": strings.Repeat("x", 257<<10)}}},
		"file long":          {user: "ok", spec: InstanceSpec{Files: map[string]string{long: "y"}}},
		"cpus over ceiling":  {user: "ok", spec: InstanceSpec{Resources: &Resources{CPUs: 4}}},
		"memory over":        {user: "ok", spec: InstanceSpec{Resources: &Resources{Memory: "3g"}}},
		"memory malformed":   {user: "ok", spec: InstanceSpec{Resources: &Resources{Memory: "2x"}}},
		"pids over":          {user: "ok", spec: InstanceSpec{Resources: &Resources{Pids: 101}}},
		"reserved label key": {user: "ok", spec: InstanceSpec{Labels: map[string]string{"zaki.userId": "bob"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.a.Ensure(context.Background(), tc.user, tc.spec, EnsureOptions{})
			want := tc.class
			if want == nil {
				want = errdefs.ErrInvalidArgument
			}
			assert.Assert(t, errors.Is(err, want), "got %v, want %v", err, want)
		})
	}
	assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)
	assert.Equal(t, e.reg.Len(), 0)
	entries, err := os.ReadDir(filepath.Join(e.cfg.StateDir, "instances"))
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0)
}

func TestEnsureLowersLimits(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("ivy", InstanceSpec{Resources: &Resources{CPUs: 0.5, Memory: "512m", Pids: 50}})
	c, _ := e.fake.CreatedSpec(in.ContainerID)
	assert.Equal(t, c.Resources.CPUs, 0.5)
	assert.Equal(t, c.Resources.Memory, fmt.Sprint(512<<20))
	assert.Equal(t, c.Resources.PidsLimit, int64(50))
}

func TestEnsureRuntimeDownWritesNothing(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("jack", InstanceSpec{})
	before, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "registry.json"))
	assert.NilError(t, err)
	e.fake.Down()
	for _, user := range []string{"kate", "lena"} {
		_, err := e.a.Ensure(context.Background(), user, InstanceSpec{}, EnsureOptions{})
		assert.Assert(t, errors.Is(err, errdefs.ErrUnavailable), "got %v", err)
	}
	assert.NilError(t, e.reg.Flush())
	after, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "registry.json"))
	assert.NilError(t, err)
	assert.Equal(t, string(after), string(before))
	_, ok := e.reg.Port("kate")
	assert.Assert(t, !ok)
}

func TestEnsurePullsOncePerImage(t *testing.T) {
	e := newFakeEnv(t)
	e.fake.AddPullable("alpine/openclaw:2")
	e.fake.Delay("PullImage", 100*time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	progress := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.a.Ensure(context.Background(), fmt.Sprintf("p%d", i), InstanceSpec{Image: "alpine/openclaw:2"},
				EnsureOptions{Progress: func(runtime.PullProgress) { mu.Lock(); progress++; mu.Unlock() }})
			assert.Check(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, e.fake.Calls("PullImage"), 1)
	assert.Assert(t, progress > 0, "no progress reported")
}

func TestEnsurePullStalls(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.PullStallSeconds = 0.2 })
	e.fake.AddPullable("alpine/openclaw:slow")
	e.fake.Block("PullImage")
	_, err := e.a.Ensure(context.Background(), "stall", InstanceSpec{Image: "alpine/openclaw:slow"}, EnsureOptions{})
	assert.Assert(t, errors.Is(err, errdefs.ErrTimeout), "got %v", err)
	assert.ErrorContains(t, err, "no progress")
}

func TestEnsureAdoptsUnknownContainer(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("mia", InstanceSpec{})
	// The registry loses the entry while the container lives on.
	assert.NilError(t, e.reg.Delete("mia"))
	again := e.ensure("mia", InstanceSpec{})
	assert.Equal(t, again.Outcome, OutcomeReused)
	assert.Equal(t, again.ContainerID, in.ContainerID)
	assert.Equal(t, again.Port, in.Port)
}

// TestModesReasserted: a user's data dir chmod'ed open (as the instance,
// which owns it, can) is 0700 again at the next ensure, even a reused
// one; the state dir, instances/ and every data dir get their modes back
// at start; a data dir replaced by a symlink is never followed.
func TestModesReasserted(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("alice", InstanceSpec{})
	e.ensure("bob", InstanceSpec{})
	instances := filepath.Join(e.cfg.StateDir, "instances")
	alice := filepath.Join(instances, "alice")
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Lstat(p)
		assert.NilError(t, err)
		return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	}

	assert.NilError(t, os.Chmod(alice, 0o777|os.ModeSetgid))
	in := e.ensure("alice", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Equal(t, mode(alice), os.FileMode(0o700))

	// bob's data dir swapped for a symlink to an open dir: not followed.
	elsewhere := t.TempDir()
	assert.NilError(t, os.Chmod(elsewhere, 0o777))
	bob := filepath.Join(instances, "bob")
	assert.NilError(t, os.Rename(bob, bob+".moved"))
	assert.NilError(t, os.Symlink(elsewhere, bob))
	e.ensure("bob", InstanceSpec{})
	assert.Equal(t, mode(elsewhere), os.FileMode(0o777))

	// At start: the state dir (group bits only for the agent's own group:
	// the test's dir has it), instances/ and the data dirs.
	e.stop()
	assert.NilError(t, os.Chmod(e.cfg.StateDir, 0o777))
	assert.NilError(t, os.Chmod(instances, 0o777))
	assert.NilError(t, os.Chmod(alice, 0o755))
	e.start()
	fi, err := os.Stat(e.cfg.StateDir)
	assert.NilError(t, err)
	want := os.FileMode(0o700)
	if int(fi.Sys().(*syscall.Stat_t).Gid) == os.Getegid() {
		want = 0o750
	}
	assert.Equal(t, mode(e.cfg.StateDir), want)
	assert.Equal(t, mode(instances), os.FileMode(0o711))
	assert.Equal(t, mode(alice), os.FileMode(0o700))
	assert.Equal(t, mode(elsewhere), os.FileMode(0o777))
	_, err = os.Readlink(bob)
	assert.NilError(t, err)
}

// TestLogBound: the configured log bound reaches the runtime (10m x 3 by
// default, none for logMaxSize ""), and a bad one is a config error that
// names the key.
func TestLogBound(t *testing.T) {
	e := newFakeEnv(t)
	in := e.ensure("logs", InstanceSpec{})
	created, ok := e.fake.CreatedSpec(in.ContainerID)
	assert.Assert(t, ok)
	assert.DeepEqual(t, created.Log, runtime.LogConfig{MaxSize: "10m", MaxFiles: 3})

	off := newFakeEnv(t, func(c *Config) { c.Instance.LogMaxSize = "" })
	in = off.ensure("logs", InstanceSpec{})
	created, _ = off.fake.CreatedSpec(in.ContainerID)
	assert.DeepEqual(t, created.Log, runtime.LogConfig{})

	for _, tc := range []struct {
		size  string
		files int
		want  string
	}{
		{"10x", 3, `instance.logMaxSize "10x": want a size like 10m`},
		{"0", 3, `instance.logMaxSize "0"`},
		{"10m", 0, "instance.logMaxFiles 0: want 1 to 100"},
		{"10m", 1000, "instance.logMaxFiles 1000"},
	} {
		cfg := DefaultConfig()
		cfg.Instance.LogMaxSize, cfg.Instance.LogMaxFiles = tc.size, tc.files
		assert.ErrorContains(t, cfg.Validate(), tc.want)
	}
}
