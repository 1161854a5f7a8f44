package agent

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Config holds the settings the agent itself reads: the instances'
// defaults and ceilings, pruning, the hot window, and the bounds on its
// calls to the runtime. The daemon (package agent/daemon) embeds it in the
// whole config file; the toml tags are the file's keys, the help tags the
// flags' help.
type Config struct {
	// MaxEngineOps bounds the engine operations (create, start, pull, ...) in flight at once.
	MaxEngineOps int `toml:"maxEngineOps" help:"engine operations in flight at once, across users"`
	// CallTimeoutSeconds bounds one runtime call (image pulls have their own bounds).
	CallTimeoutSeconds float64 `toml:"callTimeoutSeconds" help:"bound on one runtime call, in seconds"`
	// MinFreeSpace is the free space the state dir's file system keeps:
	// under it, new instances are refused (see disk.go).
	MinFreeSpace string `toml:"minFreeSpace" help:"new instances are refused while the state dir's file system has less free space than this, e.g. 1g (\"\" or 0 = off)"`

	Instance InstanceConfig `toml:"instance"`
	Prune    PruneConfig    `toml:"prune"`
	Hot      HotConfig      `toml:"hot"`
}

// InstanceConfig holds the defaults of every instance.
type InstanceConfig struct {
	Image                   string   `toml:"image" help:"default image of an instance"`
	AllowedImages           []string `toml:"allowedImages" help:"patterns (path.Match) a caller's image must match"`
	ContainerPort           int      `toml:"containerPort" help:"the gateway's port inside the container"`
	DataMountPath           string   `toml:"dataMountPath" help:"where the user's data dir is mounted in the container (when mounts is empty)"`
	Mounts                  []string `toml:"mounts" help:"sub-dirs of the user's data dir, each mounted at a container path, subdir:/container/path (empty = the whole dir at dataMountPath)"`
	BindAddress             string   `toml:"bindAddress" help:"host address the port is published on"`
	PortRange               string   `toml:"portRange" help:"host ports handed to users, one per user for life"`
	ReservedPorts           []string `toml:"reservedPorts" help:"host ports never handed out (other services use them), each a port or lo-hi"`
	Network                 string   `toml:"network" help:"bridge network of the instances (inter-container traffic off)"`
	User                    string   `toml:"user" help:"a fixed uid:gid every container runs as, owning every data dir (\"\" = a uid per tenant from uidRange)"`
	UIDRange                string   `toml:"uidRange" help:"uids handed to tenants, one per user for life (gid = uid), skipping those with a host account"`
	Init                    bool     `toml:"init" help:"run an init process as PID 1 (--init)"`
	OCIRuntime              string   `toml:"ociRuntime" help:"the engine's OCI runtime the instances run under, e.g. runsc (gVisor; registered with the engine first) (\"\" = the engine's default)"`
	Restart                 string   `toml:"restart" help:"engine restart policy, e.g. on-failure:5"`
	ReadinessTimeoutSeconds float64  `toml:"readinessTimeoutSeconds" help:"how long ensure waits for the port to accept connections"`
	StopTimeoutSeconds      float64  `toml:"stopTimeoutSeconds" help:"grace period on stop before the engine kills"`
	HealthCmd               []string `toml:"healthCmd" help:"engine health check, exec form, e.g. [\"/gateway-stub\", \"-probe\"] (empty = none)"`
	HealthIntervalSeconds   float64  `toml:"healthIntervalSeconds" help:"interval of the health check"`
	PullTimeoutSeconds      float64  `toml:"pullTimeoutSeconds" help:"bound on one image pull"`
	PullStallSeconds        float64  `toml:"pullStallSeconds" help:"an image pull without progress for this long is abandoned"`
	LabelPrefix             string   `toml:"labelPrefix" help:"prefix of the labels the agent puts on containers"`
	LogMaxSize              string   `toml:"logMaxSize" help:"size at which a container's log file is rotated, e.g. 10m (\"\" = the engine's default: unbounded for docker)"`
	LogMaxFiles             int      `toml:"logMaxFiles" help:"log files kept per container, the live one included (docker; podman keeps one, emptied at logMaxSize)"`
	DataQuota               string   `toml:"dataQuota" help:"most disk space one user's data dir may use, e.g. 10g; over it the instance is stopped, data kept (\"\" or 0 = off)"`
	// EnforcedByNodes lists the spec fields (runtime.Field* keys, spelt
	// as the keys under [instance]) that node provisioning enforces, for
	// a cluster runtime that cannot (Info.Unenforced): the operator's
	// word, without which a config setting one is refused.
	EnforcedByNodes []string `toml:"enforcedByNodes" help:"with a cluster runtime, the fields node provisioning enforces that the runtime cannot, e.g. [\"security.noNewPrivileges\"]"`

	Resources ResourcesConfig `toml:"resources"`
	Security  SecurityConfig  `toml:"security"`
}

// ResourcesConfig holds the default limits, which are also the ceilings a
// caller may not exceed.
type ResourcesConfig struct {
	CPUs      float64  `toml:"cpus" help:"CPUs (--cpus), default and ceiling"`
	Memory    string   `toml:"memory" help:"memory (--memory, swap off), default and ceiling"`
	Pids      int64    `toml:"pids" help:"process limit (--pids-limit), default and ceiling"`
	CPUShares int64    `toml:"cpuShares" help:"relative CPU weight (--cpu-shares)"`
	Ulimits   []string `toml:"ulimits" help:"ulimits, name=soft:hard (not nproc: it counts the uid's tasks host-wide, across tenants)"`
}

// SecurityConfig holds the hardening of every instance.
type SecurityConfig struct {
	ReadOnlyRoot    bool     `toml:"readOnlyRoot" help:"read-only root filesystem"`
	Tmpfs           []string `toml:"tmpfs" help:"tmpfs mounts, path[:options]"`
	CapDrop         []string `toml:"capDrop" help:"capabilities dropped"`
	NoNewPrivileges bool     `toml:"noNewPrivileges" help:"no-new-privileges"`
	SeccompProfile  string   `toml:"seccompProfile" help:"seccomp profile (\"\" = the engine's default; \"unconfined\" is refused)"`
	ApparmorProfile string   `toml:"apparmorProfile" help:"AppArmor profile (\"\" = the engine's default)"`
}

// PruneConfig holds the pruning thresholds.
type PruneConfig struct {
	IntervalMinutes float64 `toml:"intervalMinutes" help:"how often pruning runs"`
	IdleStopMinutes float64 `toml:"idleStopMinutes" help:"stop instances idle this long (0 = off)"`
	// IdlePauseMinutes freezes (the engine's pause) running instances idle
	// this long: memory kept, CPU freed, thawed by their next ensure or
	// touch. Below IdleStopMinutes when both are on.
	IdlePauseMinutes float64 `toml:"idlePauseMinutes" help:"pause (freeze) instances idle this long (0 = off); below idleStopMinutes when both are on"`
	IdleHours        float64 `toml:"idleHours" help:"remove instances idle this long (0 = off); data is kept"`
	MaxAgeDays       float64 `toml:"maxAgeDays" help:"remove instances older than this (0 = off); data is kept"`
}

// HotConfig holds the hot window.
type HotConfig struct {
	WindowMinutes float64 `toml:"windowMinutes" help:"a running instance used this recently is hot: a config change waits"`
}

// DefaultConfig returns the built-in defaults of the agent's keys; the
// packaged packaging/config.toml lists each with its default.
func DefaultConfig() Config {
	return Config{
		MaxEngineOps:       8,
		CallTimeoutSeconds: 60,
		MinFreeSpace:       "1g",
		Instance: InstanceConfig{
			Image:                   "alpine/openclaw:latest",
			AllowedImages:           []string{"alpine/openclaw:*"},
			ContainerPort:           18789,
			DataMountPath:           "/home/node/.openclaw",
			BindAddress:             "127.0.0.1",
			PortRange:               "18790-28789",
			ReservedPorts:           []string{},
			Mounts:                  []string{},
			Network:                 "zaki",
			User:                    "",
			UIDRange:                "200000-299999",
			Init:                    true,
			Restart:                 "on-failure:5",
			ReadinessTimeoutSeconds: 60,
			StopTimeoutSeconds:      10,
			HealthCmd:               []string{},
			HealthIntervalSeconds:   30,
			PullTimeoutSeconds:      600,
			PullStallSeconds:        120,
			LabelPrefix:             "zaki",
			LogMaxSize:              "10m",
			LogMaxFiles:             3,
			DataQuota:               "10g",
			EnforcedByNodes:         []string{},
			Resources: ResourcesConfig{
				CPUs:      2,
				Memory:    "2g",
				Pids:      100,
				CPUShares: 512,
				// No nproc: RLIMIT_NPROC counts every task of the uid on the
				// whole host, and with a fixed instance.user all instances
				// share one uid, so it is a limit shared by all tenants, not one per instance (at
				// nproc=512 one tenant's fork bomb, or about 50 instances,
				// stopped every other container from starting). The per
				// instance bound is pids (the PIDs cgroup); faults/ checks it.
				Ulimits: []string{"nofile=1024:2048"},
			},
			Security: SecurityConfig{
				ReadOnlyRoot:    true,
				Tmpfs:           []string{"/tmp:size=64m"},
				CapDrop:         []string{"ALL"},
				NoNewPrivileges: true,
			},
		},
		Prune: PruneConfig{IntervalMinutes: 5, IdleStopMinutes: 0, IdleHours: 24, MaxAgeDays: 7},
		Hot:   HotConfig{WindowMinutes: 5},
	}
}

// Validate checks the configuration as a whole; every problem is named.
func (c *Config) Validate() error {
	var p problems
	c.checkEngineBounds(&p)
	c.checkDisk(&p)
	c.Instance.checkPlacement(&p)
	c.Instance.checkTimings(&p)
	c.Instance.checkLog(&p)
	c.Instance.Resources.check(&p)
	c.Instance.Security.check(&p)
	c.checkPruneAndHot(&p)
	if len(p) == 0 {
		c.checkDefaultsResolve(&p)
	}
	return errors.Join(p...)
}

// problems collects what Validate finds, so that every problem is named at
// once rather than one per start.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

func (c *Config) checkEngineBounds(p *problems) {
	if c.MaxEngineOps < 1 {
		p.add("maxEngineOps %d: want at least 1", c.MaxEngineOps)
	}
	p.span("callTimeoutSeconds", c.CallTimeoutSeconds, time.Second, spanPositive)
}

// maxSpan bounds every duration a config key or an API call gives: ten
// years, past any sensible setting and far below the 292 years a
// time.Duration holds, so that no conversion of one can overflow (a
// maxAgeDays of 200000 once wrapped round to a negative age limit).
const maxSpan = 10 * 365 * 24 * time.Hour

// minInterval is the shortest period of a loop a config key sets.
const minInterval = time.Second

type spanKind int

const (
	spanOff      spanKind = iota // >= 0, 0 meaning off
	spanPositive                 // > 0
	spanInterval                 // >= minInterval
)

// checkSpan tells whether v, a count of unit, is a duration the agent
// takes: a finite number within [0, maxSpan], positive or at least
// minInterval as kind asks.
func checkSpan(v float64, unit time.Duration, kind spanKind) error {
	most := float64(maxSpan) / float64(unit)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return errors.New("must be a finite number")
	case v < 0:
		return errors.New("must not be negative")
	case kind == spanPositive && v == 0:
		return errors.New("must be positive")
	case kind == spanInterval && v*float64(unit) < float64(minInterval):
		return fmt.Errorf("must be at least %g (%v)", float64(minInterval)/float64(unit), minInterval)
	case v > most:
		return fmt.Errorf("must be at most %g (ten years)", most)
	}
	return nil
}

func (p *problems) span(key string, v float64, unit time.Duration, kind spanKind) {
	if err := checkSpan(v, unit, kind); err != nil {
		p.add("%s %g: %v", key, v, err)
	}
}

// checkPlacement checks what an instance is made of and where it lives:
// image, ports, data mount, network, user, labels, restart policy.
func (c *InstanceConfig) checkPlacement(p *problems) {
	if err := runtime.ValidateImage(c.Image); err != nil {
		p.add("instance.image: %v", err)
	}
	for _, pat := range c.AllowedImages {
		if _, err := path.Match(pat, ""); err != nil {
			p.add("instance.allowedImages: bad pattern %q", pat)
		}
	}
	if c.ContainerPort < 1 || c.ContainerPort > 65535 {
		p.add("instance.containerPort %d out of range", c.ContainerPort)
	}
	if !path.IsAbs(c.DataMountPath) {
		p.add("instance.dataMountPath %q: want an absolute path", c.DataMountPath)
	}
	if _, _, err := c.Ports(); err != nil {
		p.add("instance.portRange: %v", err)
	}
	if _, err := parsePortList(c.ReservedPorts); err != nil {
		p.add("instance.reservedPorts: %v", err)
	}
	if _, err := c.mounts(); err != nil {
		p.add("instance.mounts: %v", err)
	}
	if err := runtime.ValidateName(c.Network); err != nil {
		p.add("instance.network: %v", err)
	}
	if c.User != "" {
		if _, _, err := c.UIDGID(); err != nil {
			p.add("instance.user: %v", err)
		}
	}
	if _, _, err := c.UIDs(); err != nil {
		p.add("instance.uidRange: %v", err)
	}
	if _, err := parseRestart(c.Restart); err != nil {
		p.add("instance.restart: %v", err)
	}
	if err := runtime.ValidateOCIRuntime(c.OCIRuntime); err != nil {
		p.add("instance.ociRuntime: %v", err)
	}
	if c.LabelPrefix == "" || strings.ContainsAny(c.LabelPrefix, "= \n") {
		p.add("instance.labelPrefix %q is not a label prefix", c.LabelPrefix)
	}
	for _, f := range c.EnforcedByNodes {
		if !slices.Contains(enforceableFields, f) {
			p.add("instance.enforcedByNodes: unknown field %q (known: %s)", f, strings.Join(enforceableFields, ", "))
		}
	}
}

// enforceableFields are the keys instance.enforcedByNodes may list: the
// fields a runtime may list in Info.Unenforced (placement is not one: a
// runtime places or does not).
var enforceableFields = []string{
	runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldCPUShares, runtime.FieldHostIP,
}

// checkRuntime checks the configuration against its runtime (rf, learnt
// at start: nil or empty for a local runtime, which passes whatever it
// is). With a cluster runtime:
//
//   - a field of the instances' spec that the runtime cannot enforce
//     (Info.Unenforced) is refused unless instance.enforcedByNodes lists
//     it; the fields the agent sets on its own (the swap limit, the
//     port's host address) are left out of the spec instead (see
//     containerSpec), and the placement and address-less port that a
//     cluster needs are checked with the runtime's own rules (ValidateOn);
//   - instance.dataQuota and minFreeSpace are off: the agent measures
//     disks on this host only, and the users' data lives on the nodes. At
//     their built-in defaults they count as off; any other value but off
//     is refused;
//   - prune.idlePauseMinutes is refused: a runtime that places instances
//     on nodes has no pause (the swarm plugin answers ErrConflict to
//     Pause), so an idle instance would never be frozen, and each prune
//     would try again in vain.
func (c *Config) checkRuntime(rf *runtimeFacts) error {
	if rf == nil || !rf.cluster {
		return nil
	}
	var p problems
	def := DefaultConfig()
	if n, _ := optionalSize(c.Instance.DataQuota); n > 0 && c.Instance.DataQuota != def.Instance.DataQuota {
		p.add("instance.dataQuota %q: not with a runtime that places instances on nodes (the agent measures data dirs on this host only, and the users' data lives on the nodes): set it to \"\" or 0", c.Instance.DataQuota)
	}
	if n, _ := optionalSize(c.MinFreeSpace); n > 0 && c.MinFreeSpace != def.MinFreeSpace {
		p.add("minFreeSpace %q: not with a runtime that places instances on nodes (the agent measures this host's disk only, and the users' data lives on the nodes): set it to \"\" or 0", c.MinFreeSpace)
	}
	if c.Prune.IdlePauseMinutes > 0 {
		p.add("prune.idlePauseMinutes %g: not with a runtime that places instances on nodes (it has no pause: a swarm service cannot be frozen): set it to 0, and stop idle instances with prune.idleStopMinutes", c.Prune.IdlePauseMinutes)
	}
	e, err := c.resolve(InstanceSpec{})
	if err != nil {
		return err // refused by Validate already
	}
	lo, _, _ := c.Instance.Ports()
	spec := c.containerSpec(newLabelKeys(c.Instance.LabelPrefix), rf, "check", e, "v2-check", lo, 1, "/check")
	spec.Placement.Node = "check"
	if err := spec.ValidateOn(rf.info); err != nil {
		p.add("instance defaults: %v", err)
	}
	for _, f := range runtime.Unenforced(spec, rf.info, c.Instance.EnforcedByNodes) {
		p.add("instance.%s is set, but the runtime %s cannot enforce it: unset it, or list %q in instance.enforcedByNodes when node provisioning enforces it", f, rf.info.Runtime, f)
	}
	return errors.Join(p...)
}

// checkLog checks the log bound: a size and a count of files, or no size
// at all (the engine's default).
func (c *InstanceConfig) checkLog(p *problems) {
	if c.LogMaxSize != "" {
		if n, err := runtime.ParseBytes(c.LogMaxSize); err != nil || n <= 0 {
			p.add("instance.logMaxSize %q: want a size like 10m, or \"\" for the engine's default", c.LogMaxSize)
		}
	}
	if c.LogMaxFiles < 1 || c.LogMaxFiles > 100 {
		p.add("instance.logMaxFiles %d: want 1 to 100", c.LogMaxFiles)
	}
}

// logConfig is the log bound of new containers.
func (c *InstanceConfig) logConfig() runtime.LogConfig {
	if c.LogMaxSize == "" {
		return runtime.LogConfig{}
	}
	return runtime.LogConfig{MaxSize: c.LogMaxSize, MaxFiles: c.LogMaxFiles}
}

func (c *InstanceConfig) checkTimings(p *problems) {
	p.span("instance.readinessTimeoutSeconds", c.ReadinessTimeoutSeconds, time.Second, spanPositive)
	p.span("instance.pullTimeoutSeconds", c.PullTimeoutSeconds, time.Second, spanPositive)
	p.span("instance.pullStallSeconds", c.PullStallSeconds, time.Second, spanPositive)
	p.span("instance.healthIntervalSeconds", c.HealthIntervalSeconds, time.Second, spanPositive)
	p.span("instance.stopTimeoutSeconds", c.StopTimeoutSeconds, time.Second, spanOff)
}

func (r *ResourcesConfig) check(p *problems) {
	if r.CPUs <= 0 {
		p.add("instance.resources.cpus must be positive")
	}
	if n, err := runtime.ParseBytes(r.Memory); err != nil || n <= 0 {
		p.add("instance.resources.memory %q: want a size like 2g", r.Memory)
	}
	if r.Pids < 1 {
		p.add("instance.resources.pids must be positive")
	}
	for _, u := range r.Ulimits {
		if _, err := runtime.ParseUlimit(u); err != nil {
			p.add("instance.resources.ulimits: %v", err)
		}
	}
}

func (s *SecurityConfig) check(p *problems) {
	if s.SeccompProfile == "unconfined" {
		p.add("instance.security.seccompProfile \"unconfined\" is refused: it turns the syscall filter off")
	}
	if s.ApparmorProfile == "unconfined" {
		p.add("instance.security.apparmorProfile \"unconfined\" is refused")
	}
	for _, t := range s.Tmpfs {
		if dir, _, _ := strings.Cut(t, ":"); !path.IsAbs(dir) {
			p.add("instance.security.tmpfs %q: want an absolute path", t)
		}
	}
}

func (c *Config) checkPruneAndHot(p *problems) {
	p.span("prune.intervalMinutes", c.Prune.IntervalMinutes, time.Minute, spanInterval)
	p.span("prune.idleStopMinutes", c.Prune.IdleStopMinutes, time.Minute, spanOff)
	p.span("prune.idlePauseMinutes", c.Prune.IdlePauseMinutes, time.Minute, spanOff)
	if c.Prune.IdlePauseMinutes > 0 && c.Instance.OCIRuntime == "runsc" {
		// Engine 20.10 cannot start again a paused gVisor container once
		// stopped or restarted ("id already in use").
		p.add("prune.idlePauseMinutes %g: not with instance.ociRuntime = \"runsc\" (a paused gVisor container cannot be stopped or restarted and started again on this engine)", c.Prune.IdlePauseMinutes)
	}
	if err := checkPauseBeforeStop(c.Prune.IdlePauseMinutes, c.Prune.IdleStopMinutes); err != nil {
		p.add("prune.idlePauseMinutes %g: %v", c.Prune.IdlePauseMinutes, err)
	}
	p.span("prune.idleHours", c.Prune.IdleHours, time.Hour, spanOff)
	p.span("prune.maxAgeDays", c.Prune.MaxAgeDays, 24*time.Hour, spanOff)
	p.span("hot.windowMinutes", c.Hot.WindowMinutes, time.Minute, spanOff)
}

// checkPauseBeforeStop tells whether the pause rule comes before the stop
// rule, when both are on: an instance is paused, then stopped.
func checkPauseBeforeStop(pause, stop float64) error {
	if pause > 0 && stop > 0 && pause >= stop {
		return fmt.Errorf("want less than idleStopMinutes (%g): an idle instance is paused first, then stopped", stop)
	}
	return nil
}

// checkDefaultsResolve builds one spec from the defaults, so that anything
// the runtime would refuse is refused at start, not at the first ensure.
func (c *Config) checkDefaultsResolve(p *problems) {
	if _, err := c.resolve(InstanceSpec{}); err != nil {
		p.add("instance defaults: %v", err)
	}
}

// Ports returns the host port range.
func (c *InstanceConfig) Ports() (lo, hi int, err error) {
	a, b, ok := strings.Cut(c.PortRange, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want lo-hi", c.PortRange)
	}
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err == nil {
		hi, err = strconv.Atoi(strings.TrimSpace(b))
	}
	if err != nil || lo < 1025 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%q: want lo-hi within 1025-65535", c.PortRange)
	}
	return lo, hi, nil
}

// maxUIDRange bounds the size of instance.uidRange: far more tenants than
// one host runs, and small enough that a mistyped range (one spanning the
// hosts' accounts and subordinate ranges) is caught.
const maxUIDRange = 1 << 24

// UIDs returns the range of the tenants' uids (instance.uidRange): within
// 1-2147483647, never 0, at most maxUIDRange uids.
func (c *InstanceConfig) UIDs() (lo, hi int, err error) {
	a, b, ok := strings.Cut(c.UIDRange, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want lo-hi, e.g. 200000-299999", c.UIDRange)
	}
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err == nil {
		hi, err = strconv.Atoi(strings.TrimSpace(b))
	}
	switch {
	case err != nil || lo > hi:
		return 0, 0, fmt.Errorf("%q: want lo-hi, e.g. 200000-299999", c.UIDRange)
	case lo < 1:
		return 0, 0, fmt.Errorf("%q: uid 0 is root: want uids from 1 up (well above the host's accounts, e.g. 200000-299999)", c.UIDRange)
	case hi > registry.MaxUID:
		return 0, 0, fmt.Errorf("%q: want uids of at most %d", c.UIDRange, registry.MaxUID)
	case hi-lo+1 > maxUIDRange:
		return 0, 0, fmt.Errorf("%q: %d uids, want at most %d", c.UIDRange, hi-lo+1, maxUIDRange)
	}
	return lo, hi, nil
}

// UIDGID returns the numeric uid and gid of the fixed container user
// (instance.user); an empty one is an error (uids per tenant apply).
func (c *InstanceConfig) UIDGID() (uid, gid int, err error) {
	u, g, ok := strings.Cut(c.User, ":")
	if !ok {
		g = u
	}
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("%q: want numeric uid:gid", c.User)
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("%q: instances never run as root", c.User)
	}
	return uid, gid, nil
}

func parseRestart(s string) (runtime.RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := runtime.RestartPolicy{Name: name}
	if hasN {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return p, fmt.Errorf("%q: want name[:retries]", s)
		}
		p.MaxRetries = v
	}
	switch name {
	case "no", "on-failure", "always", "unless-stopped":
	default:
		return p, fmt.Errorf("%q: unknown policy", s)
	}
	return p, nil
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
func minutes(f float64) time.Duration { return time.Duration(f * float64(time.Minute)) }
