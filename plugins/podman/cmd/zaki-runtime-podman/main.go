// Command zaki-runtime-podman is the podman-CLI runtime plugin: it serves
// package podman's Runtime to the agent over go-plugin (runtime.Serve),
// and runs its background work (podman.Podman.Run: the host facts of
// Info, and the containers' healthchecks on a host without systemd) for
// as long as it lives. The agent launches it from its plugin dir when its
// config says runtime = "podman"; run by hand it only says that it is a
// plugin.
//
// Flags:
//
//	--podman PATH        the podman client (default "podman", looked up on
//	                     PATH at every call)
//	--iptables PATH      the iptables client that turns inter-container
//	                     traffic off on a network (default "iptables")
//	--healthchecks MODE  who runs the healthchecks: auto (the plugin when
//	                     systemd is not PID 1, else podman's timers),
//	                     plugin or engine (default auto)
//	--log-level LEVEL    debug, info, warn or error (default info); debug
//	                     logs one line per podman command (subcommand,
//	                     exit code, duration: never arguments or
//	                     environment)
//
// Podman gets the plugin's environment, which is the agent's:
// CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF and the like there apply.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/plugins/podman"
	"github.com/zaki-platform/zaki-agent/runtime"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "zaki-runtime-podman: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("zaki-runtime-podman", pflag.ContinueOnError)
	binary := fs.String("podman", "podman", "the podman client: a name looked up on PATH, or a path")
	iptables := fs.String("iptables", "iptables", "the iptables client: a name looked up on PATH, or a path")
	health := fs.String("healthchecks", podman.HealthAuto, "who runs the healthchecks: auto, plugin or engine")
	levelText := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch *health {
	case podman.HealthAuto, podman.HealthPlugin, podman.HealthEngine:
	default:
		return fmt.Errorf("--healthchecks %q: want auto, plugin or engine", *health)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelText)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	// The handler keeps the stderr the process started with: go-plugin
	// replaces os.Stderr once it serves.
	log := slog.New(runtime.NewLogHandler(os.Stderr, level))
	log.Debug("podman runtime serving", "pid", os.Getpid(), "podman", *binary)
	p := podman.New(podman.Config{Binary: *binary, IPTables: *iptables, Healthchecks: *health, Logger: log})
	// A create cut short by a killed plugin leaves its env file behind.
	if n := p.SweepEnvFiles(10 * time.Minute); n > 0 {
		log.Info("removed env files of interrupted creates", "count", n)
	}
	// The background work lives as long as the process: runtime.Serve
	// never returns, and the process ends with the agent.
	go p.Run(ctx)
	runtime.Serve(p)
	return nil
}
