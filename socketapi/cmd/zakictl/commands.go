package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/version"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

var ensureCmd = &command{
	name: "ensure", args: "USER", nargs: 1,
	summary: "make USER's instance exist, run and accept connections",
	help: `
Waits until the gateway accepts connections on its port, then prints the
user, the outcome (created, started, reused or recreated) and the URL.
While an image is pulled its progress goes to standard error: a progress
bar on a terminal (layers done of layers seen), one line per status
otherwise.

Environment values are secrets: prefer --env-file (or --env NAME, which
takes the value from zakictl's own environment) to putting a value on the
command line, where other users of the host can read it.

An instance in use (hot) whose spec changed, or whose image tag was
rebuilt or pulled anew, is kept and marked stale until its next cold
ensure; --force recreates it now (a same-spec instance is still reused).

Examples:
  zakictl ensure alice
  zakictl ensure alice --force --env-file /etc/zaki/alice.env
  zakictl ensure alice --env-file /etc/zaki/alice.env --file openclaw.json=./openclaw.json
  zakictl ensure alice --seed-file workspace/MEMORY.md=./MEMORY.md
  OPENCLAW_TOKEN=... zakictl ensure alice --env OPENCLAW_TOKEN
  zakictl ensure bob --image alpine/openclaw:2026.1 --cpus 1 --memory 1g --pids 80 --label plan=pro`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		image := fs.String("image", "", "the image `REF` (must match the agent's allowedImages; default: the agent's)")
		envs := fs.StringArray("env", nil, "an environment variable, `NAME=VALUE`, or NAME alone to take the value from this environment (repeatable)")
		envFiles := fs.StringArray("env-file", nil, "a `FILE` of NAME=VALUE lines (# comments; a bare NAME takes its value from this environment) (repeatable)")
		files := fs.StringArray("file", nil, "a file for the user's data dir, `NAME=PATH`: the content of PATH, written as NAME, a path relative to the data dir, at every create (repeatable)")
		seedFiles := fs.StringArray("seed-file", nil, "a seed file, `NAME=PATH`: as --file, but written only where NAME does not exist yet, never overwritten (repeatable)")
		cpus := fs.Float64("cpus", 0, "how many `CPUS` (fractions allowed; no more than the agent's ceiling)")
		memory := fs.String("memory", "", "memory `SIZE`, e.g. 512m or 1g (no more than the agent's ceiling)")
		pids := fs.Int64("pids", 0, "process limit `N` (no more than the agent's ceiling)")
		labels := fs.StringArray("label", nil, "a container label, `KEY=VALUE` (repeatable)")
		force := fs.Bool("force", false, "apply a changed spec or image to an instance in use now (recreate it) instead of marking it stale")
		return func(ctx context.Context, args []string) error {
			spec := socketapi.InstanceSpec{Image: *image}
			env := map[string]string{}
			for _, f := range *envFiles {
				if err := readEnvFile(f, env); err != nil {
					return err
				}
			}
			for _, e := range *envs {
				k, v, set, err := envEntry(e)
				if err != nil {
					return fmt.Errorf("--env: %w", err)
				}
				if !set {
					return fmt.Errorf("--env %s: no such variable in this environment (give NAME=VALUE, or set it)", k)
				}
				env[k] = v
			}
			if len(env) > 0 {
				spec.Env = env
			}
			var err error
			if spec.Files, err = readSpecFiles("file", *files); err != nil {
				return err
			}
			if spec.SeedFiles, err = readSpecFiles("seed-file", *seedFiles); err != nil {
				return err
			}
			if *cpus != 0 || *memory != "" || *pids != 0 {
				spec.Resources = &socketapi.Resources{CPUs: *cpus, Memory: *memory, Pids: *pids}
			}
			for _, l := range *labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--label %q: want KEY=VALUE", l)
				}
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				spec.Labels[k] = v
			}
			p := newProgress(c.stderr)
			in, err := c.client.EnsureWith(ctx, args[0], spec, socketapi.ClientEnsureOptions{Force: *force, Progress: p.show})
			p.end()
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(in)
			}
			fmt.Fprintf(c.stdout, "%s %s %s\n", in.UserID, in.Outcome, in.URL)
			return nil
		}
	},
}

var lsCmd = &command{
	name: "ls", nargs: 0,
	summary: "list the instances",
	help: `
Columns: USER, STATE (running, paused, stopped or missing), PORT, IMAGE, AGE (since
created), IDLE (since last used), STALE ("yes" when the running container's
config differs from the last ensured one; it is recreated at its next cold
ensure).

Examples:
  zakictl ls
  zakictl ls --state running
  zakictl ls --json`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		state := fs.String("state", "", "only instances in this `STATE`: running, paused, stopped or missing")
		return func(ctx context.Context, _ []string) error {
			ins, err := c.client.List(ctx, *state)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(ins)
			}
			return writeTable(c.stdout, ins, time.Now())
		}
	},
}

var inspectCmd = &command{
	name: "inspect", args: "USER", nargs: 1,
	summary: "print USER's instance as JSON",
	help: `
Examples:
  zakictl inspect alice`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			in, err := c.client.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return c.printJSON(in)
		}
	},
}

// instanceCmd makes touch, stop and restart.
func instanceCmd(name, summary, help string, op func(*socketapi.Client) func(context.Context, string) (socketapi.Instance, error)) *command {
	return &command{
		name: name, args: "USER", nargs: 1, summary: summary, help: help,
		setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
			return func(ctx context.Context, args []string) error {
				in, err := op(c.client)(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(in)
				}
				fmt.Fprintf(c.stdout, "%s %s\n", in.UserID, in.State)
				return nil
			}
		},
	}
}

var touchCmd = instanceCmd("touch", "mark USER's instance as used now (pushes idle pruning back)", `
Examples:
  zakictl touch alice`, func(c *socketapi.Client) func(context.Context, string) (socketapi.Instance, error) { return c.Touch })

var stopCmd = instanceCmd("stop", "stop USER's instance, keeping its container", `
The next ensure starts it again.

Examples:
  zakictl stop alice`, func(c *socketapi.Client) func(context.Context, string) (socketapi.Instance, error) { return c.Stop })

var restartCmd = instanceCmd("restart", "restart USER's instance and wait until it is ready", `
Examples:
  zakictl restart alice`, func(c *socketapi.Client) func(context.Context, string) (socketapi.Instance, error) { return c.Restart })

var rmCmd = &command{
	name: "rm", args: "USER", nargs: 1,
	summary: "remove USER's container and registry entry",
	help: `
The user's data (their OpenClaw state) is kept unless --purge is given; the
user keeps their port.

Examples:
  zakictl rm alice
  zakictl rm alice --purge`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		purge := fs.Bool("purge", false, "delete the user's data too")
		return func(ctx context.Context, args []string) error {
			if err := c.client.Remove(ctx, args[0], *purge); err != nil {
				return err
			}
			if c.json {
				return c.printJSON(map[string]any{"userId": args[0], "removed": true, "purged": *purge})
			}
			if *purge {
				fmt.Fprintf(c.stdout, "removed %s (data purged)\n", args[0])
			} else {
				fmt.Fprintf(c.stdout, "removed %s (data kept)\n", args[0])
			}
			return nil
		}
	},
}

var pruneCmd = &command{
	name: "prune", nargs: 0,
	summary: "run pruning now: stop idle instances, remove old ones",
	help: `
Thresholds left out come from the agent's config; 0 turns a rule off;
fractions are allowed. User data is never deleted.

Examples:
  zakictl prune --dry-run
  zakictl prune --idle-hours 12
  zakictl prune --dry-run --idle-stop-minutes 30 --idle-hours 0 --max-age-days 0`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		dry := fs.Bool("dry-run", false, "report what would be done, do nothing")
		idlePause := fs.Float64("idle-pause-minutes", 0, "pause (freeze) running instances idle this many `MINUTES`")
		idleStop := fs.Float64("idle-stop-minutes", 0, "stop instances idle this many `MINUTES`")
		idleHours := fs.Float64("idle-hours", 0, "remove instances idle this many `HOURS`")
		maxAge := fs.Float64("max-age-days", 0, "remove instances older than this many `DAYS`")
		return func(ctx context.Context, _ []string) error {
			req := socketapi.PruneRequest{DryRun: *dry}
			if fs.Changed("idle-pause-minutes") {
				req.IdlePauseMinutes = idlePause
			}
			if fs.Changed("idle-stop-minutes") {
				req.IdleStopMinutes = idleStop
			}
			if fs.Changed("idle-hours") {
				req.IdleHours = idleHours
			}
			if fs.Changed("max-age-days") {
				req.MaxAgeDays = maxAge
			}
			res, err := c.client.Prune(ctx, req)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(res)
			}
			writePrune(c.stdout, res)
			if len(res.Failed) > 0 {
				return fmt.Errorf("%d instances could not be pruned (tried again at the next pass)", len(res.Failed))
			}
			return nil
		}
	},
}

var logsCmd = &command{
	name: "logs", args: "USER", nargs: 1,
	summary: "print USER's container output",
	help: `
Examples:
  zakictl logs alice --tail 100
  zakictl logs alice -f`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		follow := fs.BoolP("follow", "f", false, "keep printing new output until interrupted or the container stops")
		tail := fs.Int("tail", 0, "only the last `N` lines (default: all)")
		return func(ctx context.Context, args []string) error {
			if *tail < 0 {
				return fmt.Errorf("--tail %d: want a positive number of lines", *tail)
			}
			rc, err := c.client.Logs(ctx, args[0], socketapi.LogOptions{Tail: *tail, Follow: *follow})
			if err != nil {
				return err
			}
			defer rc.Close()
			if !c.json {
				_, err = io.Copy(c.stdout, rc)
				return streamErr(ctx, err)
			}
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			enc := json.NewEncoder(c.stdout)
			for sc.Scan() {
				if err := enc.Encode(map[string]string{"line": sc.Text()}); err != nil {
					return err
				}
			}
			return streamErr(ctx, sc.Err())
		}
	},
}

var eventsCmd = &command{
	name: "events", nargs: 0,
	summary: "follow the agent's lifecycle events until interrupted",
	help: `
Examples:
  zakictl events
  zakictl events --json | jq -c 'select(.userId == "alice")'`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, _ []string) error {
			es, err := c.client.Events(ctx)
			if err != nil {
				return err
			}
			defer es.Close()
			enc := json.NewEncoder(c.stdout)
			for {
				ev, err := es.Recv()
				if err != nil {
					if err == io.EOF {
						return nil
					}
					return streamErr(ctx, err)
				}
				if c.json {
					if err := enc.Encode(ev); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(c.stdout, formatEvent(ev))
			}
		}
	},
}

var healthCmd = &command{
	name: "health", nargs: 0,
	summary: "show the agent's, the runtime's and the engine's health",
	help: `
Exits 1 when the runtime or its engine is unavailable.

Examples:
  zakictl health
  zakictl health --json`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, _ []string) error {
			h, err := c.client.Health(ctx)
			if err != nil && h.Status == "" {
				return err
			}
			if c.json {
				if perr := c.printJSON(h); perr != nil {
					return perr
				}
			} else {
				writeHealth(c.stdout, h)
			}
			return err
		}
	},
}

var versionCmd = &command{
	name: "version", nargs: 0,
	summary: "print zakictl's and the agent's versions",
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, _ []string) error {
			h, err := c.client.Health(ctx)
			agentVersion := h.Agent.Version
			if c.json {
				v := map[string]string{"zakictl": version.Version}
				if agentVersion != "" {
					v["agent"] = agentVersion
				}
				if perr := c.printJSON(v); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintf(c.stdout, "zakictl %s\n", version.Version)
				if agentVersion != "" {
					fmt.Fprintf(c.stdout, "zaki-agent %s\n", agentVersion)
				}
			}
			if agentVersion == "" {
				return err
			}
			return nil
		}
	},
}

// streamErr hides the error of a stream the user interrupted.
func streamErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
