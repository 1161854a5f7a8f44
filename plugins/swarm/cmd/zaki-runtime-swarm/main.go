// Command zaki-runtime-swarm is the Docker Swarm runtime plugin: it serves
// package swarm's Runtime to the agent over go-plugin (runtime.Serve). The
// agent launches it from its plugin dir; run by hand it only says that it
// is a plugin.
//
// Flags (each also an environment variable, the flag wins):
//
//	--socket PATH         a swarm manager's Engine API socket
//	                      (ZAKI_SWARM_SOCKET; default /var/run/docker.sock)
//	--prepare-image REF   the image PrepareDir's job runs, on every node
//	                      (ZAKI_SWARM_PREPARE_IMAGE; default
//	                      zaki/gateway-stub:latest)
//	--poll DURATION       how often events look at the tasks
//	                      (ZAKI_SWARM_POLL; default 1s)
//	--log-level LEVEL     debug, info, warn or error (default info); debug
//	                      logs one line per engine call (method, path,
//	                      status, duration: never a body)
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/plugins/swarm"
)

func main() {
	var cfg swarm.Config
	clirt.Main("zaki-runtime-swarm", func(fs *pflag.FlagSet) clirt.Build {
		fs.StringVar(&cfg.Socket, "socket", envOr("ZAKI_SWARM_SOCKET", swarm.DefaultSocket), "a swarm manager's Engine API socket")
		fs.StringVar(&cfg.PrepareImage, "prepare-image", envOr("ZAKI_SWARM_PREPARE_IMAGE", swarm.DefaultPrepareImage), "the image PrepareDir's job runs (on every node)")
		poll := fs.String("poll", envOr("ZAKI_SWARM_POLL", swarm.DefaultPoll.String()), "how often events look at the tasks")
		return func(log *slog.Logger) (clirt.Plugin, error) {
			d, err := time.ParseDuration(*poll)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("--poll %q: want a positive duration such as 1s", *poll)
			}
			cfg.Poll = d
			cfg.Logger = log
			log.Debug("swarm runtime serving", "socket", cfg.Socket)
			return swarm.New(cfg), nil
		}
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
