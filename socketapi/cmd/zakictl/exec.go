package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// exitCode is the exit code zakictl ends with when the command it ran
// (exec) failed: its output is printed, there is nothing more to say.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

var execCmd = &command{
	name: "exec", args: "USER -- CMD...", nargs: -2,
	summary: "run a command in USER's running instance",
	help: `
The command runs as the instance's own user, without a shell, a TTY or
stdin. Its stdout and stderr are printed to zakictl's (each cut at 1 MiB),
and zakictl exits with its exit code. Past the timeout the command is
killed (the agent answers 504 timeout). Flags go before USER; everything
after "--" is the command.

Examples:
  zakictl exec alice -- find /home/node/.openclaw -name '*.lock' -mmin +30 -delete
  zakictl exec --timeout 5 alice -- /gateway-stub -exec echo hi`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		fs.SetInterspersed(false)
		timeout := fs.Float64("timeout", 0, "kill the command after `SECONDS` (default: the agent's, 30)")
		return func(ctx context.Context, args []string) error {
			cmd := args[1:]
			if cmd[0] == "--" {
				cmd = cmd[1:]
			}
			if len(cmd) == 0 {
				return fmt.Errorf("exec needs a command after USER -- (see zakictl exec --help)")
			}
			res, err := c.client.Exec(ctx, args[0], socketapi.ExecRequest{Cmd: cmd, TimeoutSeconds: *timeout})
			if err != nil {
				return err
			}
			if c.json {
				if err := c.printJSON(res); err != nil {
					return err
				}
			} else {
				fmt.Fprint(c.stdout, res.Stdout)
				fmt.Fprint(c.stderr, res.Stderr)
				if res.Truncated {
					fmt.Fprintln(c.stderr, "zakictl: output cut at 1 MiB per stream")
				}
			}
			if res.ExitCode != 0 {
				return exitCode(res.ExitCode)
			}
			return nil
		}
	},
}
