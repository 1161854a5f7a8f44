package clirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Config is what a CLI runtime is configured with: the client, where it
// runs, what it logs.
type Config struct {
	// Binary is the client: a name looked up on PATH at every call, or a
	// path. The plugin's New fills in its default ("docker", "podman").
	Binary string
	// Env is added to the client's environment, which is otherwise this
	// process's: DOCKER_HOST, CONTAINERS_CONF and the like there apply.
	Env []string
	// Logger gets one debug line per command (subcommand, exit code,
	// duration; never arguments or environment). Default: discard.
	Logger *slog.Logger
}

// Engine is a runtime.Runtime on a command-line client. It is safe for
// concurrent use.
type Engine struct {
	d   Dialect
	cli *cli.Runner
	log *slog.Logger
}

// New returns an engine for cfg that speaks d. It runs nothing: a client
// or engine that cannot run shows at the first call.
func New(cfg Config, d Dialect) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		d:   d,
		cli: cli.New(cli.Config{Binary: cfg.Binary, Env: cfg.Env, Classify: d.Classify}),
		log: cfg.Logger,
	}
}

// argv applies the dialect's Argv.
func (e *Engine) argv(args []string) []string {
	if e.d.Argv == nil {
		return args
	}
	return e.d.Argv(args)
}

// RunClient runs one command of the client and logs it at debug level. Errors are the cli
// package's: an *cli.ExitError wrapping the class Classify found, or the
// ctx's error.
func (e *Engine) RunClient(ctx context.Context, args ...string) (*cli.Result, error) {
	return e.RunClientFiles(ctx, nil, args...)
}

// RunClientFiles is RunClient with files open in the client as
// descriptors 3, 4, ... (cli.Runner.RunFiles).
func (e *Engine) RunClientFiles(ctx context.Context, files []*os.File, args ...string) (*cli.Result, error) {
	start := time.Now()
	res, err := e.cli.RunFiles(ctx, files, e.argv(args)...)
	e.logCommand(ctx, args, start, res, err)
	return res, err
}

// logCommand is the debug line of one command: its subcommand, never its
// other arguments.
func (e *Engine) logCommand(ctx context.Context, args []string, start time.Time, res *cli.Result, err error) {
	if e.log.Enabled(ctx, slog.LevelDebug) {
		code := -1
		if res != nil {
			code = res.ExitCode
		}
		e.log.DebugContext(ctx, e.d.Name, "cmd", e.cli.Name(args), "exit", code, "took", time.Since(start), "err", err)
	}
}

// Stream starts a long-lived command (events, logs, pull).
func (e *Engine) Stream(ctx context.Context, opts cli.StreamOptions, args ...string) (*cli.Stream, error) {
	return e.cli.Stream(ctx, opts, e.argv(args)...)
}

// NotFound reports whether err is the engine saying there is no such thing.
func NotFound(err error) bool { return errors.Is(err, runtime.ErrNotFound) }

// Unavailable classes an error that has no class as runtime.ErrUnavailable:
// an engine that cannot be answered is unavailable, whatever the client
// said about it.
func Unavailable(err error) error {
	if runtime.Class(err) == nil {
		return runtime.Errorf(runtime.ErrUnavailable, "%w", err)
	}
	return err
}

// ContainerIDRE matches a full container ID.
var ContainerIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Output is how a client prints a list of JSON values.
type Output int

const (
	// JSONLines is one value a line (docker's --format '{{json .}}').
	JSONLines Output = iota
	// JSONArray is one array (podman's --format json); empty output is an
	// empty list.
	JSONArray
)

// Decode decodes out, printed in format o, into a T each value; what
// names the command in errors.
func Decode[T any](o Output, what string, out []byte) ([]T, error) {
	var all []T
	if o == JSONArray {
		if len(strings.TrimSpace(string(out))) == 0 {
			return nil, nil
		}
		if err := json.Unmarshal(out, &all); err != nil {
			return nil, fmt.Errorf("%s: parse output: %w", what, err)
		}
		return all, nil
	}
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
