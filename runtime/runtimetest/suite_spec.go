package runtimetest

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// fullSpec is a container spec with every field of runtime.ContainerSpec
// set, as the agent creates instances (the design's hardened defaults),
// running the stand-in with its data dir bind-mounted from dataDir and
// its port published on hostPort.
func (s *suite) fullSpec(name, network, dataDir string, hostPort int) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:  name,
		Image: s.cfg.Image,
		Cmd:   []string{"-addr", fmt.Sprintf(":%d", stubPort), "-data", stubDataPath},
		Env:   map[string]string{"ZAKI_USER_ID": "conformance", "GATEWAY_DATA_DIR": stubDataPath},
		Labels: s.labels(
			"zconf.instance", "1",
			"zconf.userId", "conformance",
			"zaki.conformance.spec", name,
		),
		User: s.cfg.User,
		Init: true,
		Resources: runtime.Resources{
			CPUs:       0.5,
			CPUShares:  512,
			Memory:     "256m",
			MemorySwap: "512m",
			PidsLimit:  s.pidsLimit(),
			Ulimits: []runtime.Ulimit{
				{Name: "nofile", Soft: 1024, Hard: 2048},
				{Name: "nproc", Soft: 512, Hard: 1024},
			},
		},
		Security: runtime.Security{
			ReadOnlyRoot:    true,
			Tmpfs:           []runtime.Tmpfs{{Path: "/tmp", Options: "size=64m"}},
			CapDrop:         []string{"ALL"},
			CapAdd:          []string{"NET_BIND_SERVICE"},
			NoNewPrivileges: true,
		},
		Restart: runtime.RestartPolicy{Name: "on-failure", MaxRetries: 5},
		Network: network,
		Ports:   []runtime.PortBinding{{HostIP: s.cfg.HostIP, HostPort: hostPort, ContainerPort: stubPort, Protocol: "tcp"}},
		Mounts:  []runtime.Mount{{Source: dataDir, Target: stubDataPath}},
		Healthcheck: &runtime.Healthcheck{
			Test:        []string{"/gateway-stub", "-probe"},
			Interval:    time.Second,
			Timeout:     3 * time.Second,
			StartPeriod: 2 * time.Second,
			Retries:     3,
		},
		StopTimeout: 5 * time.Second,
		Log:         runtime.LogConfig{MaxSize: "1m", MaxFiles: 3},
		OCIRuntime:  s.cfg.OCIRuntime,
	}
}

// testFullSpec: a container created with every field set reads back equal
// (sizes as byte counts, Env not at all), by name and by ID; creating its
// name again is ErrAlreadyExists and leaves it alone.
func (s *suite) testFullSpec(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("full")
	spec := s.fullSpec(name, s.network(t), s.dataDir(t), freePort(t, s.cfg.HostIP))
	// Several mounts read back: the agent mounts sub-dirs of a user's data
	// dir apart (instance.mounts).
	spec.Mounts = append(spec.Mounts, runtime.Mount{Source: s.dataDir(t), Target: "/home/node/workspace"})
	id := s.create(t, spec)

	c := s.inspect(t, name)
	if c.ID != id {
		t.Errorf("inspect %s: ID %q, want %q (what Create returned)", name, c.ID, id)
	}
	if c.Name != name || c.Image != spec.Image {
		t.Errorf("inspect %s: Name %q Image %q, want %q %q", name, c.Name, c.Image, name, spec.Image)
	}
	if c.State != runtime.StateCreated || c.Running() {
		t.Errorf("inspect %s: state %q, want %q", name, c.State, runtime.StateCreated)
	}
	if want, err := s.rt.ImageID(s.ctx(t), spec.Image); err != nil || c.ImageID != want {
		t.Errorf("inspect %s: ImageID %q, want %q, what ImageID(%q) says (err %v)", name, c.ImageID, want, spec.Image, err)
	}
	if c.CreatedAt.IsZero() || !c.StartedAt.IsZero() || !c.FinishedAt.IsZero() {
		t.Errorf("inspect %s: CreatedAt %v StartedAt %v FinishedAt %v, want only CreatedAt set", name, c.CreatedAt, c.StartedAt, c.FinishedAt)
	}
	want := spec
	if s.cfg.SingleLogFile {
		want.Log.MaxFiles = 1
	}
	for _, d := range compareSpec(want, c.Spec) {
		t.Errorf("inspect %s: Spec.%s", name, d)
	}

	byID := s.inspect(t, id)
	if byID.ID != id || byID.Name != name {
		t.Errorf("inspect by ID %s: got ID %q name %q, want %q %q", id, byID.ID, byID.Name, id, name)
	}

	again := s.simpleSpec(name, nil)
	_, err := s.rt.Create(ctx, again)
	if runtime.Class(err) != runtime.ErrAlreadyExists {
		t.Errorf("create %s again: got %v, want class %v", name, err, runtime.ErrAlreadyExists)
	}
	if c := s.inspect(t, name); c.ID != id {
		t.Errorf("inspect %s after the second create: ID %q, want %q (the first container)", name, c.ID, id)
	}
}

// compareSpec lists the differences between the spec a container was
// created with and the spec read back from the engine, in the contract's
// terms: sizes are compared as byte counts (and must read back as plain
// numbers), Env must not read back, labels may carry extra keys (from the
// image), capabilities compare without a "CAP_" prefix, tmpfs, ports,
// mounts and ulimits compare as sets.
func compareSpec(want, got runtime.ContainerSpec) []string {
	var diffs []string
	add := func(field string, g, w any) {
		diffs = append(diffs, fmt.Sprintf("%s: got %#v, want %#v", field, g, w))
	}
	eq := func(field string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			add(field, g, w)
		}
	}
	eq("Name", got.Name, want.Name)
	eq("Image", got.Image, want.Image)
	if !slices.Equal(got.Cmd, want.Cmd) {
		add("Cmd", got.Cmd, want.Cmd)
	}
	if len(got.Env) != 0 {
		diffs = append(diffs, fmt.Sprintf("Env: got %d variables, want none (Env is never read back)", len(got.Env)))
	}
	for k, v := range want.Labels {
		if g, ok := got.Labels[k]; !ok || g != v {
			add("Labels["+k+"]", g, v)
		}
	}
	eq("User", got.User, want.User)
	eq("Init", got.Init, want.Init)

	gr, wr := got.Resources, want.Resources
	if math.Abs(gr.CPUs-wr.CPUs) > 1e-6 {
		add("Resources.CPUs", gr.CPUs, wr.CPUs)
	}
	eq("Resources.CPUShares", gr.CPUShares, wr.CPUShares)
	if d := sizeDiff(gr.Memory, wr.Memory); d != "" {
		diffs = append(diffs, "Resources.Memory: "+d)
	}
	if d := sizeDiff(gr.MemorySwap, wr.MemorySwap); d != "" {
		diffs = append(diffs, "Resources.MemorySwap: "+d)
	}
	eq("Resources.PidsLimit", gr.PidsLimit, wr.PidsLimit)
	eq("Resources.Ulimits", sortedStrings(gr.Ulimits), sortedStrings(wr.Ulimits))

	gs, ws := got.Security, want.Security
	eq("Security.ReadOnlyRoot", gs.ReadOnlyRoot, ws.ReadOnlyRoot)
	eq("Security.Tmpfs", sortedStrings(gs.Tmpfs), sortedStrings(ws.Tmpfs))
	eq("Security.CapDrop", caps(gs.CapDrop), caps(ws.CapDrop))
	eq("Security.CapAdd", caps(gs.CapAdd), caps(ws.CapAdd))
	eq("Security.NoNewPrivileges", gs.NoNewPrivileges, ws.NoNewPrivileges)
	eq("Security.SeccompProfile", gs.SeccompProfile, ws.SeccompProfile)
	eq("Security.ApparmorProfile", gs.ApparmorProfile, ws.ApparmorProfile)

	eq("Restart", got.Restart, want.Restart)
	eq("Network", got.Network, want.Network)
	eq("Ports", sortedStrings(ports(got.Ports)), sortedStrings(ports(want.Ports)))
	eq("Mounts", sortedStrings(got.Mounts), sortedStrings(want.Mounts))

	switch gh, wh := got.Healthcheck, want.Healthcheck; {
	case gh == nil && wh != nil:
		add("Healthcheck", gh, *wh)
	case gh != nil && wh == nil:
		add("Healthcheck", *gh, wh)
	case gh != nil:
		if !slices.Equal(gh.Test, wh.Test) {
			add("Healthcheck.Test", gh.Test, wh.Test)
		}
		eq("Healthcheck.Interval", gh.Interval, wh.Interval)
		eq("Healthcheck.Timeout", gh.Timeout, wh.Timeout)
		eq("Healthcheck.StartPeriod", gh.StartPeriod, wh.StartPeriod)
		eq("Healthcheck.Retries", gh.Retries, wh.Retries)
	}
	eq("StopTimeout", got.StopTimeout, want.StopTimeout)
	if d := sizeDiff(got.Log.MaxSize, want.Log.MaxSize); d != "" {
		diffs = append(diffs, "Log.MaxSize: "+d)
	}
	eq("Log.MaxFiles", got.Log.MaxFiles, want.Log.MaxFiles)
	if want.OCIRuntime != "" { // "" reads back as the engine's default
		eq("OCIRuntime", got.OCIRuntime, want.OCIRuntime)
	}
	return diffs
}

var byteCountRE = regexp.MustCompile(`^(-1|[0-9]+)$`)

// sizeDiff compares a size read back (a byte count) with the size asked
// for (docker notation); "" is no limit.
func sizeDiff(got, want string) string {
	if want == "" {
		if got == "" || got == "0" {
			return ""
		}
		return fmt.Sprintf("got %q, want no limit", got)
	}
	if !byteCountRE.MatchString(got) {
		return fmt.Sprintf("got %q, want a byte count (%q)", got, want)
	}
	g, _ := runtime.ParseBytes(got)
	w, err := runtime.ParseBytes(want)
	if err != nil || g != w {
		return fmt.Sprintf("got %q, want %q (%d bytes)", got, want, w)
	}
	return ""
}

// sortedStrings formats each element and sorts them: a set, for fields
// whose order an engine may not keep.
func sortedStrings[T any](xs []T) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%+v", x))
	}
	sort.Strings(out)
	return out
}

// caps normalizes capability names: upper case, no "CAP_" prefix, sorted.
func caps(cs []string) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	sort.Strings(out)
	return out
}

// ports fills in the default protocol.
func ports(ps []runtime.PortBinding) []runtime.PortBinding {
	out := slices.Clone(ps)
	for i := range out {
		if out[i].Protocol == "" {
			out[i].Protocol = "tcp"
		}
	}
	return out
}

// testOCIRuntime: the engine lists the suite's OCI runtime (when it lists
// any), and a container asking for one the engine does not know is
// ErrUnavailable (the host must be set up first, see
// runtime.UnknownOCIRuntime), naming the runtime, and leaves nothing.
func (s *suite) testOCIRuntime(t *testing.T) {
	ctx := s.ctx(t)
	info, err := s.rt.Info(ctx)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if s.cfg.OCIRuntime != "" && info.OCIRuntimes != nil && !slices.Contains(info.OCIRuntimes, s.cfg.OCIRuntime) {
		t.Errorf("info: OCIRuntimes %q lack %q, which the suite runs under", info.OCIRuntimes, s.cfg.OCIRuntime)
	}

	const unknown = "zaki-no-such-runtime"
	name := s.name("unknown-oci")
	s.removeLater(t, name)
	sp := s.simpleSpec(name, nil)
	sp.OCIRuntime = unknown
	_, err = s.rt.Create(ctx, sp)
	if runtime.Class(err) != runtime.ErrUnavailable || !strings.Contains(fmt.Sprint(err), unknown) {
		t.Fatalf("create with OCI runtime %q: got %v (class %v), want class %v naming it", unknown, err, runtime.Class(err), runtime.ErrUnavailable)
	}
	if _, err := s.rt.Inspect(ctx, name); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("after the refused create: inspect %s: got %v, want class %v", name, err, runtime.ErrNotFound)
	}
}

// pidsLimit is the full spec's PIDs limit: 100, or 300 under gVisor, whose
// sandbox counts its own host tasks against the limit (about 44 idle and
// 12 more for each process, the health check's included: at 100 a busy
// stand-in ends its sandbox, which then exits 2), as README says to set
// instance.resources.pids with runsc.
func (s *suite) pidsLimit() int64 {
	if s.cfg.OCIRuntime == "runsc" {
		return 300
	}
	return 100
}
