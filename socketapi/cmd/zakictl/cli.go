package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/version"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// errReported is returned once the error has been told to the user.
var errReported = errors.New("reported")

// cli is one invocation of zakictl.
type cli struct {
	stdout, stderr io.Writer
	socket         string
	json           bool
	help           bool
	client         *socketapi.Client
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the positional arguments, as in the usage line
	nargs   int    // how many positional arguments it takes; -n: at least n
	summary string
	help    string // more about it, with examples
	hidden  bool
	setup   func(c *cli, fs *pflag.FlagSet) func(ctx context.Context, args []string) error
}

func commands() []*command {
	return []*command{
		ensureCmd, pullCmd, lsCmd, inspectCmd, touchCmd, stopCmd, restartCmd, rmCmd,
		pruneCmd, importCmd, logsCmd, execCmd, eventsCmd, healthCmd, versionCmd,
	}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs zakictl with args (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &cli{stdout: stdout, stderr: stderr}
	global := pflag.NewFlagSet("zakictl", pflag.ContinueOnError)
	global.SetInterspersed(false)
	global.SetOutput(io.Discard)
	c.globalFlags(global)
	help := global.BoolP("help", "h", false, "show this help")
	showVersion := global.BoolP("version", "v", false, "print zakictl's version")
	if err := global.Parse(args); err != nil {
		return fmt.Errorf("%v (see zakictl --help)", err)
	}
	rest := global.Args()
	switch {
	case *showVersion:
		fmt.Fprintf(stdout, "zakictl %s\n", version.Version)
		return nil
	case *help || len(rest) == 0:
		// As docker: no command prints the help and succeeds.
		c.usage(stdout, global)
		return nil
	case rest[0] == "help":
		if len(rest) > 1 {
			if cmd := findCommand(rest[1]); cmd != nil {
				fs, _ := c.prepare(cmd)
				c.commandUsage(stdout, cmd, fs)
				return nil
			}
			return fmt.Errorf("unknown command %q (see zakictl --help)", rest[1])
		}
		c.usage(stdout, global)
		return nil
	}
	cmd := findCommand(rest[0])
	if cmd == nil {
		return fmt.Errorf("unknown command %q (see zakictl --help)", rest[0])
	}
	fs, do := c.prepare(cmd)
	if err := fs.Parse(rest[1:]); err != nil {
		return fmt.Errorf("%s: %v (see zakictl %s --help)", cmd.name, err, cmd.name)
	}
	if c.help {
		c.commandUsage(stdout, cmd, fs)
		return nil
	}
	if cmd.nargs < 0 && fs.NArg() < -cmd.nargs {
		return fmt.Errorf("%s needs %s (see zakictl %s --help)", cmd.name, cmd.args, cmd.name)
	}
	if cmd.nargs >= 0 && fs.NArg() != cmd.nargs {
		switch {
		case cmd.nargs == 0:
			return fmt.Errorf("%s takes no arguments, got %q (see zakictl %s --help)", cmd.name, strings.Join(fs.Args(), " "), cmd.name)
		case fs.NArg() < cmd.nargs:
			return fmt.Errorf("%s needs %s (see zakictl %s --help)", cmd.name, cmd.args, cmd.name)
		default:
			return fmt.Errorf("%s takes only %s, got %q (see zakictl %s --help)", cmd.name, cmd.args, strings.Join(fs.Args(), " "), cmd.name)
		}
	}
	c.client = &socketapi.Client{Socket: c.socket, UserAgent: "zakictl/" + version.Version}
	return do(ctx, fs.Args())
}

// globalFlags are accepted before the command and after it.
func (c *cli) globalFlags(fs *pflag.FlagSet) {
	// Given before the command, they are the defaults after it.
	fs.StringVar(&c.socket, "socket", c.socket, "the agent's socket `PATH` (default $"+socketapi.SocketEnv+", or "+socketapi.DefaultSocket+")")
	fs.BoolVar(&c.json, "json", c.json, "print JSON instead of text")
}

// prepare makes cmd's flag set: its own flags, then the global ones.
func (c *cli) prepare(cmd *command) (*pflag.FlagSet, func(context.Context, []string) error) {
	fs := pflag.NewFlagSet("zakictl "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	do := cmd.setup(c, fs)
	c.globalFlags(fs)
	fs.BoolVarP(&c.help, "help", "h", false, "show this help")
	return fs, do
}

func (c *cli) usage(w io.Writer, global *pflag.FlagSet) {
	fmt.Fprint(w, `zakictl: control zaki-agent, the per-user OpenClaw gateway instances of this host.

Usage:
  zakictl [--socket PATH] [--json] COMMAND [ARGS] [FLAGS]

Commands:
`)
	for _, cmd := range commands() {
		if cmd.hidden {
			continue
		}
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Flags (before or after the command):
      --socket PATH   the agent's socket (default $ZAKI_SOCKET, or /run/zaki-agent/agent.sock)
      --json          print JSON instead of text
  -h, --help          show help (zakictl COMMAND --help for a command's)
  -v, --version       print zakictl's version

Errors print as "zakictl: <message>" on standard error and exit 1
(exec exits with its command's exit code). Commands that take USER...
run for each user in turn: a failure is printed and the next user run,
and zakictl exits 1 if any failed.
`)
}

func (c *cli) commandUsage(w io.Writer, cmd *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: zakictl %s", cmd.name)
	if cmd.args != "" {
		fmt.Fprintf(w, " %s", cmd.args)
	}
	fmt.Fprintf(w, " [FLAGS]\n\n%s\n", cmd.summary)
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsagesWrapped(100))
}

// eachUser runs op for each of users in turn, as docker does for several
// containers: a failure is printed ("zakictl: <message>") and the next
// user is run, and errReported is returned at the end if any failed (one
// user's error is returned as it is). text prints a result as it comes;
// with --json, one user's result prints as an object, several users' as
// an array of those that succeeded.
func (c *cli) eachUser(ctx context.Context, users []string, op func(ctx context.Context, user string) (any, error), text func(v any)) error {
	if len(users) == 1 {
		v, err := op(ctx, users[0])
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(v)
		}
		text(v)
		return nil
	}
	results := []any{}
	failed := false
	for _, u := range users {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v, err := op(ctx, u)
		if err != nil {
			failed = true
			msg := err.Error()
			if !strings.Contains(msg, `"`+u+`"`) {
				msg = u + ": " + msg
			}
			fmt.Fprintf(c.stderr, "zakictl: %s\n", msg)
			continue
		}
		if c.json {
			results = append(results, v)
		} else {
			text(v)
		}
	}
	if c.json {
		if err := c.printJSON(results); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// printJSON prints v as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
