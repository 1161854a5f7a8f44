package agent

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Limits on what a caller may send.
const (
	maxEnv       = 256
	maxEnvBytes  = 256 << 10
	maxFiles     = 32
	maxFileBytes = 256 << 10
	maxLabels    = 32
)

var (
	fileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	labelKeyRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,63}$`)
)

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
}

// resolve validates a caller's spec against the config and returns the
// effective spec: defaults filled in, limits no higher than the configured
// ceilings, image allowed. Every error is of class ErrInvalidArgument.
func (c *Config) resolve(s InstanceSpec) (effectiveSpec, error) {
	in := &c.Instance
	e := effectiveSpec{
		Image:          in.Image,
		Env:            map[string]string{},
		Files:          map[string]string{},
		Labels:         map[string]string{},
		CPUs:           in.Resources.CPUs,
		Pids:           in.Resources.Pids,
		CPUShares:      in.Resources.CPUShares,
		Ulimits:        append([]string{}, in.Resources.Ulimits...),
		User:           in.User,
		Init:           in.Init,
		Restart:        in.Restart,
		Network:        in.Network,
		ContainerPort:  in.ContainerPort,
		DataMountPath:  in.DataMountPath,
		ReadOnlyRoot:   in.Security.ReadOnlyRoot,
		Tmpfs:          append([]string{}, in.Security.Tmpfs...),
		CapDrop:        append([]string{}, in.Security.CapDrop...),
		NoNewPrivs:     in.Security.NoNewPrivileges,
		Seccomp:        in.Security.SeccompProfile,
		Apparmor:       in.Security.ApparmorProfile,
		HealthCmd:      append([]string{}, in.HealthCmd...),
		HealthInterval: in.HealthIntervalSeconds,
	}
	maxMem, err := runtime.ParseBytes(in.Resources.Memory)
	if err != nil {
		return effectiveSpec{}, err
	}
	e.MemoryBytes = maxMem

	if s.Image != "" {
		if err := runtime.ValidateImage(s.Image); err != nil {
			return effectiveSpec{}, err
		}
		if !c.imageAllowed(s.Image) {
			return effectiveSpec{}, invalid("image %q is not allowed (allowed: %s)", s.Image, strings.Join(in.AllowedImages, ", "))
		}
		e.Image = s.Image
	}

	if len(s.Env) > maxEnv {
		return effectiveSpec{}, invalid("too many environment variables: %d, at most %d", len(s.Env), maxEnv)
	}
	size := 0
	for k, v := range s.Env {
		if err := runtime.ValidateEnvKey(k); err != nil {
			return effectiveSpec{}, err
		}
		if err := runtime.ValidateEnvValue(k, v); err != nil {
			return effectiveSpec{}, err
		}
		size += len(k) + len(v)
		e.Env[k] = v
	}
	if size > maxEnvBytes {
		return effectiveSpec{}, invalid("environment too large: %d bytes, at most %d", size, maxEnvBytes)
	}

	if len(s.Files) > maxFiles {
		return effectiveSpec{}, invalid("too many files: %d, at most %d", len(s.Files), maxFiles)
	}
	for name, text := range s.Files {
		if err := validateFileName(name); err != nil {
			return effectiveSpec{}, err
		}
		if len(text) > maxFileBytes {
			return effectiveSpec{}, invalid("file %q too large: %d bytes, at most %d", name, len(text), maxFileBytes)
		}
		e.Files[name] = text
	}

	if len(s.Labels) > maxLabels {
		return effectiveSpec{}, invalid("too many labels: %d, at most %d", len(s.Labels), maxLabels)
	}
	for k, v := range s.Labels {
		if !labelKeyRE.MatchString(k) {
			return effectiveSpec{}, invalid("invalid label key %q", k)
		}
		if k == in.LabelPrefix || strings.HasPrefix(k, in.LabelPrefix+".") {
			return effectiveSpec{}, invalid("label key %q: the prefix %q is the agent's own", k, in.LabelPrefix)
		}
		if len(v) > 256 || strings.ContainsAny(v, "\x00\n\r") {
			return effectiveSpec{}, invalid("label %q: value too long or holds a NUL or line break", k)
		}
		e.Labels[k] = v
	}

	if r := s.Resources; r != nil {
		if r.CPUs < 0 || r.Pids < 0 {
			return effectiveSpec{}, invalid("resources must not be negative")
		}
		if r.CPUs > 0 {
			if r.CPUs > in.Resources.CPUs {
				return effectiveSpec{}, invalid("cpus %v exceeds the ceiling %v", r.CPUs, in.Resources.CPUs)
			}
			if r.CPUs < 0.01 {
				return effectiveSpec{}, invalid("cpus %v: the minimum is 0.01", r.CPUs)
			}
			e.CPUs = r.CPUs
		}
		if r.Memory != "" {
			n, err := runtime.ParseBytes(r.Memory)
			if err != nil {
				return effectiveSpec{}, err
			}
			if n > maxMem {
				return effectiveSpec{}, invalid("memory %q exceeds the ceiling %q", r.Memory, in.Resources.Memory)
			}
			if n < 6<<20 {
				return effectiveSpec{}, invalid("memory %q: the minimum is 6m", r.Memory)
			}
			e.MemoryBytes = n
		}
		if r.Pids > 0 {
			if r.Pids > in.Resources.Pids {
				return effectiveSpec{}, invalid("pids %d exceeds the ceiling %d", r.Pids, in.Resources.Pids)
			}
			e.Pids = r.Pids
		}
	}
	return e, nil
}

func validateFileName(name string) error {
	if !fileNameRE.MatchString(name) || name == "." || name == ".." || strings.Contains(name, "..") {
		return invalid("invalid file name %q: want a plain name of letters, digits, '.', '_' and '-'", name)
	}
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

// containerSpec turns an effective spec into the runtime's terms.
func (a *Agent) containerSpec(userID string, e effectiveSpec, hash string, port int, createdAtMs int64, dataDir string) runtime.ContainerSpec {
	lk := a.labels
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
			MemorySwap: fmt.Sprint(e.MemoryBytes), // swap off
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
			HostIP: a.conf().Instance.BindAddress, HostPort: port, ContainerPort: e.ContainerPort, Protocol: "tcp",
		}},
		Mounts:      []runtime.Mount{{Source: dataDir, Target: e.DataMountPath}},
		StopTimeout: seconds(a.conf().Instance.StopTimeoutSeconds),
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
			StartPeriod: seconds(a.conf().Instance.ReadinessTimeoutSeconds),
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
