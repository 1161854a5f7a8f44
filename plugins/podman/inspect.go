package podman

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

// inspectChunk bounds the IDs given to one podman inspect, to stay far
// below the kernel's argv limit.
const inspectChunk = 500

// defaultNetwork is the network podman puts a container on when it names
// none (containers.conf default_network); it reads back as "".
const defaultNetwork = "podman"

// Inspect returns one container.
func (p *Podman) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return runtime.Container{}, err
	}
	cs, err := p.inspect(ctx, []string{ref})
	if err != nil {
		return runtime.Container{}, fmt.Errorf("inspect %q: %w", ref, err)
	}
	if len(cs) == 0 {
		return runtime.Container{}, runtime.Errorf(runtime.ErrNotFound, "inspect %q: no such container", ref)
	}
	return cs[0], nil
}

// List is one `podman ps` for the IDs of the matching containers (its
// label filters are ANDed, a key alone matches any value, as docker's)
// and one `podman container inspect` of all of them.
func (p *Podman) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	filters, err := cliargs.LabelFilters(opts.Labels)
	if err != nil {
		return nil, err
	}
	args := append([]string{"ps", "--all", "--no-trunc", "--format", "json"}, filters...)
	res, err := p.run(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	rows, err := jsonArray[struct {
		ID string `json:"Id"`
	}]("list", res.Stdout)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	cs, err := p.inspect(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	slices.SortFunc(cs, func(a, b runtime.Container) int { return cmp.Compare(a.Name, b.Name) })
	return cs, nil
}

// inspect inspects containers, as few calls as the argv limit allows.
// Containers that are gone (removed since they were listed) are left out.
func (p *Podman) inspect(ctx context.Context, refs []string) ([]runtime.Container, error) {
	var out []runtime.Container
	for chunk := range slices.Chunk(refs, inspectChunk) {
		args := append([]string{"container", "inspect", "--"}, chunk...)
		res, err := p.run(ctx, args...)
		if err != nil && !notFound(err) {
			return nil, err
		}
		// With some refs missing, podman prints the others and fails.
		raws, perr := jsonArray[inspectJSON]("inspect", res.Stdout)
		if perr != nil {
			return nil, perr
		}
		for _, raw := range raws {
			out = append(out, raw.container())
		}
	}
	return out, nil
}

// inspectJSON is the part of `podman container inspect` that the runtime
// reads. It looks like docker's and is not: capabilities are the
// effective set, ulimits are RLIMIT_ names, tmpfs options carry podman's
// defaults, mounts are at the top, networks are only in NetworkSettings.
type inspectJSON struct {
	ID              string `json:"Id"`
	Created         time.Time
	Name            string
	Image           string // the image ID
	ImageName       string // the resolved reference
	RestartCount    int
	BoundingCaps    []string
	AppArmorProfile string
	State           struct {
		Status     string
		ExitCode   int
		OOMKilled  bool
		StartedAt  time.Time
		FinishedAt time.Time
		Health     *struct{ Status string }
	}
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
		Healthcheck *healthJSON
		StopTimeout *uint
	}
	HostConfig struct {
		NanoCpus   int64
		CPUShares  int64 `json:"CpuShares"`
		Memory     int64
		MemorySwap int64
		PidsLimit  int64
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
		PortBindings map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string
		}
		Init bool
	}
}

// podmanStates maps podman's states onto the runtime's: the ones docker
// has not are the nearest docker state.
var podmanStates = map[string]runtime.State{
	"configured":  runtime.StateCreated,
	"initialized": runtime.StateCreated,
	"created":     runtime.StateCreated,
	"running":     runtime.StateRunning,
	"stopping":    runtime.StateRunning, // still up, being stopped
	"paused":      runtime.StatePaused,
	"stopped":     runtime.StateExited,
	"exited":      runtime.StateExited,
	"removing":    runtime.StateRemoving,
}

// container is the runtime's view of an inspected container.
func (j *inspectJSON) container() runtime.Container {
	c := runtime.Container{
		ID:           j.ID,
		Name:         j.Name,
		Image:        j.image(),
		ImageID:      j.Image,
		State:        podmanStates[j.State.Status],
		ExitCode:     j.State.ExitCode,
		OOMKilled:    j.State.OOMKilled,
		RestartCount: j.RestartCount,
		CreatedAt:    zeroTime(j.Created),
		StartedAt:    zeroTime(j.State.StartedAt),
		FinishedAt:   zeroTime(j.State.FinishedAt),
	}
	if c.State == "" {
		c.State = runtime.State(j.State.Status)
	}
	if j.State.Health != nil {
		c.Health = j.State.Health.Status
	}
	c.Spec = j.spec()
	return c
}

// image is the reference the container was created from: Create's
// annotation, else podman's resolved name.
func (j *inspectJSON) image() string {
	if ref := j.Config.Annotations[annImage]; ref != "" {
		return ref
	}
	return cmp.Or(j.Config.Image, j.ImageName)
}

// podmanTmpfsDefaults are the tmpfs options podman adds to every tmpfs:
// they read back as absent.
var podmanTmpfsDefaults = map[string]bool{"rw": true, "rprivate": true, "nosuid": true, "nodev": true, "tmpcopyup": true}

// spec reads the container's configuration back in the terms of
// ContainerSpec. Sizes are byte counts; capabilities lose the "CAP_"
// prefix, and a spec that dropped ALL reads back as ALL plus the
// capabilities the container has (otherwise as podman reports them: its
// delta against docker's default set, so AUDIT_WRITE and MKNOD, which
// podman's own default set lacks, always read as dropped); the ulimits Create added and podman's
// default tmpfs options read back as absent; the default network reads
// as "".
func (j *inspectJSON) spec() runtime.ContainerSpec {
	h := j.HostConfig
	ann := j.Config.Annotations
	s := runtime.ContainerSpec{
		Name:   j.Name,
		Image:  j.image(),
		Cmd:    nilIfEmpty(j.Config.Cmd),
		Labels: j.Config.Labels,
		User:   j.Config.User,
		Init:   h.Init,
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
			PidsLimit: h.PidsLimit,
		},
		Network:     j.network(),
		Healthcheck: healthFromConfig(j.Config.Healthcheck),
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	implicit := strings.Fields(ann[annImplicitUlimits])
	for _, u := range h.Ulimits {
		name := strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))
		if !slices.Contains(implicit, name) {
			s.Resources.Ulimits = append(s.Resources.Ulimits, runtime.Ulimit{Name: name, Soft: u.Soft, Hard: u.Hard})
		}
	}

	sec := &s.Security
	sec.ReadOnlyRoot = h.ReadonlyRootfs
	for _, path := range slices.Sorted(maps.Keys(h.Tmpfs)) {
		var opts []string
		for o := range strings.SplitSeq(h.Tmpfs[path], ",") {
			if o != "" && !podmanTmpfsDefaults[o] {
				opts = append(opts, o)
			}
		}
		sec.Tmpfs = append(sec.Tmpfs, runtime.Tmpfs{Path: path, Options: strings.Join(opts, ",")})
	}
	if ann[annCapDropAll] == "true" {
		sec.CapDrop = []string{"ALL"}
		sec.CapAdd = capNames(j.BoundingCaps)
	} else {
		sec.CapDrop = capNames(h.CapDrop)
		sec.CapAdd = capNames(h.CapAdd)
	}
	for _, opt := range h.SecurityOpt {
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
	if ap := j.AppArmorProfile; sec.ApparmorProfile == "" && ap != "" && ap != "unconfined" && !strings.HasPrefix(ap, "containers-default") {
		sec.ApparmorProfile = ap
	}

	if rp := h.RestartPolicy; rp.Name != "" && rp.Name != "no" {
		s.Restart = runtime.RestartPolicy{Name: rp.Name, MaxRetries: rp.MaximumRetryCount}
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
	for _, m := range j.Mounts {
		if m.Type == "bind" {
			s.Mounts = append(s.Mounts, runtime.Mount{Source: m.Source, Target: m.Destination, ReadOnly: !m.RW})
		}
	}
	if j.Config.StopTimeout != nil {
		s.StopTimeout = time.Duration(*j.Config.StopTimeout) * time.Second
	}
	return s
}

// network is the container's network: podman says "bridge" for any
// bridge network and names it only in NetworkSettings.
func (j *inspectJSON) network() string {
	mode := j.HostConfig.NetworkMode
	if mode != "bridge" && mode != "" {
		return mode // host, none, container:..., slirp4netns
	}
	names := slices.Sorted(maps.Keys(j.NetworkSettings.Networks))
	switch {
	case len(names) == 1 && names[0] == defaultNetwork:
		return ""
	default:
		return strings.Join(names, ",")
	}
}

func byteCount(n int64) string {
	if n <= 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func capNames(caps []string) []string {
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

// zeroTime maps podman's "0001-01-01T00:00:00Z" to the zero time.Time.
func zeroTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t
}
