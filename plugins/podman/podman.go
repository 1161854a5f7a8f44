package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/envfile"
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

// Config configures the podman runtime.
type Config struct {
	// Binary is the podman client: "podman" (the default) is looked up on
	// PATH at every call; a path is used as it is.
	Binary string
	// Env is added to podman's environment. Podman otherwise sees this
	// process's environment (CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF,
	// ... apply).
	Env []string
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
	// TempDir holds the short-lived env files of Create (default: the
	// system's temporary directory).
	TempDir string
	// Healthchecks is who runs the containers' healthchecks: HealthAuto
	// (the default), HealthPlugin or HealthEngine. See healthd.go.
	Healthchecks string
	// HealthLock is the file whose lock makes one plugin process per host
	// run the healthchecks (default: zaki-runtime-podman-health.lock in
	// /run/lock, or the temporary directory when /run/lock is missing).
	HealthLock string
	// Logger gets one debug line per podman command (subcommand, exit
	// code, duration; never arguments or environment). Default: discard.
	Logger *slog.Logger
}

// Podman is a runtime.Runtime on the podman CLI.
type Podman struct {
	cli      *cli.Runner
	ipt      *cli.Runner
	global   []string
	tempDir  string
	health   string
	lockPath string
	log      *slog.Logger

	factsMu sync.Mutex
	facts   *hostFacts // from `podman info`, fetched by Run
}

var _ runtime.Runtime = (*Podman)(nil)

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
	return &Podman{
		cli:      cli.New(cli.Config{Binary: cfg.Binary, Env: cfg.Env, Classify: classify}),
		ipt:      cli.New(cli.Config{Binary: cfg.IPTables, Classify: classifyIPTables}),
		global:   append([]string{"--log-level=error"}, cfg.GlobalArgs...),
		tempDir:  cfg.TempDir,
		health:   cfg.Healthchecks,
		lockPath: cfg.HealthLock,
		log:      cfg.Logger,
	}
}

// run runs one podman command, with the global options.
func (p *Podman) run(ctx context.Context, args ...string) (*cli.Result, error) {
	start := time.Now()
	res, err := p.cli.Run(ctx, p.argv(args)...)
	if p.log.Enabled(ctx, slog.LevelDebug) {
		code := -1
		if res != nil {
			code = res.ExitCode
		}
		p.log.DebugContext(ctx, "podman", "cmd", p.cli.Name(args), "exit", code, "took", time.Since(start), "err", err)
	}
	return res, err
}

// stream starts a long-lived podman command (events, logs, pull).
func (p *Podman) stream(ctx context.Context, opts cli.StreamOptions, args ...string) (*cli.Stream, error) {
	return p.cli.Stream(ctx, opts, p.argv(args)...)
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
	res, err := p.run(ctx, "version", "--format", "json")
	if err != nil {
		if runtime.Class(err) == nil {
			err = runtime.Errorf(runtime.ErrUnavailable, "%w", err)
		}
		return runtime.Info{}, fmt.Errorf("podman version: %w", err)
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
	out := runtime.Info{Runtime: "podman", EngineVersion: v.Version, APIVersion: v.APIVersion}
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
	res, err := p.run(ctx, "info", "--format", "json")
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

// SweepEnvFiles removes the env files of creates that never finished (a
// plugin killed in the middle of one) older than age, and returns how
// many it removed.
func (p *Podman) SweepEnvFiles(age time.Duration) int { return envfile.Sweep(p.tempDir, age) }

// notFound reports whether err is podman saying there is no such thing.
func notFound(err error) bool { return errors.Is(err, runtime.ErrNotFound) }

// jsonArray decodes podman's JSON array output (inspect, ps); empty
// output is an empty list.
func jsonArray[T any](what string, out []byte) ([]T, error) {
	var all []T
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("%s: parse output: %w", what, err)
	}
	return all, nil
}
