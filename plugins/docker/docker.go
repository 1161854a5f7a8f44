package docker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Config configures the docker runtime; Binary is "docker" when empty.
type Config = clirt.Config

// Docker is a runtime.Runtime on the docker CLI: the CLI engine of
// package clirt in docker's dialect, with a cache of images' healthchecks.
type Docker struct {
	*clirt.Engine
	health healthCache // images' HEALTHCHECK tests, for Create
}

var _ runtime.Runtime = (*Docker)(nil)

// New returns a docker runtime for cfg. It runs nothing: an engine that
// cannot be reached shows at the first call (Info is the probe).
func New(cfg Config) *Docker {
	d := &Docker{}
	cfg.Binary = cmp.Or(cfg.Binary, "docker")
	d.Engine = clirt.New(cfg, d.dialect())
	return d
}

// dialect is how the docker client says what the CLI engine does: only
// machine-readable output ('{{json .}}', one value a line), -t for
// timeouts, docker's own healthcheck flags (healthcheck.go) and events
// (events.go).
func (d *Docker) dialect() clirt.Dialect {
	return clirt.Dialect{
		Name:     "docker",
		Classify: classify,
		Output:   clirt.JSONLines,

		CreateArgs:        d.createArgs,
		UnknownOCIRuntime: unknownOCIRuntimeRE,

		Timeout:     func(seconds int) []string { return []string{"-t", strconv.Itoa(seconds)} },
		ForceRemove: []string{"--force"},
		// A bare `rm --force` of a running container SIGKILLs it while the
		// engine still runs its restart policy and health probes: engine
		// 20.10 then panics in a probe's exec start once the container is
		// gone (seen by the fault suite, faults/kill_test.go). A container
		// stopped by `docker stop` has neither. `stop -t 0` kills at once,
		// as rm --force does, so Remove takes no longer.
		StopBeforeForceRemove: true,
		Note: func(line string) bool {
			return strings.HasPrefix(line, "WARNING") || strings.Contains(line, "has been deprecated")
		},

		ListArgs:         []string{"ps", "--all", "--no-trunc", "--format", "{{json .}}"},
		InspectArgs:      []string{"inspect", "--type=container", "--format", "{{json .}}"},
		IDArgs:           []string{"inspect", "--type=container", "--format", "{{json .Id}}"},
		ParseShellHealth: parseShellCommand,

		EventArgs: func(now time.Time, _ map[string]string, filters []string) []string {
			return append([]string{"events", "--format", "{{json .}}", "--filter=type=container",
				fmt.Sprintf("--since=%d.%09d", now.Unix(), now.Nanosecond())}, filters...)
		},
		ParseEvent:  parseEvent,
		ImageEvents: []string{"--filter=type=image"},

		ICCOff:      "com.docker.network.bridge.enable_icc=false",
		ImageIDArgs: []string{"image", "inspect", "--format", "{{json .Id}}"},
		PullArgs:    func(ref string) []string { return []string{"pull", ref} },

		// docker's own refusals of an exec exit 1 with its error prefix.
		ExecRefused: clirt.ExecRefusal{Codes: []int{1}, Prefixes: []string{"Error response from daemon:", "Error: No such container"},
			NotRunning: []string{"is not running", "is paused", "is restarting"}},
		TopArgs:     []string{"-eww", "-o", "pid,ppid,args"},
		MainPIDArgs: []string{"inspect", "--type=container", "--format", "{{.State.Pid}}"},
	}
}

// Info reports the engine, from `docker version` and `docker info` (run
// side by side).
func (d *Docker) Info(ctx context.Context) (runtime.Info, error) {
	var (
		wg              sync.WaitGroup
		verRes, infoRes *cli.Result
		verErr, infoErr error
	)
	wg.Go(func() { verRes, verErr = d.RunClient(ctx, "version", "--format", "{{json .}}") })
	wg.Go(func() { infoRes, infoErr = d.RunClient(ctx, "info", "--format", "{{json .}}") })
	wg.Wait()
	if err := cmp.Or(verErr, infoErr); err != nil {
		return runtime.Info{}, fmt.Errorf("docker info: %w", clirt.Unavailable(err))
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
		Runtimes        map[string]json.RawMessage // the OCI runtimes, by name
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
		ImageEvents:   true, // the dialect's ImageEvents
		OCIRuntimes:   slices.Sorted(maps.Keys(info.Runtimes)),
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
