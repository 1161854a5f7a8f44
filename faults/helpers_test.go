package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// loadTolerant are agent flags for the long fault tests: readiness may
// take long on a loaded 2-core machine, and a slow start is not what they
// test.
var loadTolerant = []string{"--instance.readiness-timeout-seconds=120"}

// containerInfo is the part of `docker inspect` the suite reads.
type containerInfo struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status     string
		Running    bool
		Pid        int
		ExitCode   int
		OOMKilled  bool
		StartedAt  string
		FinishedAt string
		Health     *struct{ Status string }
	}
	RestartCount    int
	AppArmorProfile string
	Mounts          []struct {
		Type, Source, Destination, Mode, Propagation string
		RW                                           bool
	}
	Config struct {
		User         string
		Image        string
		Labels       map[string]string
		ExposedPorts map[string]struct{}
		Healthcheck  *struct {
			Test     []string
			Interval int64
			Retries  int
		}
	}
	HostConfig struct {
		Privileged     bool
		CapAdd         []string
		CapDrop        []string
		SecurityOpt    []string
		ReadonlyRootfs bool
		Memory         int64
		MemorySwap     int64
		CPUShares      int64 `json:"CpuShares"`
		NanoCpus       int64
		PidsLimit      *int64
		RestartPolicy  struct {
			Name              string
			MaximumRetryCount int
		}
		PortBindings      map[string][]struct{ HostIP, HostPort string }
		PublishAllPorts   bool
		NetworkMode       string
		PidMode           string
		IpcMode           string
		UTSMode           string
		UsernsMode        string
		CgroupnsMode      string
		CgroupParent      string
		Cgroup            string
		Binds             []string
		Devices           []struct{ PathOnHost, PathInContainer string }
		DeviceCgroupRules []string
		Tmpfs             map[string]string
		Init              *bool
		Runtime           string
		Ulimits           []struct {
			Name       string
			Soft, Hard int64
		}
	}
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIP, HostPort string }
		Networks map[string]struct {
			IPAddress, Gateway, NetworkID string
		}
	}
}

// inspect returns `docker inspect` of the containers named (all of them
// must exist).
func inspect(t testing.TB, refs ...string) []containerInfo {
	t.Helper()
	if len(refs) == 0 {
		return nil
	}
	out := testenv.Docker(t, append([]string{"inspect"}, refs...)...)
	var cs []containerInfo
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	return cs
}

func inspectOne(t testing.TB, ref string) containerInfo { return inspect(t, ref)[0] }

// labelled returns every container carrying the agent's instance label,
// running or not, inspected.
func labelled(t testing.TB, p *testenv.AgentProc) []containerInfo {
	t.Helper()
	out := testenv.Docker(t, "ps", "-aq", "--no-trunc", "--filter", "label="+p.LabelPrefix+".instance=1")
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil
	}
	// A container may go away between ps and inspect (the agent is working):
	// inspect what is left.
	cmd := exec.Command("docker", append([]string{"inspect"}, ids...)...)
	b, _ := cmd.Output()
	var cs []containerInfo
	if len(b) > 0 {
		if err := json.Unmarshal(b, &cs); err != nil {
			t.Fatalf("docker inspect: %v", err)
		}
	}
	return cs
}

// userOf returns the user ID label of a container of p's.
func userOf(p *testenv.AgentProc, c containerInfo) string {
	return c.Config.Labels[p.LabelPrefix+".userId"]
}

// snapshot is what registry.json holds, read by the registry's own
// (strict) decoder.
type snapshot struct {
	Records map[string]registry.Record
	Ports   map[string]int
	UIDs    map[string]int
}

// readRegistry decodes p's registry.json with the registry package itself,
// on a copy (the agent holds the state dir's lock). A missing file is an
// empty registry.
func readRegistry(stateDir string) (snapshot, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "registry.json"))
	if os.IsNotExist(err) {
		return snapshot{Records: map[string]registry.Record{}, Ports: map[string]int{}, UIDs: map[string]int{}}, nil
	}
	if err != nil {
		return snapshot{}, err
	}
	dir, err := os.MkdirTemp("", "zaki-faults-reg-")
	if err != nil {
		return snapshot{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "registry.json"), b, 0o600); err != nil {
		return snapshot{}, err
	}
	r, err := registry.Open(dir, registry.Options{})
	if err != nil {
		return snapshot{}, fmt.Errorf("registry.json does not parse: %w", err)
	}
	defer r.Close()
	s := snapshot{Records: map[string]registry.Record{}, Ports: r.Ports(), UIDs: r.UIDs()}
	for _, rec := range r.List() {
		s.Records[rec.UserID] = rec
	}
	return s, nil
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procPPID(n); ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

func procPPID(pid int) (int, string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 || end+2 > len(s) {
		return 0, ""
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid, s[open+1 : end]
}

// procState returns the state letter of a process ("" when it is gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 || end+3 > len(s) {
		return ""
	}
	return s[end+2 : end+3]
}

// pluginPid returns the pid of the agent's runtime plugin process (0 when
// there is none).
func pluginPid(p *testenv.AgentProc) int {
	for _, c := range children(p.Pid()) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); err == nil && strings.HasPrefix(filepath.Base(exe), "zaki-runtime-") {
			return c
		}
	}
	return 0
}

// descendants returns every process below pid.
func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

// procStatus returns the fields of /proc/<pid>/status.
func procStatus(pid int) (map[string]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

// get fetches url (an instance's gateway) and returns its body.
func get(url string) (string, error) { return send(http.MethodGet, url) }

func post(url string) (string, error) { return send(http.MethodPost, url) }

func send(method, url string) (string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return "", err
	}
	c := http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return string(b), fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	return strings.TrimSpace(string(b)), err
}

// runtimeCalls sums the agent's runtime call counter over every method,
// read from GET /metrics.
func runtimeCalls(t testing.TB, c *socketapi.Client) float64 {
	t.Helper()
	b, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "zaki_runtime_call_duration_seconds_count") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// waitQuiet waits until the agent has made no engine call (by the shim in
// dir and by its metrics) for a second and a half.
func waitQuiet(t testing.TB, p *testenv.AgentProc, dir string) {
	t.Helper()
	shim, calls := len(shimLines(dir)), runtimeCalls(t, p.Client)
	quietSince := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(quietSince) < 1500*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("the agent kept calling the engine for 30 s: %v", shimLines(dir)[shim:])
		}
		time.Sleep(100 * time.Millisecond)
		s, c := len(shimLines(dir)), runtimeCalls(t, p.Client)
		if s != shim || c != calls {
			shim, calls, quietSince = s, c, time.Now()
		}
	}
}

// dockerShim writes a stand-in `docker` into a new dir and returns the
// dir, to put first on the agent's PATH. The shim appends its command
// line to dir/calls.log (the agent puts no secret on one), sleeps half a
// second when dir/slow holds the subcommand, then, when dir/hang exists
// and holds the subcommand or "*", sleeps forever; otherwise it runs the
// real docker client.
func dockerShim(t testing.TB) string {
	t.Helper()
	real, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	real, _ = filepath.Abs(real)
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
d=%q
printf '%%s\n' "$*" >>"$d/calls.log"
if [ -f "$d/slow" ] && grep -qx -- "$1" "$d/slow"; then
	sleep 0.5
fi
if [ -f "$d/hang" ] && { grep -qx -- "$1" "$d/hang" || grep -qx '\*' "$d/hang"; }; then
	exec sleep infinity
fi
exec %q "$@"
`, dir, real)
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shimCalls returns the subcommands the shim in dir ran so far.
func shimCalls(dir string) []string {
	lines := shimLines(dir)
	for i, l := range lines {
		lines[i], _, _ = strings.Cut(l, " ")
	}
	return lines
}

// shimLines returns the whole command lines (arguments after "docker")
// the shim in dir ran so far, one a call.
func shimLines(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

// shimEnv is the agent environment that puts the shim in dir first on PATH.
func shimEnv(dir string) []string {
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
