// Command zaki-runtime-docker is the docker-CLI runtime plugin: it serves
// package docker's Runtime to the agent over go-plugin (runtime.Serve). The
// agent launches it from its plugin dir; run by hand it only says that it
// is a plugin.
//
// Flags:
//
//	--docker PATH      the docker client (default "docker", looked up on
//	                   PATH at every call)
//	--log-level LEVEL  debug, info, warn or error (default info); debug
//	                   logs one line per docker command (subcommand, exit
//	                   code, duration: never arguments or environment)
//
// The docker client gets the plugin's environment, which is the agent's:
// DOCKER_HOST and DOCKER_CONFIG there apply.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/plugins/docker"
	"github.com/zaki-platform/zaki-agent/runtime"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "zaki-runtime-docker: %v\n", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string) error {
	fs := pflag.NewFlagSet("zaki-runtime-docker", pflag.ContinueOnError)
	binary := fs.String("docker", "docker", "the docker client: a name looked up on PATH, or a path")
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
	log.Debug("docker runtime serving", "pid", os.Getpid(), "docker", *binary)
	d := docker.New(docker.Config{Binary: *binary, Logger: log})
	// A create cut short by a killed plugin leaves its env file behind.
	if n := d.SweepEnvFiles(10 * time.Minute); n > 0 {
		log.Info("removed env files of interrupted creates", "count", n)
	}
	runtime.Serve(d)
	return nil
}
