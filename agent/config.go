package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// DefaultConfigPath is where the packaged config file lives.
const DefaultConfigPath = "/etc/zaki-agent/config.toml"

// Config is the agent's configuration: the TOML file at DefaultConfigPath,
// every key of which is also a flag (flags win). Keys are camelCase as in
// the file; flags are the same paths in kebab case (--instance.resources.cpu-shares),
// and the camelCase spelling is accepted too.
type Config struct {
	Socket      string `toml:"socket" help:"the API's Unix socket (unless systemd passes one)"`
	SocketGroup string `toml:"socketGroup" help:"group owning the socket when the agent creates it (\"\" = the agent's own)"`
	StateDir    string `toml:"stateDir" help:"registry.json, hash.key and instances/<userId>/ (the users' data)"`
	Runtime     string `toml:"runtime" help:"runtime plugin: zaki-runtime-<runtime> in pluginDir"`
	PluginDir   string `toml:"pluginDir" help:"where runtime plugins live"`
	LogFormat   string `toml:"logFormat" help:"log format: text or json"`
	LogLevel    string `toml:"logLevel" help:"log level: debug, info, warn or error"`
	// MetricsAddress, when set, also serves /metrics on this loopback TCP address.
	MetricsAddress string `toml:"metricsAddress" help:"also serve /metrics on this loopback TCP address, e.g. 127.0.0.1:9464 (\"\" = off)"`
	// MaxEngineOps bounds the engine operations (create, start, pull, ...) in flight at once.
	MaxEngineOps int `toml:"maxEngineOps" help:"engine operations in flight at once, across users"`
	// CallTimeoutSeconds bounds one runtime call (image pulls have their own bounds).
	CallTimeoutSeconds float64 `toml:"callTimeoutSeconds" help:"bound on one runtime call, in seconds"`

	Instance InstanceConfig `toml:"instance"`
	Prune    PruneConfig    `toml:"prune"`
	Hot      HotConfig      `toml:"hot"`
	API      APIConfig      `toml:"api"`
}

// InstanceConfig holds the defaults of every instance.
type InstanceConfig struct {
	Image                   string   `toml:"image" help:"default image of an instance"`
	AllowedImages           []string `toml:"allowedImages" help:"patterns (path.Match) a caller's image must match"`
	ContainerPort           int      `toml:"containerPort" help:"the gateway's port inside the container"`
	DataMountPath           string   `toml:"dataMountPath" help:"where the user's data dir is mounted in the container"`
	BindAddress             string   `toml:"bindAddress" help:"host address the port is published on"`
	PortRange               string   `toml:"portRange" help:"host ports handed to users, one per user for life"`
	Network                 string   `toml:"network" help:"bridge network of the instances (inter-container traffic off)"`
	User                    string   `toml:"user" help:"uid:gid the container runs as; owns the data dir"`
	Init                    bool     `toml:"init" help:"run an init process as PID 1 (--init)"`
	Restart                 string   `toml:"restart" help:"engine restart policy, e.g. on-failure:5"`
	ReadinessTimeoutSeconds float64  `toml:"readinessTimeoutSeconds" help:"how long ensure waits for the port to accept connections"`
	StopTimeoutSeconds      float64  `toml:"stopTimeoutSeconds" help:"grace period on stop before the engine kills"`
	HealthCmd               []string `toml:"healthCmd" help:"engine health check, exec form, e.g. [\"/gateway-stub\", \"-probe\"] (empty = none)"`
	HealthIntervalSeconds   float64  `toml:"healthIntervalSeconds" help:"interval of the health check"`
	PullTimeoutSeconds      float64  `toml:"pullTimeoutSeconds" help:"bound on one image pull"`
	PullStallSeconds        float64  `toml:"pullStallSeconds" help:"an image pull without progress for this long is abandoned"`
	LabelPrefix             string   `toml:"labelPrefix" help:"prefix of the labels the agent puts on containers"`

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
	IdleHours       float64 `toml:"idleHours" help:"remove instances idle this long (0 = off); data is kept"`
	MaxAgeDays      float64 `toml:"maxAgeDays" help:"remove instances older than this (0 = off); data is kept"`
}

// HotConfig holds the hot window.
type HotConfig struct {
	WindowMinutes float64 `toml:"windowMinutes" help:"a running instance used this recently is hot: a config change waits"`
}

// APIConfig holds the socket API's settings.
type APIConfig struct {
	AllowUids    []int `toml:"allowUids" help:"uids allowed to call besides root and the agent's own"`
	AllowGids    []int `toml:"allowGids" help:"gids allowed to call"`
	MaxBodyBytes int64 `toml:"maxBodyBytes" help:"largest request body"`
}

// DefaultConfig returns the built-in defaults (DESIGN.md's configuration).
func DefaultConfig() Config {
	return Config{
		Socket:             "/run/zaki-agent/agent.sock",
		SocketGroup:        "zaki",
		StateDir:           "/var/lib/zaki-agent",
		Runtime:            "docker",
		PluginDir:          "/usr/lib/zaki-agent/plugins",
		LogFormat:          "text",
		LogLevel:           "info",
		MaxEngineOps:       8,
		CallTimeoutSeconds: 60,
		Instance: InstanceConfig{
			Image:                   "alpine/openclaw:latest",
			AllowedImages:           []string{"alpine/openclaw:*"},
			ContainerPort:           18789,
			DataMountPath:           "/home/node/.openclaw",
			BindAddress:             "127.0.0.1",
			PortRange:               "18790-28789",
			Network:                 "zaki",
			User:                    "1000:1000",
			Init:                    true,
			Restart:                 "on-failure:5",
			ReadinessTimeoutSeconds: 60,
			StopTimeoutSeconds:      10,
			HealthCmd:               []string{},
			HealthIntervalSeconds:   30,
			PullTimeoutSeconds:      600,
			PullStallSeconds:        120,
			LabelPrefix:             "zaki",
			Resources: ResourcesConfig{
				CPUs:      2,
				Memory:    "2g",
				Pids:      100,
				CPUShares: 512,
				// No nproc: RLIMIT_NPROC counts every task of the uid on the
				// whole host, and all instances share one uid, so it is a
				// limit shared by all tenants, not one per instance (at
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
		API:   APIConfig{AllowUids: []int{}, AllowGids: []int{}, MaxBodyBytes: 1 << 20},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are an
// error, so that a misspelt key never silently keeps its default. A
// missing file is an error only when mustExist is set.
func LoadConfig(file string, mustExist bool) (Config, error) {
	cfg := DefaultConfig()
	if err := decodeConfigFile(file, mustExist, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

func decodeConfigFile(file string, mustExist bool, cfg *Config) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(b), cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys: %s", file, strings.Join(keys, ", "))
	}
	return nil
}

// ConfigFromArgs builds the configuration from defaults, the config file
// (--config, default DefaultConfigPath; a missing default file is fine, a
// missing named one is not) and the flags in args, in that order of
// precedence from lowest to highest. It returns the config and the path of
// the file it read. pflag.ErrHelp is returned after printing the usage for
// -h/--help.
func ConfigFromArgs(name string, args []string, usage func(*pflag.FlagSet)) (Config, string, error) {
	first := DefaultConfig()
	fset := NewConfigFlagSet(name, &first)
	if usage != nil {
		fset.Usage = func() { usage(fset) }
	}
	if err := fset.Parse(args); err != nil {
		return Config{}, "", err
	}
	if fset.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected argument %q (every setting is a --flag)", fset.Arg(0))
	}
	file, _ := fset.GetString("config")
	cfg := DefaultConfig()
	if err := decodeConfigFile(file, fset.Changed("config"), &cfg); err != nil {
		return Config{}, "", err
	}
	// Flags win: replay every flag given on the command line over the file.
	replay := NewConfigFlagSet(name, &cfg)
	var err error
	fset.Visit(func(f *pflag.Flag) {
		if err != nil || f.Name == "config" {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			err = replay.Lookup(f.Name).Value.(pflag.SliceValue).Replace(sv.GetSlice())
		} else {
			err = replay.Set(f.Name, f.Value.String())
		}
	})
	if err != nil {
		return Config{}, "", err
	}
	return cfg, file, cfg.Validate()
}

// NewConfigFlagSet returns a flag set with one flag per config key, bound
// to cfg (whose values are the flags' defaults), plus --config.
func NewConfigFlagSet(name string, cfg *Config) *pflag.FlagSet {
	fset := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fset.SortFlags = false
	fset.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		return pflag.NormalizedName(kebab(n))
	})
	fset.String("config", DefaultConfigPath, "configuration file (TOML); flags override it")
	bindStruct(fset, "", reflect.ValueOf(cfg).Elem())
	return fset
}

// bindStruct registers a flag for each field of v that carries a toml tag.
func bindStruct(fset *pflag.FlagSet, prefix string, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		if key == "" {
			continue
		}
		name := kebab(prefix + key)
		help := f.Tag.Get("help")
		p := v.Field(i).Addr().Interface()
		switch p := p.(type) {
		case *string:
			fset.StringVar(p, name, *p, help)
		case *bool:
			fset.BoolVar(p, name, *p, help)
		case *int:
			fset.IntVar(p, name, *p, help)
		case *int64:
			fset.Int64Var(p, name, *p, help)
		case *float64:
			fset.Float64Var(p, name, *p, help)
		case *[]string:
			fset.StringSliceVar(p, name, *p, help)
		case *[]int:
			fset.IntSliceVar(p, name, *p, help)
		default:
			if f.Type.Kind() == reflect.Struct {
				bindStruct(fset, prefix+key+".", v.Field(i))
				continue
			}
			panic(fmt.Sprintf("config field %s: no flag for type %s", f.Name, f.Type))
		}
	}
}

// kebab turns camelCase into kebab-case: "instance.resources.cpuShares"
// becomes "instance.resources.cpu-shares".
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 && s[i-1] != '.' && s[i-1] != '-' {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		if r == '_' {
			r = '-'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Validate checks the configuration as a whole; every problem is named.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Socket == "" || !path.IsAbs(c.Socket) {
		bad("socket %q: want an absolute path", c.Socket)
	}
	if c.StateDir == "" || !path.IsAbs(c.StateDir) {
		bad("stateDir %q: want an absolute path", c.StateDir)
	}
	if !validPluginName(c.Runtime) {
		bad("runtime %q: want a plugin name like \"docker\"", c.Runtime)
	}
	if c.PluginDir == "" {
		bad("pluginDir is empty")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("logFormat %q: want text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.MetricsAddress != "" && !strings.HasPrefix(c.MetricsAddress, "127.") && !strings.HasPrefix(c.MetricsAddress, "[::1]") && !strings.HasPrefix(c.MetricsAddress, "localhost:") {
		bad("metricsAddress %q: want a loopback address", c.MetricsAddress)
	}
	if c.MaxEngineOps < 1 {
		bad("maxEngineOps %d: want at least 1", c.MaxEngineOps)
	}
	if c.CallTimeoutSeconds <= 0 {
		bad("callTimeoutSeconds must be positive")
	}
	in := &c.Instance
	if err := runtime.ValidateImage(in.Image); err != nil {
		bad("instance.image: %v", err)
	}
	for _, p := range in.AllowedImages {
		if _, err := path.Match(p, ""); err != nil {
			bad("instance.allowedImages: bad pattern %q", p)
		}
	}
	if in.ContainerPort < 1 || in.ContainerPort > 65535 {
		bad("instance.containerPort %d out of range", in.ContainerPort)
	}
	if !path.IsAbs(in.DataMountPath) {
		bad("instance.dataMountPath %q: want an absolute path", in.DataMountPath)
	}
	if _, _, err := in.Ports(); err != nil {
		bad("instance.portRange: %v", err)
	}
	if err := runtime.ValidateName(in.Network); err != nil {
		bad("instance.network: %v", err)
	}
	if _, _, err := in.UIDGID(); err != nil {
		bad("instance.user: %v", err)
	}
	if _, err := parseRestart(in.Restart); err != nil {
		bad("instance.restart: %v", err)
	}
	for name, v := range map[string]float64{
		"readinessTimeoutSeconds": in.ReadinessTimeoutSeconds, "pullTimeoutSeconds": in.PullTimeoutSeconds,
		"pullStallSeconds": in.PullStallSeconds, "healthIntervalSeconds": in.HealthIntervalSeconds,
	} {
		if v <= 0 {
			bad("instance.%s must be positive", name)
		}
	}
	if in.StopTimeoutSeconds < 0 {
		bad("instance.stopTimeoutSeconds must not be negative")
	}
	if in.LabelPrefix == "" || strings.ContainsAny(in.LabelPrefix, "= \n") {
		bad("instance.labelPrefix %q is not a label prefix", in.LabelPrefix)
	}
	r := &in.Resources
	if r.CPUs <= 0 {
		bad("instance.resources.cpus must be positive")
	}
	if n, err := runtime.ParseBytes(r.Memory); err != nil || n <= 0 {
		bad("instance.resources.memory %q: want a size like 2g", r.Memory)
	}
	if r.Pids < 1 {
		bad("instance.resources.pids must be positive")
	}
	for _, u := range r.Ulimits {
		if _, err := runtime.ParseUlimit(u); err != nil {
			bad("instance.resources.ulimits: %v", err)
		}
	}
	s := &in.Security
	if s.SeccompProfile == "unconfined" {
		bad("instance.security.seccompProfile \"unconfined\" is refused: it turns the syscall filter off")
	}
	if s.ApparmorProfile == "unconfined" {
		bad("instance.security.apparmorProfile \"unconfined\" is refused")
	}
	for _, t := range s.Tmpfs {
		if p, _, _ := strings.Cut(t, ":"); !path.IsAbs(p) {
			bad("instance.security.tmpfs %q: want an absolute path", t)
		}
	}
	if c.Prune.IntervalMinutes <= 0 {
		bad("prune.intervalMinutes must be positive")
	}
	if c.Prune.IdleStopMinutes < 0 || c.Prune.IdleHours < 0 || c.Prune.MaxAgeDays < 0 {
		bad("prune thresholds must not be negative (0 = off)")
	}
	if c.Hot.WindowMinutes < 0 {
		bad("hot.windowMinutes must not be negative")
	}
	if c.API.MaxBodyBytes < 1024 {
		bad("api.maxBodyBytes %d: want at least 1024", c.API.MaxBodyBytes)
	}
	// Build one spec from the defaults, so that anything the runtime would
	// refuse is refused at start, not at the first ensure.
	if len(errs) == 0 {
		if _, err := c.resolve(InstanceSpec{}); err != nil {
			bad("instance defaults: %v", err)
		}
	}
	return errors.Join(errs...)
}

func validPluginName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
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

// UIDGID returns the numeric uid and gid of the container user.
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
