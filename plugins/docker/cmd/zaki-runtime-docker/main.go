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
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/plugins/docker"
	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
)

func main() {
	var cfg docker.Config
	clirt.Main("zaki-runtime-docker", func(fs *pflag.FlagSet) clirt.Build {
		fs.StringVar(&cfg.Binary, "docker", "docker", "the docker client: a name looked up on PATH, or a path")
		return func(log *slog.Logger) (clirt.Plugin, error) {
			log.Debug("docker runtime serving", "docker", cfg.Binary)
			cfg.Logger = log
			return docker.New(cfg), nil
		}
	})
}
