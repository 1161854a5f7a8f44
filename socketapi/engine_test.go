package socketapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// engine is an agent driving the real docker plugin, served on a temp
// socket. Everything it creates carries its own label prefix and network,
// and is swept away when the test ends.
type engine struct {
	*apitest.Env
	network string
	prefix  string // label prefix, unique to this run
	suffix  string // appended to user IDs, unique to this run
	log     *apitest.SyncBuffer
}

func startEngine(t *testing.T) *engine { return startEngineWithPorts(t, 200) }

// startEngineWithPorts is startEngine with a range of the given number of
// host ports.
func startEngineWithPorts(t *testing.T, ports int) *engine { return startEngineWith(t, ports, nil) }

// startEngineWith is startEngineWithPorts with a change to the config
// after the test defaults (nil: none). The plugin's log is kept at debug
// level: its command lines are checked for secrets.
func startEngineWith(t *testing.T, ports int, config func(*daemon.Config)) *engine {
	testenv.RequireDocker(t)
	image := testenv.EnsureStubImage(t)
	pluginBin := testenv.Binary(t, "zaki-runtime-docker")
	en := &engine{
		network: testenv.UniqueName("zapi-net"),
		prefix:  fmt.Sprintf("zapi-%d-%d", os.Getpid(), rand.IntN(1e6)),
		suffix:  fmt.Sprintf("%d%03d", os.Getpid()%100000, rand.IntN(1000)),
		log:     &apitest.SyncBuffer{},
	}
	// Registered first, so it runs last: after the agent and plugin stop.
	t.Cleanup(func() { en.sweep(t) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", tail(en.log.String(), 4000))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plugin, err := runtime.Launch(ctx, runtime.PluginConfig{
		Name: "docker", Path: pluginBin, Args: []string{"--log-level", "debug"},
		Logger: slog.New(slog.NewTextHandler(en.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	assert.NilError(t, err)
	t.Cleanup(func() { plugin.Close() })

	lo := freePortWindow(t, ports)
	en.Env = apitest.Start(t, apitest.Options{
		Runtime:   plugin,
		PortRange: fmt.Sprintf("%d-%d", lo, lo+ports-1),
		Config: func(c *daemon.Config) {
			c.Runtime = "docker"
			c.Instance.Image = image
			c.Instance.AllowedImages = []string{image}
			c.Instance.HealthCmd = []string{"/gateway-stub", "-probe"}
			c.Instance.HealthIntervalSeconds = 1
			c.Instance.Network = en.network
			c.Instance.LabelPrefix = en.prefix
			// Generous bounds: other tests share this engine and these cores.
			c.Instance.ReadinessTimeoutSeconds = 120
			c.Instance.StopTimeoutSeconds = 2
			c.CallTimeoutSeconds = 60
			if config != nil {
				config(c)
			}
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", tail(en.Logs.String(), 6000))
		}
	})
	return en
}

// user returns a user ID unique to this run.
func (en *engine) user(name string) string { return name + "-" + en.suffix }

// sweep removes whatever containers and network this run left behind.
func (en *engine) sweep(t *testing.T) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+en.prefix+".instance=1").Output()
	if err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			t.Logf("sweep: removing %d containers left behind", len(ids))
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
	}
	exec.Command("docker", "network", "rm", en.network).Run()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// freePortWindow returns the first of n consecutive ports of 127.0.0.1,
// in a random window of 20000-60000, that are free right now.
func freePortWindow(t *testing.T, n int) int {
	for try := 0; try < 30; try++ {
		lo := 20000 + rand.IntN(40000-n)
		ok := true
		for p := lo; p < lo+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return lo
		}
	}
	t.Fatalf("no window of %d free ports", n)
	return 0
}

// dockerInspect returns a container's docker inspect document, or nil
// when it does not exist.
func dockerInspect(t *testing.T, name string) map[string]any {
	out, err := exec.Command("docker", "inspect", "--type", "container", name).Output()
	if err != nil {
		return nil
	}
	var docs []map[string]any
	assert.NilError(t, json.Unmarshal(out, &docs))
	return docs[0]
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// TestEngineEndToEnd drives the real agent, with the real docker plugin
// and the stand-in gateway image, through the whole API: from the Go
// client, from zakictl and from curl, and runs the README's examples as
// they are written. Every response is checked against the OpenAPI
// document.
func TestEngineEndToEnd(t *testing.T) {
	en := startEngine(t)
	t.Run("go client", func(t *testing.T) { testGoClient(t, en) })
	t.Run("zakictl", func(t *testing.T) { testZakictl(t, en) })
	t.Run("curl", func(t *testing.T) { testCurl(t, en) })
	t.Run("readme examples", func(t *testing.T) { testReadme(t, en) })
	assert.Check(t, en.Contract.Checked() > 50, "contract checked %d responses", en.Contract.Checked())
}

func testGoClient(t *testing.T, en *engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := en.Client
	u := en.user("go")
	name := "zaki-user-" + u
	t.Cleanup(func() { c.Remove(context.Background(), u, true) })

	h, err := c.Health(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(h.Status, socketapi.HealthOK))
	assert.Check(t, h.Runtime.Up)
	assert.Assert(t, h.Runtime.Engine != nil)
	assert.Check(t, is.Equal(h.Runtime.Engine.Runtime, "docker"))
	assert.Check(t, h.Runtime.Engine.EngineVersion != "")

	es, err := c.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()
	events := make(chan socketapi.Event, 1000)
	go func() {
		for {
			ev, err := es.Recv()
			if err != nil {
				close(events)
				return
			}
			if ev.UserID == u {
				events <- ev
			}
		}
	}()
	// waitEvent waits for an event of typ not waited for yet (events may
	// come in any order: the engine's die before the agent's stopped).
	var seen []socketapi.Event
	waitEvent := func(typ string) socketapi.Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			for i, ev := range seen {
				if ev.Type == typ {
					seen = append(seen[:i], seen[i+1:]...)
					return ev
				}
			}
			select {
			case ev, ok := <-events:
				assert.Assert(t, ok, "event stream ended")
				seen = append(seen, ev)
			case <-timeout:
				t.Fatalf("no %s event for %s within 30s", typ, u)
			}
		}
	}

	specA := socketapi.InstanceSpec{
		Env:       map[string]string{"OPENCLAW_GATEWAY_TOKEN": "tok-e2e"},
		Files:     map[string]string{"openclaw.json": `{"gateway":{"mode":"local"}}`},
		Resources: &socketapi.Resources{CPUs: 0.5, Memory: "256m", Pids: 50},
		Labels:    map[string]string{"plan": "pro"},
	}
	in, err := c.Ensure(ctx, u, specA)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
	assert.Check(t, is.Equal(in.State, socketapi.StateRunning))
	assert.Check(t, is.Equal(in.ContainerName, name))
	waitEvent(socketapi.EventEnsured)

	// The engine has it, as the API says, and the gateway answers with the
	// files and env it was given.
	doc := dockerInspect(t, name)
	assert.Assert(t, doc != nil, "container %s missing", name)
	assert.Check(t, is.Equal(dig(doc, "State", "Running"), true))
	assert.Check(t, is.Equal(dig(doc, "Id"), in.ContainerID))
	assert.Check(t, is.Equal(dig(doc, "Config", "Labels", en.prefix+".userId"), u))
	assert.Check(t, is.Equal(dig(doc, "Config", "Labels", "plan"), "pro"))
	assert.Check(t, is.Equal(dig(doc, "HostConfig", "Memory"), float64(256<<20)))
	assert.Check(t, is.Equal(dig(doc, "HostConfig", "NanoCpus"), float64(5e8)))
	body := httpGet(t, in.URL+"/files/openclaw.json")
	assert.Check(t, is.Equal(body, `{"gateway":{"mode":"local"}}`))
	assert.Check(t, is.Equal(httpGet(t, in.URL+"/env/OPENCLAW_GATEWAY_TOKEN"), "true\n"))
	assert.Check(t, is.Equal(httpGet(t, in.URL+"/env/NOT_GIVEN"), "false\n"))

	again, err := c.Ensure(ctx, u, specA)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Outcome, socketapi.OutcomeReused))
	assert.Check(t, is.Equal(again.ContainerID, in.ContainerID))

	// Another spec while hot: kept, marked stale.
	specB := specA
	specB.Resources = &socketapi.Resources{Memory: "128m"}
	hot, err := c.Ensure(ctx, u, specB)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(hot.Outcome, socketapi.OutcomeReused))
	assert.Check(t, hot.Stale)

	list, err := c.List(ctx, socketapi.StateRunning)
	assert.NilError(t, err)
	assert.Check(t, containsUser(list, u))
	touched, err := c.Touch(ctx, u)
	assert.NilError(t, err)
	assert.Check(t, touched.LastUsedAtMs >= in.LastUsedAtMs)

	rc, err := c.Logs(ctx, u, socketapi.LogOptions{Tail: new(10)})
	assert.NilError(t, err)
	_, err = io.ReadAll(rc)
	rc.Close()
	assert.NilError(t, err)
	// Docker's tail 0, since and timestamps, through the agent and the
	// plugin to the engine.
	readLogs := func(opts socketapi.LogOptions) string {
		t.Helper()
		rc, err := c.Logs(ctx, u, opts)
		assert.NilError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		assert.NilError(t, err)
		return string(b)
	}
	stamped := strings.Split(strings.TrimSuffix(readLogs(socketapi.LogOptions{Timestamps: true}), "\n"), "\n")
	assert.Assert(t, len(stamped) > 0 && stamped[0] != "", "no output from the instance")
	lastTS, lastText, _ := strings.Cut(stamped[len(stamped)-1], " ")
	last, err := time.Parse(time.RFC3339Nano, lastTS)
	assert.NilError(t, err, "timestamped line %q", stamped[len(stamped)-1])
	// The instance keeps writing (its health checks log): each check
	// allows for lines written after the last one read above.
	stampedLines := func(opts socketapi.LogOptions) []string {
		t.Helper()
		opts.Timestamps = true
		out := strings.TrimSuffix(readLogs(opts), "\n")
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	stampOf := func(line string) time.Time {
		t.Helper()
		ts, _, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		assert.NilError(t, err, "timestamped line %q", line)
		return at
	}
	assert.Check(t, is.Equal(readLogs(socketapi.LogOptions{Tail: new(0)}), ""))
	tail1 := stampedLines(socketapi.LogOptions{Tail: new(1)})
	assert.Assert(t, is.Len(tail1, 1))
	assert.Check(t, !stampOf(tail1[0]).Before(last), "tail 1 %q is older than the last line %q", tail1[0], stamped[len(stamped)-1])
	if stampOf(tail1[0]).Equal(last) {
		_, text, _ := strings.Cut(tail1[0], " ")
		assert.Check(t, is.Equal(text, lastText))
	}
	since := stampedLines(socketapi.LogOptions{Since: last})
	assert.Assert(t, len(since) > 0)
	assert.Check(t, is.Equal(since[0], stamped[len(stamped)-1]), "since the last line's time: the first line")
	for _, l := range stampedLines(socketapi.LogOptions{Since: last.Add(time.Nanosecond)}) {
		assert.Check(t, stampOf(l).After(last), "since a nanosecond after the last line: %q", l)
	}
	// Following, the stream ends when the container stops; a tail of 0
	// follows only what comes after the call.
	rc, err = c.Logs(ctx, u, socketapi.LogOptions{Follow: true, Tail: new(1)})
	assert.NilError(t, err)
	followDone := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, rc); followDone <- err }()
	rc0, err := c.Logs(ctx, u, socketapi.LogOptions{Follow: true, Tail: new(0), Timestamps: true})
	assert.NilError(t, err)
	defer rc0.Close()
	follow0 := make(chan string, 1)
	go func() { b, _ := io.ReadAll(rc0); follow0 <- string(b) }()

	stopped, err := c.Stop(ctx, u)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(stopped.State, socketapi.StateStopped))
	assert.Check(t, is.Equal(dig(dockerInspect(t, name), "State", "Running"), false))
	waitEvent(socketapi.EventStopped)
	waitEvent(socketapi.EventDied)
	select {
	case err := <-followDone:
		assert.NilError(t, err)
	case <-time.After(20 * time.Second):
		t.Error("logs follow did not end when the container stopped")
	}
	rc.Close()
	select {
	case out := <-follow0:
		// Only lines written after the call (docker may attach after the
		// stop, and then see none).
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if l == "" {
				continue
			}
			ts, _, _ := strings.Cut(l, " ")
			tm, err := time.Parse(time.RFC3339Nano, ts)
			assert.Check(t, err == nil && tm.After(last), "follow with tail 0: %q is not from after the call (last line before: %s)", l, lastTS)
		}
	case <-time.After(20 * time.Second):
		t.Error("logs follow with tail 0 did not end when the container stopped")
	}

	// Cold now, with another spec: made anew.
	re, err := c.Ensure(ctx, u, specB)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(re.Outcome, socketapi.OutcomeRecreated))
	assert.Check(t, re.ContainerID != in.ContainerID)
	assert.Check(t, !re.Stale)
	assert.Check(t, is.Equal(re.Port, in.Port), "a user keeps their port")
	assert.Check(t, is.Equal(dig(dockerInspect(t, name), "HostConfig", "Memory"), float64(128<<20)))

	_, err = c.Stop(ctx, u)
	assert.NilError(t, err)
	started, err := c.Ensure(ctx, u, specB)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(started.Outcome, socketapi.OutcomeStarted))
	assert.Check(t, is.Equal(started.ContainerID, re.ContainerID))

	restarted, err := c.Restart(ctx, u)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(restarted.State, socketapi.StateRunning))
	waitEvent(socketapi.EventRestarted)

	// Pruning: a dry run acts on nothing; idle-stop stops it for real.
	res, err := c.Prune(ctx, socketapi.PruneRequest{DryRun: true, IdleHours: ptr(1e-9), MaxAgeDays: ptr(0.0)})
	assert.NilError(t, err)
	assert.Check(t, containsItem(res.Removed, u))
	assert.Check(t, is.Equal(dig(dockerInspect(t, name), "State", "Running"), true))
	res, err = c.Prune(ctx, socketapi.PruneRequest{IdleStopMinutes: ptr(1e-9), IdleHours: ptr(0.0), MaxAgeDays: ptr(0.0)})
	assert.NilError(t, err)
	assert.Check(t, containsItem(res.Stopped, u), "%+v", res)
	assert.Check(t, is.Equal(dig(dockerInspect(t, name), "State", "Running"), false))

	// The engine's own health check is reported.
	_, err = c.Ensure(ctx, u, specB)
	assert.NilError(t, err)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		got, err := c.Get(ctx, u)
		if err != nil {
			return poll.Error(err)
		}
		if got.Health == "healthy" {
			return poll.Success()
		}
		return poll.Continue("health %q", got.Health)
	}, poll.WithTimeout(90*time.Second), poll.WithDelay(200*time.Millisecond))

	metrics, err := c.Metrics(ctx)
	assert.NilError(t, err)
	for _, want := range []string{`zaki_ensure_total{outcome="recreated"}`, `zaki_runtime_call_duration_seconds_count{method="Create"}`,
		`zaki_prune_instances_total{action="stopped"}`, `zaki_instances{state="running"}`} {
		assert.Check(t, strings.Contains(string(metrics), want), "metrics lack %s", want)
	}

	assert.NilError(t, c.Remove(ctx, u, false))
	assert.Check(t, dockerInspect(t, name) == nil, "container removed from the engine")
	_, err = c.Get(ctx, u)
	assert.Check(t, errors.Is(err, socketapi.ErrNotFound), "got %v", err)
	dataDir := filepath.Join(en.StateDir, "instances", u)
	_, err = os.Stat(filepath.Join(dataDir, "openclaw.json"))
	assert.NilError(t, err, "data kept")
	assert.NilError(t, c.Remove(ctx, u, true))
	_, err = os.Stat(dataDir)
	assert.Check(t, os.IsNotExist(err), "data purged")
	err = c.Remove(ctx, u, false)
	assert.Check(t, errors.Is(err, socketapi.ErrNotFound), "got %v", err)
	waitEvent(socketapi.EventRemoved)
}

func ptr[T any](v T) *T { return &v }

func containsUser(ins []socketapi.Instance, u string) bool {
	for _, in := range ins {
		if in.UserID == u {
			return true
		}
	}
	return false
}

func containsItem(items []socketapi.PruneItem, u string) bool {
	for _, it := range items {
		if it.UserID == u {
			return true
		}
	}
	return false
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return string(b)
}

func testZakictl(t *testing.T, en *engine) {
	c := apitest.NewCLI(t, en.Env)
	u := en.user("ctl")
	c.Replace = map[string]string{u: "<user>"}
	t.Cleanup(func() { en.Client.Remove(context.Background(), u, true) })
	dir := t.TempDir()
	c.Dir = dir
	envFile := filepath.Join(dir, "ctl.env")
	assert.NilError(t, os.WriteFile(envFile, []byte("OPENCLAW_GATEWAY_TOKEN=tok-ctl\n"), 0o600))

	c.Golden("engine-ensure", "ensure", u, "--env-file", envFile, "--memory", "512m")
	c.Golden("engine-ls", "ls", "--state", "running")
	in, err := en.Client.Get(context.Background(), u)
	assert.NilError(t, err)
	res := c.Run("inspect", u)
	res.Assert(t, icmd.Success)
	var got socketapi.Instance
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &got))
	assert.Check(t, is.Equal(got.ContainerID, in.ContainerID))
	c.Golden("engine-stop", "stop", u)
	assert.Check(t, is.Equal(dig(dockerInspect(t, "zaki-user-"+u), "State", "Running"), false))
	c.Golden("engine-restart", "restart", u)
	assert.Check(t, is.Equal(dig(dockerInspect(t, "zaki-user-"+u), "State", "Running"), true))
	c.Run("logs", u, "--tail", "5").Assert(t, icmd.Success)
	res = c.Run("health")
	res.Assert(t, icmd.Success)
	assert.Check(t, regexp.MustCompile(`(?m)^engine: +docker \S+`).MatchString(res.Stdout()), res.Stdout())
	c.Golden("engine-rm", "rm", u, "--purge")
	assert.Check(t, dockerInspect(t, "zaki-user-"+u) == nil)
	c.Golden("engine-rm-again", "rm", u)
}

// curl runs curl on the agent's socket and returns its output, the HTTP
// status last (-w).
func curl(t *testing.T, en *engine, args ...string) (int, string) {
	t.Helper()
	full := append([]string{"-sS", "--unix-socket", en.Socket, "-w", "\n%{http_code}"}, args...)
	out, err := exec.Command("curl", full...).Output()
	assert.NilError(t, err, "curl %v", args)
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(s, "\n")
	code, err := strconv.Atoi(s[i+1:])
	assert.NilError(t, err)
	return code, s[:max(i, 0)]
}

func testCurl(t *testing.T, en *engine) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed (apt-get install curl): %v", err)
	}
	u := en.user("curl")
	t.Cleanup(func() { en.Client.Remove(context.Background(), u, true) })
	base := "http://localhost/v1/instances/" + u
	code, body := curl(t, en, "-X", "PUT", "-H", "Content-Type: application/json", "-d", `{"labels":{"via":"curl"}}`, base)
	assert.Check(t, is.Equal(code, 201), body)
	assert.Check(t, is.Contains(body, `"outcome":"created"`))
	code, body = curl(t, en, "-X", "PUT", "-H", "Content-Type: application/json", "-d", `{"labels":{"via":"curl"}}`, base)
	assert.Check(t, is.Equal(code, 200), body)
	assert.Check(t, is.Contains(body, `"outcome":"reused"`))
	code, body = curl(t, en, base)
	assert.Check(t, is.Equal(code, 200), body)
	code, body = curl(t, en, "-X", "PATCH", base)
	assert.Check(t, is.Equal(code, 405), body)
	code, body = curl(t, en, "-H", "Origin: http://example.com", "-X", "DELETE", base)
	assert.Check(t, is.Equal(code, 403), body)
	assert.Check(t, dockerInspect(t, "zaki-user-"+u) != nil, "a refused call changes nothing")
	code, body = curl(t, en, "-X", "PUT", "-H", "Content-Type: application/json", "-d", `{"image":"evil/miner:latest"}`, base)
	assert.Check(t, is.Equal(code, 403), body)
	code, body = curl(t, en, "-X", "POST", base+"/stop")
	assert.Check(t, is.Equal(code, 200), body)
	assert.Check(t, is.Contains(body, `"state":"stopped"`))
	code, body = curl(t, en, base+"/logs?tail=all")
	assert.Check(t, is.Equal(code, 200), body)
	code, body = curl(t, en, "-X", "DELETE", base+"?purge=true")
	assert.Check(t, is.Equal(code, 204), body)
	assert.Check(t, is.Equal(body, ""))
	code, body = curl(t, en, base)
	assert.Check(t, is.Equal(code, 404), body)
	assert.Check(t, is.Contains(body, `"code":"not_found"`))
}

// readmeFile holds the API's curl and zakictl examples, in the section
// whose heading starts with apiSection (up to the next "## " heading).
const (
	readmeFile = "../README.md"
	apiSection = "## The API"
)

// example is one ```sh block of the README.
type example struct {
	line   int
	code   string
	stream bool   // runs until stopped: given a few seconds, then interrupted
	fails  bool   // answers an error
	expect string // the ```json block that follows a failing example
}

func readmeExamples(t *testing.T) []example {
	f, err := os.Open(readmeFile)
	assert.NilError(t, err)
	defer f.Close()
	var (
		out     []example
		block   *example // the sh block being read
		other   string   // the language of another block being read
		pending = -1     // a failing example waiting for the json block after it
	)
	inAPI := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if block == nil && other == "" && strings.HasPrefix(line, "## ") {
			inAPI = strings.HasPrefix(line, apiSection)
			continue
		}
		if !inAPI {
			continue
		}
		if fence, ok := strings.CutPrefix(line, "```"); ok && fence != "" && block == nil && other == "" {
			info := strings.Fields(fence)
			if info[0] == "sh" {
				block = &example{line: n}
				pending = -1
				for _, w := range info[1:] {
					block.stream = block.stream || w == "stream"
					block.fails = block.fails || w == "fails"
				}
			} else {
				other = info[0]
			}
			continue
		}
		if line == "```" {
			switch {
			case block != nil:
				out = append(out, *block)
				if block.fails {
					pending = len(out) - 1
				}
				block = nil
			case other != "":
				if other == "json" {
					pending = -1
				}
				other = ""
			}
			continue
		}
		switch {
		case block != nil:
			block.code += line + "\n"
		case other == "json" && pending >= 0:
			out[pending].expect += line + "\n"
		}
	}
	assert.NilError(t, sc.Err())
	return out
}

// testReadme runs every ```sh block of the README's API section as it is written,
// in order, with bash, ZAKI_SOCKET set to the test agent's socket and
// zakictl on PATH. A block must exit 0 and print no error body unless it
// is marked "fails" (then it prints the error shown after it); a block
// marked "stream" is given a few seconds and must have printed something.
func testReadme(t *testing.T, en *engine) {
	// The examples name a fixed user: one run at a time on this host.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "zaki-socketapi-readme.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	assert.NilError(t, err)
	defer lock.Close()
	assert.NilError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	for _, u := range []string{"user-1042"} {
		if doc := dockerInspect(t, "zaki-user-"+u); doc != nil {
			labels, _ := dig(doc, "Config", "Labels").(map[string]any)
			ours := false
			for k := range labels {
				ours = ours || strings.HasPrefix(k, "zapi-")
			}
			assert.Assert(t, ours, "container zaki-user-%s exists and is not a leftover of this test: not touching it", u)
			exec.Command("docker", "rm", "-f", "zaki-user-"+u).Run()
		}
		t.Cleanup(func() { en.Client.Remove(context.Background(), u, true) })
	}

	ctlDir := filepath.Dir(testenv.Binary(t, "zakictl"))
	dir := t.TempDir()
	examples := readmeExamples(t)
	assert.Assert(t, len(examples) >= 10, "found %d examples in %s", len(examples), readmeFile)
	for _, ex := range examples {
		where := fmt.Sprintf("%s:%d", readmeFile, ex.line)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", ex.code)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ZAKI_SOCKET="+en.Socket, "PATH="+ctlDir+":"+os.Getenv("PATH"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out apitest.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		assert.NilError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if ex.stream {
			// Something to see: a restart, then as long as it takes to show.
			go func() {
				rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer rcancel()
				en.Client.Restart(rctx, "user-1042")
			}()
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if strings.TrimSpace(out.String()) != "" {
					return poll.Success()
				}
				return poll.Continue("%s printed nothing yet", where)
			}, poll.WithTimeout(2*time.Minute), poll.WithDelay(100*time.Millisecond))
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			<-done
			// Let the restart finish before the next example.
			poll.WaitOn(t, func(poll.LogT) poll.Result {
				in, err := en.Client.Get(context.Background(), "user-1042")
				if err == nil && in.State == socketapi.StateRunning {
					return poll.Success()
				}
				return poll.Continue("user-1042 not running again: %v", err)
			}, poll.WithTimeout(2*time.Minute), poll.WithDelay(100*time.Millisecond))
			continue
		}
		select {
		case err = <-done:
		case <-time.After(5 * time.Minute):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = fmt.Errorf("still running after 5 minutes: %v", <-done)
		}
		if err != nil {
			t.Errorf("%s: %v\n%s\n%s", where, err, ex.code, out.String())
			continue
		}
		for _, l := range strings.Split(out.String(), "\n") {
			var eb socketapi.ErrorBody
			if json.Unmarshal([]byte(l), &eb) == nil && eb.Error.Code != "" && !ex.fails {
				t.Errorf("%s answered an error: %s", where, l)
			}
		}
		if ex.fails {
			assert.Check(t, is.Equal(strings.TrimSpace(out.String()), strings.TrimSpace(ex.expect)), where)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "openapi.json"))
	assert.NilError(t, err, "the openapi example saved the document")
	assert.Check(t, is.DeepEqual(b, socketapi.OpenAPI))
	assert.Check(t, dockerInspect(t, "zaki-user-user-1042") == nil, "the examples end by removing their instance")
}
