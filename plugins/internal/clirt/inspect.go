package clirt

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// inspectChunk bounds the IDs given to one inspect, to stay far below the
// kernel's argv limit.
const inspectChunk = 500

// Inspect returns one container.
func (e *Engine) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return runtime.Container{}, err
	}
	cs, err := e.InspectContainers(ctx, []string{ref})
	if err != nil {
		return runtime.Container{}, fmt.Errorf("inspect %q: %w", ref, err)
	}
	if len(cs) == 0 {
		return runtime.Container{}, runtime.Errorf(runtime.ErrNotFound, "inspect %q: no such container", ref)
	}
	return cs[0], nil
}

// List is one `ps` for the IDs of the matching containers (both clients
// AND the label filters, and match a key alone) and one inspect of all
// of them.
func (e *Engine) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	filters, err := cliargs.LabelFilters(opts.Labels)
	if err != nil {
		return nil, err
	}
	cs, err := e.ListPS(ctx, slices.Concat(e.d.ListArgs, filters))
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	slices.SortFunc(cs, func(a, b runtime.Container) int { return cmp.Compare(a.Name, b.Name) })
	return cs, nil
}

// ListPS runs a `ps` that prints JSON and inspects the containers it
// prints.
func (e *Engine) ListPS(ctx context.Context, ps []string) ([]runtime.Container, error) {
	res, err := e.RunClient(ctx, ps...)
	if err != nil {
		return nil, err
	}
	rows, err := Decode[struct {
		ID string `json:"Id"`
	}](e.d.Output, "ps", res.Stdout)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return e.InspectContainers(ctx, ids)
}

// InspectContainers inspects containers, as few calls as the argv limit
// allows. Containers that are gone (removed since they were listed) are
// left out.
func (e *Engine) InspectContainers(ctx context.Context, refs []string) ([]runtime.Container, error) {
	var out []runtime.Container
	for chunk := range slices.Chunk(refs, inspectChunk) {
		res, err := e.RunClient(ctx, slices.Concat(e.d.InspectArgs, []string{"--"}, chunk)...)
		if err != nil && !NotFound(err) {
			return nil, err
		}
		// With some refs missing, the client prints the others and fails.
		cs, perr := e.ParseInspect(res.Stdout)
		if perr != nil {
			return nil, perr
		}
		out = append(out, cs...)
	}
	return out, nil
}

// ParseInspect reads the output of InspectArgs.
func (e *Engine) ParseInspect(out []byte) ([]runtime.Container, error) {
	raws, err := Decode[Inspect](e.d.Output, "inspect", out)
	if err != nil {
		return nil, err
	}
	cs := make([]runtime.Container, 0, len(raws))
	for i := range raws {
		cs = append(cs, raws[i].Container(e.d))
	}
	return cs, nil
}

// Inspect is a container as the clients' inspect prints it: the fields
// that either prints and the runtime reads. The two look alike and are
// not; Container reads what they print alike, Dialect.ReadBack the rest.
type Inspect struct {
	ID              string `json:"Id"`
	Created         time.Time
	Name            string
	Image           string // the image ID
	ImageName       string // podman: the resolved reference
	RestartCount    int
	BoundingCaps    []string // podman: the effective capabilities
	AppArmorProfile string
	OCIRuntime      string // podman: the OCI runtime (its HostConfig.Runtime is "oci")
	State           struct {
		Status     string
		ExitCode   int
		OOMKilled  bool
		StartedAt  time.Time
		FinishedAt time.Time
		Health     *struct{ Status string }
	}
	// Mounts is podman's list of mounts; docker's bind mounts made by
	// --mount are in HostConfig.Mounts.
	Mounts []struct {
		Type, Source, Destination string
		RW                        bool
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
	Config struct {
		Image       string
		Cmd         []string
		Labels      map[string]string
		Annotations map[string]string
		User        string
		Healthcheck *HealthJSON
		StopTimeout *int64
	}
	HostConfig struct {
		NanoCpus   int64
		CPUShares  int64 `json:"CpuShares"`
		Memory     int64
		MemorySwap int64
		PidsLimit  *int64
		Ulimits    []struct {
			Name       string
			Soft, Hard int64
		}
		ReadonlyRootfs bool
		Tmpfs          map[string]string
		CapDrop        []string
		CapAdd         []string
		SecurityOpt    []string
		RestartPolicy  struct {
			Name              string
			MaximumRetryCount int
		}
		NetworkMode  string
		PortBindings map[string][]struct{ HostIP, HostPort string }
		Mounts       []struct {
			Type, Source, Target string
			ReadOnly             bool
		}
		Init      *bool
		Runtime   string // docker: the OCI runtime
		LogConfig struct {
			Type   string
			Config map[string]string
			Size   string // podman: its max size, in its own words
		}
	}
}

// Container is the runtime's view of an inspected container, corrected
// by d.ReadBack.
func (j *Inspect) Container(d Dialect) runtime.Container {
	c := runtime.Container{
		ID:           j.ID,
		Name:         strings.TrimPrefix(j.Name, "/"),
		Image:        j.Config.Image,
		ImageID:      ImageID(j.Image),
		State:        runtime.State(j.State.Status),
		ExitCode:     j.State.ExitCode,
		OOMKilled:    j.State.OOMKilled,
		RestartCount: j.RestartCount,
		CreatedAt:    zeroTime(j.Created),
		StartedAt:    zeroTime(j.State.StartedAt),
		FinishedAt:   zeroTime(j.State.FinishedAt),
	}
	if s, ok := d.States[j.State.Status]; ok {
		c.State = s
	}
	if j.State.Health != nil {
		c.Health = j.State.Health.Status
	}
	c.Spec = j.spec(d)
	if d.ReadBack != nil {
		d.ReadBack(j, &c)
	}
	return c
}

// spec reads the container's configuration back in the terms of
// ContainerSpec. Sizes are byte counts; "no" restart policy and the
// "default" network read as empty; capabilities lose the "CAP_" prefix,
// ulimits the "RLIMIT_" prefix.
func (j *Inspect) spec(d Dialect) runtime.ContainerSpec {
	h := j.HostConfig
	s := runtime.ContainerSpec{
		Name:   strings.TrimPrefix(j.Name, "/"),
		Image:  j.Config.Image,
		Cmd:    nilIfEmpty(j.Config.Cmd),
		Labels: j.Config.Labels,
		User:   j.Config.User,
		Init:   h.Init != nil && *h.Init,
		Resources: runtime.Resources{
			CPUs:      float64(h.NanoCpus) / 1e9,
			CPUShares: h.CPUShares,
			Memory:    byteCount(h.Memory),
			MemorySwap: func() string {
				if h.MemorySwap == -1 {
					return "-1"
				}
				return byteCount(h.MemorySwap)
			}(),
		},
		Network:     h.NetworkMode,
		Healthcheck: HealthFromConfig(j.Config.Healthcheck, d.ParseShellHealth),
		OCIRuntime:  cmp.Or(j.OCIRuntime, h.Runtime),
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	if h.PidsLimit != nil {
		s.Resources.PidsLimit = *h.PidsLimit
	}
	for _, u := range h.Ulimits {
		name := strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))
		s.Resources.Ulimits = append(s.Resources.Ulimits, runtime.Ulimit{Name: name, Soft: u.Soft, Hard: u.Hard})
	}

	sec := &s.Security
	sec.ReadOnlyRoot = h.ReadonlyRootfs
	for _, p := range slices.Sorted(maps.Keys(h.Tmpfs)) {
		sec.Tmpfs = append(sec.Tmpfs, runtime.Tmpfs{Path: p, Options: h.Tmpfs[p]})
	}
	sec.CapDrop = CapNames(h.CapDrop)
	sec.CapAdd = CapNames(h.CapAdd)
	for _, opt := range h.SecurityOpt {
		// "no-new-privileges", "no-new-privileges:true", "seccomp=...",
		// older engines "seccomp:...".
		k, v, _ := strings.Cut(opt, "=")
		if k == opt {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			sec.NoNewPrivileges = v == "" || v == "true"
		case "seccomp":
			sec.SeccompProfile = v
		case "apparmor":
			sec.ApparmorProfile = v
		}
	}

	if rp := h.RestartPolicy; rp.Name != "" && rp.Name != "no" {
		s.Restart = runtime.RestartPolicy{Name: rp.Name, MaxRetries: rp.MaximumRetryCount}
	}
	if s.Network == "default" {
		s.Network = ""
	}
	for _, key := range slices.Sorted(maps.Keys(h.PortBindings)) {
		port, proto, _ := strings.Cut(key, "/")
		cport, _ := strconv.Atoi(port)
		for _, b := range h.PortBindings[key] {
			hport, _ := strconv.Atoi(b.HostPort)
			s.Ports = append(s.Ports, runtime.PortBinding{HostIP: b.HostIP, HostPort: hport, ContainerPort: cport, Protocol: cmp.Or(proto, "tcp")})
		}
	}
	slices.SortFunc(s.Ports, func(a, b runtime.PortBinding) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	for _, m := range h.Mounts {
		if m.Type == "bind" {
			s.Mounts = append(s.Mounts, runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	if j.Config.StopTimeout != nil {
		s.StopTimeout = time.Duration(*j.Config.StopTimeout) * time.Second
	}
	if lc := h.LogConfig.Config; lc["max-size"] != "" {
		s.Log.MaxSize = lc["max-size"]
		if n, err := runtime.ParseBytes(lc["max-size"]); err == nil {
			s.Log.MaxSize = byteCount(n)
		}
		s.Log.MaxFiles, _ = strconv.Atoi(lc["max-file"])
	}
	return s
}

func byteCount(n int64) string {
	if n <= 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// CapNames drops the "CAP_" prefix of capability names.
func CapNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(c, "CAP_"))
	}
	return out
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// zeroTime maps the clients' "0001-01-01T00:00:00Z" to the zero time.Time.
func zeroTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t
}
