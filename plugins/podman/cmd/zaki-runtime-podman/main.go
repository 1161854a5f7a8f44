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
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/plugins/podman"
)

func main() { clirt.Main("zaki-runtime-podman", flags) }

// flags adds --podman, --iptables and --healthchecks to fs and returns
// the runtime they configure; its background work (podman.Podman.Run)
// lives as long as the process.
func flags(fs *pflag.FlagSet) clirt.Build {
	health := fs.String("healthchecks", podman.HealthAuto, "who runs the healthchecks: auto, plugin or engine")
	binary := fs.String("podman", "podman", "the podman client: a name looked up on PATH, or a path")
	iptables := fs.String("iptables", "iptables", "the iptables client: a name looked up on PATH, or a path")
	return func(log *slog.Logger) (clirt.Plugin, error) {
		switch *health {
		case podman.HealthAuto, podman.HealthPlugin, podman.HealthEngine:
		default:
			return nil, fmt.Errorf("--healthchecks %q: want auto, plugin or engine", *health)
		}
		log.Debug("podman runtime serving", "podman", *binary)
		cfg := podman.Config{Config: clirt.Config{Binary: *binary, Logger: log}, IPTables: *iptables, Healthchecks: *health}
		return podman.New(cfg), nil
	}
}
