// Command zakictl is the operator's command line for zaki-agent: it calls
// the agent's API over its Unix socket (--socket, $ZAKI_SOCKET, or
// /run/zaki-agent/agent.sock). Errors print as "zakictl: <the agent's
// message>" and exit 1; exec exits with its command's exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			stop()
			os.Exit(int(ec))
		}
		if !errors.Is(err, errReported) {
			fmt.Fprintf(os.Stderr, "zakictl: %v\n", err)
		}
		stop()
		os.Exit(1)
	}
}
