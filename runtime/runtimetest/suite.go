package runtimetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Config tells Run what to test.
type Config struct {
	// New returns the runtime under test. Run calls it once, with its own
	// t; New registers its own cleanup there. Runtime is used when New is
	// nil.
	New     func(t *testing.T) runtime.Runtime
	Runtime runtime.Runtime

	// Image is present in the engine and behaves like the gateway stand-in
	// (testenv.StubImage, runtime/runtimetest/gateway-stub): its entrypoint
	// serves until stopped, takes the stand-in's flags (-addr, -data) and
	// holds /gateway-stub. Required.
	Image string

	// Engine says that the runtime drives a real engine: Run then also runs
	// the checks that need real containers (Engine/...).
	Engine bool

	// PullRef is a reference the runtime can pull, absent from the engine
	// when the pull check starts. Empty skips the pull check, which is
	// allowed only when Engine is false.
	PullRef string
	// PullSetup, when not nil, runs at the start of the pull check, for
	// example to push PullRef to a local registry and remove it locally.
	// It registers its own cleanup (the suite cannot remove images).
	PullSetup func(t *testing.T)

	// NamePrefix starts the name of every container and network the suite
	// creates ("zaki-rtt" when empty); names are unique per Run.
	NamePrefix string
	// User is the "uid:gid" the full-spec container runs as ("1000:1000"
	// when empty). With Engine the suite chowns its data dir to it, so the
	// test must run as root.
	User string
	// HostIP is the host address ports are published on ("127.0.0.1" when
	// empty).
	HostIP string
	// Dial, when not nil, connects to published ports in the engine checks
	// (a net.Dialer otherwise).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds every wait for an eventual state, and each check
	// that nothing hangs (30s when zero); the calls of one subtest get four
	// times as long together.
	Timeout time.Duration
	// SingleLogFile says that the engine keeps one log file, emptied when
	// it reaches Log.MaxSize (podman's k8s-file): Log.MaxFiles reads back
	// as 1.
	SingleLogFile bool
	// OCIRuntime is the engine's OCI runtime every container of the suite
	// runs under (ContainerSpec.OCIRuntime; "" for the engine's default),
	// such as "runsc": the suite then checks that the engine lists it
	// (Info.OCIRuntimes) and that it reads back.
	OCIRuntime string
	// ReadOnlyEACCES says that the engine's kernel checks a file's
	// permissions before the read-only root (gVisor's does): a write to the
	// root by the container's user fails with EACCES rather than EROFS (the
	// read-only root is then shown by the spec read back alone).
	ReadOnlyEACCES bool
	// Only, when not empty, names the subtests of Run to run (its
	// top-level names: "FullSpec", "Exec", ...); the others are not run.
	Only []string
}

// GVisorSubset are the subtests of Run that make test runs under gVisor
// (Config.OCIRuntime "runsc"), where the whole suite costs about four
// minutes: the runtime named and refused, the spec read back, exec (whose
// processes gVisor keeps from the host) and the engine checks (a
// container started, answering, hardened, logging).
var GVisorSubset = []string{"OCIRuntime", "FullSpec", "Exec", "Engine"}

// subtestBudget is how many Timeouts the calls of one subtest may take
// together.
const subtestBudget = 4

// LabelRun is the label the suite puts on everything it creates, valued
// with the run's unique ID: Run removes whatever carries it at the end.
const LabelRun = "zaki.conformance"

// What the full-spec container runs with: the stand-in's port and the
// production data path.
const (
	stubPort     = 18789
	stubDataPath = "/home/node/.openclaw"
)

func (c Config) withDefaults() Config {
	if c.NamePrefix == "" {
		c.NamePrefix = "zaki-rtt"
	}
	if c.User == "" {
		c.User = "1000:1000"
	}
	if c.HostIP == "" {
		c.HostIP = "127.0.0.1"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	return c
}

// Run runs the conformance suite against one runtime, as subtests:
//
//	Info, Images, Pull, InvalidArgument/*, OCIRuntime, Networks, FullSpec,
//	Lifecycle, Batch, List, Events, Logs, Exec/*,
//	Context/*                               every runtime
//	Engine/*                                with Config.Engine only
//
// Every container and network it creates is removed when it ends, passed
// or not.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	cfg = cfg.withDefaults()
	if cfg.Image == "" {
		t.Fatal("runtimetest.Config.Image is empty: give an image present in the engine, e.g. " + testenv.StubImage)
	}
	if cfg.PullRef == "" && cfg.Engine {
		t.Fatal("runtimetest.Config.PullRef is empty: a real engine must pass the pull check (start a local registry, see PullSetup)")
	}
	rt := cfg.Runtime
	if cfg.New != nil {
		rt = cfg.New(t)
	}
	if rt == nil {
		t.Fatal("runtimetest.Config: neither New nor Runtime gives a runtime")
	}
	s := &suite{cfg: cfg, rt: rt, top: t, run: testenv.UniqueName(cfg.NamePrefix)}
	t.Cleanup(s.sweep)

	for _, st := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Info", s.testInfo},
		{"Images", s.testImages},
		{"Pull", s.testPull},
		{"InvalidArgument", s.testInvalid},
		{"OCIRuntime", s.testOCIRuntime},
		{"Networks", s.testNetworks},
		{"FullSpec", s.testFullSpec},
		{"Lifecycle", s.testLifecycle},
		{"Pause", s.testPause},
		{"Batch", s.testBatch},
		{"List", s.testList},
		{"Events", s.testEvents},
		{"Logs", s.testLogs},
		{"Exec", s.testExec},
		{"Context", s.testContext},
		{"Engine", s.testEngine},
	} {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, st.name) {
			t.Run(st.name, st.f)
		}
	}
}

// suite is one Run.
type suite struct {
	cfg Config
	rt  runtime.Runtime
	top *testing.T
	run string // unique: starts every name, values LabelRun

	netOnce sync.Once
	netName string
	netErr  error
}

// name returns a unique name for one object of this run.
func (s *suite) name(what string) string { return s.run + "-" + what }

// labels returns the run's label plus the given key, value pairs.
func (s *suite) labels(kv ...string) map[string]string {
	m := map[string]string{LabelRun: s.run}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// ctx returns a context for the calls of one (sub)test: it ends with t,
// or after subtestBudget timeouts.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), subtestBudget*s.cfg.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// cleanupCtx is a fresh context for cleanups (t's has ended by then).
func (s *suite) cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// simpleSpec is a minimal container of Image, labelled for this run.
func (s *suite) simpleSpec(name string, labels map[string]string) runtime.ContainerSpec {
	l := s.labels()
	for k, v := range labels {
		l[k] = v
	}
	return runtime.ContainerSpec{Name: name, Image: s.cfg.Image, Labels: l, OCIRuntime: s.cfg.OCIRuntime}
}

// removeLater removes the container named name when t ends, force and
// all. It is registered before the container is created, so that even a
// create that fails half-way leaves nothing behind.
func (s *suite) removeLater(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.rt.Remove(ctx, []string{name}, runtime.RemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: remove container %s: %v", name, err)
		}
	})
}

// create creates a container removed when t ends; it stops t on error.
func (s *suite) create(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	s.removeLater(t, spec.Name)
	id, err := s.rt.Create(s.ctx(t), spec)
	if err != nil {
		t.Fatalf("create %s: %v", spec.Name, err)
	}
	if id == "" {
		t.Fatalf("create %s: got an empty ID", spec.Name)
	}
	return id
}

// start starts a container; it stops t on error.
func (s *suite) start(t *testing.T, ref string) {
	t.Helper()
	if err := s.rt.Start(s.ctx(t), ref); err != nil {
		t.Fatalf("start %s: %v", ref, err)
	}
}

// inspect inspects a container; it stops t on error.
func (s *suite) inspect(t *testing.T, ref string) runtime.Container {
	t.Helper()
	c, err := s.rt.Inspect(s.ctx(t), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return c
}

// network returns the run's network (inter-container traffic off),
// created on first use and removed when Run ends.
func (s *suite) network(t *testing.T) string {
	t.Helper()
	s.netOnce.Do(func() {
		name := s.name("net")
		s.top.Cleanup(func() {
			s.sweep() // a leftover container would hold the network
			ctx, cancel := s.cleanupCtx()
			defer cancel()
			if err := s.rt.RemoveNetwork(ctx, name); err != nil {
				s.top.Errorf("cleanup: remove network %s: %v", name, err)
			}
		})
		s.netErr = s.rt.EnsureNetwork(s.ctx(t), runtime.NetworkSpec{Name: name, DisableICC: true, Labels: s.labels()})
		s.netName = name
	})
	if s.netErr != nil {
		t.Fatalf("ensure network %s: %v", s.netName, s.netErr)
	}
	return s.netName
}

// sweep removes any container of this run still there (one a broken
// runtime created under a name the suite did not expect, say).
func (s *suite) sweep() {
	ctx, cancel := s.cleanupCtx()
	defer cancel()
	cs, err := s.rt.List(ctx, runtime.ListOptions{Labels: map[string]string{LabelRun: s.run}})
	if err != nil || len(cs) == 0 {
		return
	}
	refs := make([]string, 0, len(cs))
	for _, c := range cs {
		refs = append(refs, c.ID)
	}
	if err := s.rt.Remove(ctx, refs, runtime.RemoveOptions{Force: true}); err != nil {
		s.top.Errorf("cleanup: remove leftover containers: %v", err)
	}
}

// dataDir makes a host directory for a bind mount, owned by the spec's
// user when the engine is real (the container writes to it), removed
// when t ends.
func (s *suite) dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zaki-rtt-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if s.cfg.Engine {
		uid, gid, err := parseUser(s.cfg.User)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("chown the data dir to %s (run the engine checks as root): %v", s.cfg.User, err)
		}
	}
	return dir
}

func parseUser(u string) (uid, gid int, err error) {
	us, gs, ok := strings.Cut(u, ":")
	if !ok {
		gs = us
	}
	uid, err1 := strconv.Atoi(us)
	gid, err2 := strconv.Atoi(gs)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("Config.User %q: want numeric uid:gid", u)
	}
	return uid, gid, nil
}

// freePort returns a TCP port free on the host address right now.
func freePort(t *testing.T, hostIP string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(hostIP, "0"))
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls check until it succeeds or the suite's timeout passes.
func (s *suite) waitFor(t *testing.T, check poll.Check) {
	t.Helper()
	poll.WaitOn(t, check, poll.WithTimeout(s.cfg.Timeout), poll.WithDelay(50*time.Millisecond))
}

// within runs f and fails t when it has not returned after d: the suite
// checks that nothing hangs without hanging itself.
func within(t *testing.T, d time.Duration, what string, f func()) bool {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		t.Errorf("%s: still blocked after %v", what, d)
		return false
	}
}
