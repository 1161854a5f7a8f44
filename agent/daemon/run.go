package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/version"
)

// Run is the whole zaki-agent command: it prints the version for
// --version, the usage for --help (returning pflag.ErrHelp), and otherwise
// reads the config and serves until ctx ends or SIGTERM/SIGINT.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "--version" || a == "-version" {
			return printVersion(stdout)
		}
	}
	cfg, file, err := ConfigFromArgs("zaki-agent", args, usage(stdout))
	if err != nil {
		return err
	}
	return serve(ctx, cfg, file, args, stderr)
}

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "zaki-agent %s\n", version.Version)
	return err
}

// usage prints --help to w.
func usage(w io.Writer) func(*pflag.FlagSet) {
	return func(fset *pflag.FlagSet) {
		fmt.Fprintf(w, `Usage: zaki-agent [--config FILE] [--KEY=VALUE ...]

zaki-agent owns the per-user OpenClaw gateway containers of this host and
serves the API (HTTP/1.1 + JSON) on a Unix socket. It normally runs under
systemd (zaki-agent.service, started by zaki-agent.socket).

Settings come from the config file (TOML, every key documented in the
packaged %s) and from flags, which win. Each flag is a config
key by its path, in kebab or camel case: --instance.resources.cpu-shares=256
is [instance.resources] cpuShares = 256.

Flags:
%s
Examples:
  zaki-agent                                  # /etc/zaki-agent/config.toml
  zaki-agent --config ./dev.toml --log-level debug
  zaki-agent --version

Signals: SIGTERM/SIGINT stop the agent (instances keep running); SIGHUP
reloads the config file. With ZAKI_AGENT_PROFILE_DIR set (a debugging aid),
the start-up is CPU-profiled into that directory and each SIGUSR1 starts or
ends a CPU profile there.
`, DefaultConfigPath, fset.FlagUsages())
	}
}
