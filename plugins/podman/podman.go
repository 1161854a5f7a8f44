package podman

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Health-check modes of Config.Healthchecks.
const (
	// HealthAuto runs the healthchecks in Run when systemd is not PID 1
	// (no /run/systemd/system), and leaves them to podman otherwise.
	HealthAuto = "auto"
	// HealthPlugin always runs them in Run.
	HealthPlugin = "plugin"
	// HealthEngine leaves them to podman (its systemd timers).
	HealthEngine = "engine"
)

// Config configures the podman runtime: the client (Binary is "podman"
// when empty), and what is podman's own.
type Config struct {
	clirt.Config
	// GlobalArgs go with every command (e.g. "--root=/srv/podman").
	// "--log-level=error" always goes first: podman's warnings about this
	// host (a read-only cgroup controller, say) would otherwise land in
	// error messages and in Logs' stream. (Not "fatal": podman hands the
	// level on to conmon, which knows no "fatal" and complains.) Its
	// errors about missing systemd timers remain, on hosts without
	// systemd; classify skips podman's log lines.
	GlobalArgs []string
	// IPTables is the iptables client that turns inter-container traffic
	// off on a network (default "iptables").
	IPTables string
	// Healthchecks is who runs the containers' healthchecks: HealthAuto
	// (the default), HealthPlugin or HealthEngine. See healthd.go.
	Healthchecks string
	// HealthLock is the file whose lock makes one plugin process per host
	// run the healthchecks (default: zaki-runtime-podman-health.lock in
	// /run/lock, or the temporary directory when /run/lock is missing).
	HealthLock string
}

// Podman is a runtime.Runtime on the podman CLI: the CLI engine of
// package clirt in podman's dialect, with the healthchecks it runs when
// podman cannot (healthd.go) and the firewall rule of DisableICC (icc.go).
type Podman struct {
	*clirt.Engine
	ipt      *cli.Runner
	global   []string
	health   string
	lockPath string
	log      *slog.Logger

	factsMu sync.Mutex
	facts   *hostFacts // from `podman info`, fetched by Run
}

var _ runtime.Runtime = (*Podman)(nil)

// dialect is how podman says what the CLI engine does: JSON arrays, the
// global options after the subcommand (argv), --time for timeouts,
// --ignore on batches, its own healthcheck flags (health.go), inspect
// reading (inspect.go) and events (events.go).
func (p *Podman) dialect() clirt.Dialect {
	return clirt.Dialect{
		Name:     "podman",
		Argv:     p.argv,
		Output:   clirt.JSONArray,
		Classify: classify,

		UnknownOCIRuntime: unknownOCIRuntimeRE,
		CreateArgs: func(_ context.Context, spec runtime.ContainerSpec) ([]string, error) {
			return createArgs(spec, processUlimits)
		},

		// Without --ignore, one missing container fails the whole command
		// before it touches any; with it, a missing one is neither printed
		// nor an error. A forced remove kills at once (--time=0), as
		// docker's rm -f does, rather than stopping with the stop timeout,
		// podman's default.
		Ignore:      []string{"--ignore"},
		Timeout:     func(seconds int) []string { return []string{"--time=" + strconv.Itoa(seconds)} },
		ForceRemove: []string{"--force", "--time=0"},
		// `podman stop` of a paused container fails ("is running or
		// paused, refusing to clean up"), and so does restart.
		ThawBeforeStop: true,
		Note:           logrusLine.MatchString,
		Identify:       p.identify,

		ListArgs:    []string{"ps", "--all", "--no-trunc", "--format", "json"},
		InspectArgs: []string{"container", "inspect"},
		IDArgs:      []string{"container", "inspect", "--format", "{{.Id}}"},
		States:      podmanStates,
		ReadBack:    readBack,
		FollowTail:  p.followTail,

		EventArgs:   eventArgs,
		ParseEvent:  parseEvent,
		MatchLabels: true,
		ImageEvents: []string{"--filter=type=image"},

		ICCOff:        "isolate=true",
		CreateNetwork: p.createNetwork,

		ImageIDArgs:  []string{"image", "inspect", "--format", "{{.Id}}", "--"},
		PullArgs:     pullArgs,
		PullOnStderr: true,

		ExecRefused: clirt.ExecRefusal{Codes: []int{125, 255}, Prefixes: []string{"Error: "},
			NotRunning: []string{"can only create exec sessions on running containers", "container state improper"}},
		TopArgs:     []string{"hpid", "pid", "ppid", "args"},
		TopHostPID:  true,
		MainPIDArgs: []string{"container", "inspect", "--format", "{{.State.Pid}}"},
	}
}

// New returns a podman runtime for cfg. It runs nothing: a podman that
// cannot run shows at the first call (Info is the probe).
func New(cfg Config) *Podman {
	if cfg.Binary == "" {
		cfg.Binary = "podman"
	}
	if cfg.IPTables == "" {
		cfg.IPTables = "iptables"
	}
	if cfg.Healthchecks == "" {
		cfg.Healthchecks = HealthAuto
	}
	if cfg.HealthLock == "" {
		dir := "/run/lock"
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = os.TempDir()
		}
		cfg.HealthLock = dir + "/zaki-runtime-podman-health.lock"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Podman{
		ipt:      cli.New(cli.Config{Binary: cfg.IPTables, Classify: classifyIPTables}),
		global:   append([]string{"--log-level=error"}, cfg.GlobalArgs...),
		health:   cfg.Healthchecks,
		lockPath: cfg.HealthLock,
		log:      cfg.Logger,
	}
	p.Engine = clirt.New(cfg.Config, p.dialect())
	return p
}

// argv puts the global options right after the (first word of the)
// subcommand, where podman takes them too, so that errors still name the
// command "podman inspect", "podman network", ...
func (p *Podman) argv(args []string) []string {
	if len(args) == 0 {
		return append([]string(nil), p.global...)
	}
	out := make([]string, 0, len(args)+len(p.global))
	out = append(out, args[0])
	out = append(out, p.global...)
	return append(out, args[1:]...)
}

// Info reports podman, from `podman version` (the probe: podman is
// daemonless, so "the engine" is the client running at all) and the host
// facts Run fetched once from `podman info` (cgroup version, security
// options), which are missing until then: `podman info` takes seconds on
// a loaded host, too long for a health probe.
func (p *Podman) Info(ctx context.Context) (runtime.Info, error) {
	res, err := p.RunClient(ctx, "version", "--format", "json")
	if err != nil {
		return runtime.Info{}, fmt.Errorf("podman version: %w", clirt.Unavailable(err))
	}
	var ver struct {
		Client *struct {
			APIVersion string
			Version    string
			OsArch     string
		}
		Server *struct {
			APIVersion string
			Version    string
			OsArch     string
		}
	}
	if err := json.Unmarshal(res.Stdout, &ver); err != nil {
		return runtime.Info{}, fmt.Errorf("podman version: parse: %w", err)
	}
	v := ver.Server // podman --remote: the service's
	if v == nil {
		v = ver.Client
	}
	if v == nil || v.Version == "" {
		return runtime.Info{}, runtime.Errorf(runtime.ErrUnavailable, "podman version: no version in the answer")
	}
	out := runtime.Info{Runtime: "podman", EngineVersion: v.Version, APIVersion: v.APIVersion, ImageEvents: true}
	out.OS, out.Arch, _ = strings.Cut(v.OsArch, "/")
	if f := p.hostFacts(); f != nil {
		out.CgroupVersion = f.CgroupVersion
		out.SecurityOptions = f.SecurityOptions
	}
	return out, nil
}

// hostFacts is what Info adds from `podman info`.
type hostFacts struct {
	CgroupVersion   string
	SecurityOptions []string
}

func (p *Podman) hostFacts() *hostFacts {
	p.factsMu.Lock()
	defer p.factsMu.Unlock()
	return p.facts
}

// fetchHostFacts runs `podman info` and keeps what Info reports of it.
func (p *Podman) fetchHostFacts(ctx context.Context) error {
	res, err := p.RunClient(ctx, "info", "--format", "json")
	if err != nil {
		return fmt.Errorf("podman info: %w", err)
	}
	var info struct {
		Host struct {
			CgroupVersion string `json:"cgroupVersion"`
			Security      struct {
				AppArmorEnabled bool `json:"apparmorEnabled"`
				SECCOMPEnabled  bool `json:"seccompEnabled"`
				SELinuxEnabled  bool `json:"selinuxEnabled"`
				Rootless        bool `json:"rootless"`
			} `json:"security"`
		} `json:"host"`
	}
	if err := json.Unmarshal(res.Stdout, &info); err != nil {
		return fmt.Errorf("podman info: parse: %w", err)
	}
	f := &hostFacts{CgroupVersion: strings.TrimPrefix(info.Host.CgroupVersion, "v")}
	sec := info.Host.Security
	for _, o := range []struct {
		on   bool
		name string
	}{{sec.AppArmorEnabled, "apparmor"}, {sec.SECCOMPEnabled, "seccomp"}, {sec.SELinuxEnabled, "selinux"}, {sec.Rootless, "rootless"}} {
		if o.on {
			f.SecurityOptions = append(f.SecurityOptions, o.name)
		}
	}
	p.factsMu.Lock()
	p.facts = f
	p.factsMu.Unlock()
	return nil
}
