package docker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Config configures the docker runtime.
type Config struct {
	// Binary is the docker client: "docker" (the default) is looked up on
	// PATH at every call; a path is used as it is.
	Binary string
	// Env is added to the client's environment, e.g. "DOCKER_HOST=...".
	// The client otherwise sees this process's environment.
	Env []string
	// TempDir holds the short-lived env files of Create (default: the
	// system's temporary directory). Each file sits in its own directory of
	// mode 0700.
	TempDir string
	// Logger gets one debug line per docker command (subcommand, exit
	// code, duration; never arguments or environment). Default: discard.
	Logger *slog.Logger
}

// Docker is a runtime.Runtime on the docker CLI.
type Docker struct {
	cli     *cli.Runner
	health  healthCache // images' HEALTHCHECK tests, for Create
	tempDir string
	log     *slog.Logger
}

var _ runtime.Runtime = (*Docker)(nil)

// New returns a docker runtime for cfg. It runs nothing: an engine that
// cannot be reached shows at the first call (Info is the probe).
func New(cfg Config) *Docker {
	if cfg.Binary == "" {
		cfg.Binary = "docker"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Docker{
		cli:     cli.New(cli.Config{Binary: cfg.Binary, Env: cfg.Env, Classify: classify}),
		tempDir: cfg.TempDir,
		log:     cfg.Logger,
	}
}

// run runs one docker command.
func (d *Docker) run(ctx context.Context, args ...string) (*cli.Result, error) {
	start := time.Now()
	res, err := d.cli.Run(ctx, args...)
	if d.log.Enabled(ctx, slog.LevelDebug) {
		code := -1
		if res != nil {
			code = res.ExitCode
		}
		d.log.DebugContext(ctx, "docker", "cmd", d.cli.Name(args), "exit", code, "took", time.Since(start), "err", err)
	}
	return res, err
}

// Info reports the engine, from `docker version` and `docker info` (run
// side by side).
func (d *Docker) Info(ctx context.Context) (runtime.Info, error) {
	var (
		wg              sync.WaitGroup
		verRes, infoRes *cli.Result
		verErr, infoErr error
	)
	wg.Go(func() { verRes, verErr = d.run(ctx, "version", "--format", "{{json .}}") })
	wg.Go(func() { infoRes, infoErr = d.run(ctx, "info", "--format", "{{json .}}") })
	wg.Wait()
	if err := cmp.Or(verErr, infoErr); err != nil {
		// An engine that cannot be answered is unavailable, whatever the
		// client said about it.
		if runtime.Class(err) == nil {
			err = runtime.Errorf(runtime.ErrUnavailable, "%w", err)
		}
		return runtime.Info{}, fmt.Errorf("docker info: %w", err)
	}
	var ver struct {
		Server *struct {
			Version    string
			APIVersion string `json:"ApiVersion"`
			Os         string
			Arch       string
		}
	}
	if err := json.Unmarshal(verRes.Stdout, &ver); err != nil {
		return runtime.Info{}, fmt.Errorf("docker version: parse: %w", err)
	}
	if ver.Server == nil {
		return runtime.Info{}, runtime.Errorf(runtime.ErrUnavailable, "docker version: no server in the answer")
	}
	var info struct {
		CgroupVersion   string
		SecurityOptions []string
		ServerErrors    []string
	}
	if err := json.Unmarshal(infoRes.Stdout, &info); err != nil {
		return runtime.Info{}, fmt.Errorf("docker info: parse: %w", err)
	}
	if len(info.ServerErrors) > 0 {
		return runtime.Info{}, runtime.Errorf(runtime.ErrUnavailable, "docker info: %s", strings.Join(info.ServerErrors, "; "))
	}
	out := runtime.Info{
		Runtime:       "docker",
		EngineVersion: ver.Server.Version,
		APIVersion:    ver.Server.APIVersion,
		OS:            ver.Server.Os,
		Arch:          ver.Server.Arch,
		CgroupVersion: info.CgroupVersion,
	}
	// "name=seccomp,profile=default" -> "seccomp"
	for _, opt := range info.SecurityOptions {
		for kv := range strings.SplitSeq(opt, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "name" {
				out.SecurityOptions = append(out.SecurityOptions, v)
			}
		}
	}
	return out, nil
}

// notFound reports whether err is the engine saying there is no such thing.
func notFound(err error) bool { return errors.Is(err, runtime.ErrNotFound) }

// jsonLines decodes one JSON value per non-empty line of out into a T each.
func jsonLines[T any](what string, out []byte) ([]T, error) {
	var all []T
	for line := range strings.SplitSeq(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("%s: parse output: %w", what, err)
		}
		all = append(all, v)
	}
	return all, nil
}

// seconds rounds a timeout up to whole seconds, the docker client's unit.
func seconds(d time.Duration) int { return cliargs.Seconds(d) }
