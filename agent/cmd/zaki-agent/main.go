// Command zaki-agent is the host agent of the Zaki platform: it owns the
// per-user OpenClaw gateway containers of one host and serves the API on a
// Unix socket. See the README for the API and `zaki-agent --help` for the
// settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

func main() {
	tuneGC()
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "zaki-agent: %v\n", err)
		os.Exit(1)
	}
}

// run is the whole agent; see daemon.go.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		if a == "--version" || a == "-version" {
			return printVersion(stdout)
		}
	}
	cfg, file, err := loadConfig(args, stdout)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, file, args, stderr)
}
