package agent

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Limits on what a caller may send.
const (
	maxEnv      = 256
	maxEnvBytes = 256 << 10
	maxLabels   = 32
)

var labelKeyRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,63}$`)

// effectiveSpec is everything an instance's container is made from, after
// defaults and ceilings: the input of the config hash. Field order and JSON
// names are part of hash version 1 (see hash.go); change them only with a
// new hash version.
type effectiveSpec struct {
	Image          string            `json:"image"`
	Env            map[string]string `json:"env"`
	Files          map[string]string `json:"files"`
	Labels         map[string]string `json:"labels"`
	CPUs           float64           `json:"cpus"`
	MemoryBytes    int64             `json:"memoryBytes"`
	Pids           int64             `json:"pids"`
	CPUShares      int64             `json:"cpuShares"`
	Ulimits        []string          `json:"ulimits"`
	User           string            `json:"user"`
	Init           bool              `json:"init"`
	Restart        string            `json:"restart"`
	Network        string            `json:"network"`
	ContainerPort  int               `json:"containerPort"`
	DataMountPath  string            `json:"dataMountPath"`
	ReadOnlyRoot   bool              `json:"readOnlyRoot"`
	Tmpfs          []string          `json:"tmpfs"`
	CapDrop        []string          `json:"capDrop"`
	NoNewPrivs     bool              `json:"noNewPrivileges"`
	Seccomp        string            `json:"seccomp"`
	Apparmor       string            `json:"apparmor"`
	HealthCmd      []string          `json:"healthCmd"`
	HealthInterval float64           `json:"healthInterval"`
	// Mounts are the configured mounts; nil for the default (the whole
	// data dir at DataMountPath), so that the hashes of instances made
	// before mounts existed are unchanged.
	Mounts []mount `json:"mounts,omitempty"`
	// OCIRuntime is the engine's OCI runtime ("runsc"); omitted when
	// empty (the engine's default), so that the hashes of instances made
	// before it existed are unchanged.
	OCIRuntime string `json:"ociRuntime,omitempty"`
	// SeedFiles are written only where absent: not part of the hash.
	SeedFiles map[string]string `json:"-"`
	// ImageID is what Image resolves to in the engine, set by the agent
	// before hashing; hash version 2 encodes it, version 1 does not.
	ImageID string `json:"-"`
}

// resolve validates a caller's spec against the config and returns the
// effective spec: defaults filled in, limits no higher than the configured
// ceilings, image allowed. Every error is of class ErrInvalidArgument,
// but an image outside allowedImages, which is ErrForbidden.
func (c *Config) resolve(s InstanceSpec) (effectiveSpec, error) {
	e, err := c.Instance.defaultSpec()
	if err != nil {
		return effectiveSpec{}, err
	}
	if err := c.chooseImage(&e, s.Image); err != nil {
		return effectiveSpec{}, err
	}
	if err := addEnv(&e, s.Env); err != nil {
		return effectiveSpec{}, err
	}
	if err := addFiles(&e, s.Files, s.SeedFiles); err != nil {
		return effectiveSpec{}, err
	}
	if err := c.Instance.addLabels(&e, s.Labels); err != nil {
		return effectiveSpec{}, err
	}
	if err := c.Instance.Resources.lowerLimits(&e, s.Resources); err != nil {
		return effectiveSpec{}, err
	}
	return e, nil
}

// defaultSpec is the effective spec of an empty InstanceSpec: the
// configured defaults, which are also the ceilings.
func (c *InstanceConfig) defaultSpec() (effectiveSpec, error) {
	mem, err := runtime.ParseBytes(c.Resources.Memory)
	if err != nil {
		return effectiveSpec{}, err
	}
	mounts, err := c.mounts()
	if err != nil {
		return effectiveSpec{}, err
	}
	return effectiveSpec{
		Mounts:         mounts,
		OCIRuntime:     c.OCIRuntime,
		SeedFiles:      map[string]string{},
		Image:          c.Image,
		Env:            map[string]string{},
		Files:          map[string]string{},
		Labels:         map[string]string{},
		CPUs:           c.Resources.CPUs,
		MemoryBytes:    mem,
		Pids:           c.Resources.Pids,
		CPUShares:      c.Resources.CPUShares,
		Ulimits:        append([]string{}, c.Resources.Ulimits...),
		User:           c.User,
		Init:           c.Init,
		Restart:        c.Restart,
		Network:        c.Network,
		ContainerPort:  c.ContainerPort,
		DataMountPath:  c.DataMountPath,
		ReadOnlyRoot:   c.Security.ReadOnlyRoot,
		Tmpfs:          append([]string{}, c.Security.Tmpfs...),
		CapDrop:        append([]string{}, c.Security.CapDrop...),
		NoNewPrivs:     c.Security.NoNewPrivileges,
		Seccomp:        c.Security.SeccompProfile,
		Apparmor:       c.Security.ApparmorProfile,
		HealthCmd:      append([]string{}, c.HealthCmd...),
		HealthInterval: c.HealthIntervalSeconds,
	}, nil
}

// chooseImage takes the caller's image, if any, when the config allows it.
func (c *Config) chooseImage(e *effectiveSpec, image string) error {
	if image == "" {
		return nil
	}
	if err := c.checkImage(image); err != nil {
		return err
	}
	e.Image = image
	return nil
}

// checkImage checks that image is a valid reference (ErrInvalidArgument)
// the config allows (ErrForbidden).
func (c *Config) checkImage(image string) error {
	if err := runtime.ValidateImage(image); err != nil {
		return err
	}
	if !c.imageAllowed(image) {
		return forbidden("image %q is not allowed (allowed: %s)", image, strings.Join(c.Instance.AllowedImages, ", "))
	}
	return nil
}

// addEnv takes the caller's environment: valid keys and values, within
// the count and size limits.
func addEnv(e *effectiveSpec, env map[string]string) error {
	if len(env) > maxEnv {
		return invalid("too many environment variables: %d, at most %d", len(env), maxEnv)
	}
	size := 0
	for k, v := range env {
		if err := runtime.ValidateEnvKey(k); err != nil {
			return err
		}
		if err := runtime.ValidateEnvValue(k, v); err != nil {
			return err
		}
		size += len(k) + len(v)
		e.Env[k] = v
	}
	if size > maxEnvBytes {
		return invalid("environment too large: %d bytes, at most %d", size, maxEnvBytes)
	}
	return nil
}

// addLabels takes the caller's labels, none of them under the agent's own
// prefix.
func (c *InstanceConfig) addLabels(e *effectiveSpec, labels map[string]string) error {
	if len(labels) > maxLabels {
		return invalid("too many labels: %d, at most %d", len(labels), maxLabels)
	}
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			return invalid("invalid label key %q", k)
		}
		if k == c.LabelPrefix || strings.HasPrefix(k, c.LabelPrefix+".") {
			return invalid("label key %q: the prefix %q is the agent's own", k, c.LabelPrefix)
		}
		if len(v) > 256 || strings.ContainsAny(v, "\x00\n\r") {
			return invalid("label %q: value too long or holds a NUL or line break", k)
		}
		e.Labels[k] = v
	}
	return nil
}

// lowerLimits takes the caller's resources, which may lower the defaults
// but never exceed them: the defaults are the ceilings.
func (r *ResourcesConfig) lowerLimits(e *effectiveSpec, want *Resources) error {
	if want == nil {
		return nil
	}
	if want.CPUs < 0 || want.Pids < 0 {
		return invalid("resources must not be negative")
	}
	if want.CPUs > 0 {
		if want.CPUs > r.CPUs {
			return invalid("cpus %v exceeds the ceiling %v", want.CPUs, r.CPUs)
		}
		if want.CPUs < 0.01 {
			return invalid("cpus %v: the minimum is 0.01", want.CPUs)
		}
		e.CPUs = want.CPUs
	}
	if want.Memory != "" {
		if err := r.lowerMemory(e, want.Memory); err != nil {
			return err
		}
	}
	if want.Pids > 0 {
		if want.Pids > r.Pids {
			return invalid("pids %d exceeds the ceiling %d", want.Pids, r.Pids)
		}
		e.Pids = want.Pids
	}
	return nil
}

func (r *ResourcesConfig) lowerMemory(e *effectiveSpec, memory string) error {
	n, err := runtime.ParseBytes(memory)
	if err != nil {
		return err
	}
	limit, err := runtime.ParseBytes(r.Memory)
	if err != nil {
		return err
	}
	if n > limit {
		return invalid("memory %q exceeds the ceiling %q", memory, r.Memory)
	}
	if n < 6<<20 {
		return invalid("memory %q: the minimum is 6m", memory)
	}
	e.MemoryBytes = n
	return nil
}

func (c *Config) imageAllowed(ref string) bool {
	if ref == c.Instance.Image {
		return true
	}
	for _, p := range c.Instance.AllowedImages {
		if ok, _ := path.Match(p, ref); ok {
			return true
		}
	}
	return false
}

// containerName is the engine name of a user's container.
func containerName(userID string) string { return "zaki-user-" + userID }

// labels returns the agent's label keys under the configured prefix.
type labelKeys struct {
	Instance, UserID, CreatedAtMs, ConfigHash, Port string
}

func newLabelKeys(prefix string) labelKeys {
	return labelKeys{
		Instance:    prefix + ".instance",
		UserID:      prefix + ".userId",
		CreatedAtMs: prefix + ".createdAtMs",
		ConfigHash:  prefix + ".configHash",
		Port:        prefix + ".port",
	}
}

// containerSpec turns an effective spec into the runtime's terms, placed
// on node ("" for a local runtime).
func (a *Agent) containerSpec(userID string, e effectiveSpec, hash string, port int, createdAtMs int64, dataDir, node string) runtime.ContainerSpec {
	spec := a.conf().containerSpec(a.labels, a.facts.Load(), userID, e, hash, port, createdAtMs, dataDir)
	spec.Placement.Node = node
	return spec
}

// containerSpec turns an effective spec into the runtime's terms, for a
// runtime of which rf tells (nil: a local one). What the runtime cannot
// enforce of what the agent sets on its own, not from a config key, is
// left out: the swap limit (memory swap = memory, so no swap: with such
// a runtime swap is whatever the nodes have, see docs/swarm-nodes.md) and
// the host address of the port (every address of the node, so
// instance.bindAddress is not used).
func (c *Config) containerSpec(lk labelKeys, rf *runtimeFacts, userID string, e effectiveSpec, hash string, port int, createdAtMs int64, dataDir string) runtime.ContainerSpec {
	labels := make(map[string]string, len(e.Labels)+5)
	for k, v := range e.Labels {
		labels[k] = v
	}
	labels[lk.Instance] = "1"
	labels[lk.UserID] = userID
	labels[lk.CreatedAtMs] = fmt.Sprint(createdAtMs)
	labels[lk.ConfigHash] = hash
	labels[lk.Port] = fmt.Sprint(port)

	env := make(map[string]string, len(e.Env)+1)
	for k, v := range e.Env {
		env[k] = v
	}
	if _, ok := env["ZAKI_USER_ID"]; !ok {
		env["ZAKI_USER_ID"] = userID
	}

	restart, _ := parseRestart(e.Restart)
	spec := runtime.ContainerSpec{
		Name:   containerName(userID),
		Image:  e.Image,
		Env:    env,
		Labels: labels,
		User:   e.User,
		Init:   e.Init,
		Resources: runtime.Resources{
			CPUs:       e.CPUs,
			CPUShares:  e.CPUShares,
			Memory:     fmt.Sprint(e.MemoryBytes),
			MemorySwap: fmt.Sprint(e.MemoryBytes), // swap off (but see above)
			PidsLimit:  e.Pids,
		},
		Security: runtime.Security{
			ReadOnlyRoot:    e.ReadOnlyRoot,
			CapDrop:         e.CapDrop,
			NoNewPrivileges: e.NoNewPrivs,
			SeccompProfile:  e.Seccomp,
			ApparmorProfile: e.Apparmor,
		},
		Restart: restart,
		Network: e.Network,
		Ports: []runtime.PortBinding{{
			HostIP: c.Instance.BindAddress, HostPort: port, ContainerPort: e.ContainerPort, Protocol: "tcp",
		}},
		StopTimeout: seconds(c.Instance.StopTimeoutSeconds),
		// Not in the config hash: a changed bound applies as containers
		// are made anew (create, recreate, the age rule's renewal).
		Log:        c.Instance.logConfig(),
		OCIRuntime: e.OCIRuntime,
	}
	if rf.unenforced(runtime.FieldMemorySwap) {
		spec.Resources.MemorySwap = ""
	}
	if rf.unenforced(runtime.FieldHostIP) {
		spec.Ports[0].HostIP = ""
	}
	for _, m := range e.mountList() {
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: filepath.Join(dataDir, m.Dir), Target: m.Target})
	}
	for _, u := range e.Ulimits {
		ul, _ := runtime.ParseUlimit(u)
		spec.Resources.Ulimits = append(spec.Resources.Ulimits, ul)
	}
	for _, t := range e.Tmpfs {
		p, opts, _ := strings.Cut(t, ":")
		spec.Security.Tmpfs = append(spec.Security.Tmpfs, runtime.Tmpfs{Path: p, Options: opts})
	}
	if len(e.HealthCmd) > 0 {
		iv := seconds(e.HealthInterval)
		spec.Healthcheck = &runtime.Healthcheck{
			Test:        e.HealthCmd,
			Interval:    iv,
			Timeout:     min(iv, seconds(5)),
			StartPeriod: seconds(c.Instance.ReadinessTimeoutSeconds),
			Retries:     3,
		}
	}
	return spec
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
