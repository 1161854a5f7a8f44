package clirt

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Plugin is a runtime a plugin binary serves.
type Plugin = runtime.Runtime

// Runner is a Plugin with background work, which Serve runs beside it
// for as long as the process lives.
type Runner interface {
	Run(ctx context.Context) error
}

// Build returns the runtime a plugin binary serves, given its logger.
type Build func(log *slog.Logger) (Plugin, error)

// Main is a plugin binary's main: it serves the runtime that flags, which
// adds the binary's own flags, configures (Serve), and exits 1 with
// "name: err" when that fails.
func Main(name string, flags func(fs *pflag.FlagSet) Build) {
	if err := Serve(context.Background(), name, os.Args[1:], flags); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Serve parses args with the binary's own flags and --log-level, builds
// the runtime with the logger, starts the runtime's background work if it has any (Runner)
// and serves it over go-plugin; runtime.Serve never returns, the process
// ends with the agent.
func Serve(ctx context.Context, name string, args []string, flags func(fs *pflag.FlagSet) Build) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	build := flags(fs)
	levelText := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelText)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	// The handler keeps the stderr the process started with: go-plugin
	// replaces os.Stderr once it serves.
	log := slog.New(runtime.NewLogHandler(os.Stderr, level))
	log.Debug("runtime plugin serving", "pid", os.Getpid())
	rt, err := build(log)
	if err != nil {
		return err
	}
	if r, ok := rt.(Runner); ok {
		go r.Run(ctx)
	}
	runtime.Serve(rt)
	return nil
}
