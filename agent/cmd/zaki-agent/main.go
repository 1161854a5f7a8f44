// Command zaki-agent is the host agent of the Zaki platform: it owns the
// per-user OpenClaw gateway containers of one host and serves the API on a
// Unix socket. See the README for the API and `zaki-agent --help` for the
// settings; package agent/daemon is the process itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
)

func main() {
	tuneGC()
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "zaki-agent: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	return daemon.Run(ctx, args, os.Stdout, os.Stderr)
}
