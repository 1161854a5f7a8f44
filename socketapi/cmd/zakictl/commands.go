package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/version"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

var ensureCmd = &command{
	name: "ensure", args: "USER...", nargs: -1,
	summary: "make USER's instance exist, run and accept connections",
	help: `
Waits until the gateway accepts connections on its port, then prints the
user, the outcome (created, started, reused or recreated) and the URL.
Several users are ensured in turn, each with the same flags.
While an image is pulled its progress goes to standard error: a progress
bar on a terminal (layers done of layers seen), one line per status
otherwise.

Environment values are secrets: prefer --env-file (or --env NAME, which
takes the value from zakictl's own environment) to putting a value on the
command line, where other users of the host can read it.

An instance in use (hot) whose spec changed, or whose image tag was
rebuilt or pulled anew, is kept and marked stale until its next cold
ensure, and the line says so ("reused ... (stale: ...)"); --force
recreates it now (a same-spec instance is still reused).

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
			return c.eachUser(ctx, args, func(ctx context.Context, user string) (any, error) {
				p := newProgress(c.stderr)
				in, err := c.client.EnsureWith(ctx, user, spec, socketapi.ClientEnsureOptions{Force: *force, Progress: p.show})
				p.end()
				return in, err
			}, func(v any) {
				in := v.(socketapi.Instance)
				fmt.Fprintf(c.stdout, "%s %s %s", in.UserID, in.Outcome, in.URL)
				if in.Stale {
					fmt.Fprint(c.stdout, " (stale: its spec or image changed while in use; applied at its next cold ensure, or now with --force)")
				}
				fmt.Fprintln(c.stdout)
			})
		}
	},
}

var lsCmd = &command{
	name: "ls", nargs: 0,
	summary: "list the instances",
	help: `
Columns: USER, STATE (running, paused, stopped or missing), PORT, IMAGE, AGE (since
created), IDLE (since last used), DATA (the disk space its data dir takes,
as last measured by the agent; "-" until then), STALE ("yes" when the running container's
config differs from the last ensured one; it is recreated at its next cold
ensure).

Every instance is listed, whatever its state (as docker ps -a). -q prints
only the user IDs, one a line, for a shell loop.

Examples:
  zakictl ls
  zakictl ls --state running
  zakictl ls -q --state stopped
  zakictl ls --json`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		state := fs.String("state", "", "only instances in this `STATE`: running, paused, stopped or missing")
		quiet := fs.BoolP("quiet", "q", false, "print only the user IDs")
		return func(ctx context.Context, _ []string) error {
			ins, err := c.client.List(ctx, *state)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(ins)
			}
			if *quiet {
				for _, in := range ins {
					fmt.Fprintln(c.stdout, in.UserID)
				}
				return nil
			}
			return writeTable(c.stdout, ins, time.Now())
		}
	},
}

var inspectCmd = &command{
	name: "inspect", args: "USER...", nargs: -1,
	summary: "print USER's instance as JSON",
	help: `
One user's instance prints as a JSON object; several users' as an array of
those found (each user not found is an error on standard error, and
zakictl exits 1).

Examples:
  zakictl inspect alice
  zakictl inspect alice bob | jq '.[].port'`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			c.json = true
			return c.eachUser(ctx, args, func(ctx context.Context, user string) (any, error) {
				return c.client.Get(ctx, user)
			}, nil)
		}
	},
}

// instanceCmd makes touch, stop and restart.
func instanceCmd(name, summary, help string, op func(*socketapi.Client) func(context.Context, string) (socketapi.Instance, error)) *command {
	return &command{
		name: name, args: "USER...", nargs: -1, summary: summary, help: help,
		setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
			return func(ctx context.Context, args []string) error {
				return c.eachUser(ctx, args, func(ctx context.Context, user string) (any, error) {
					return op(c.client)(ctx, user)
				}, func(v any) {
					in := v.(socketapi.Instance)
					fmt.Fprintf(c.stdout, "%s %s\n", in.UserID, in.State)
				})
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
  zakictl stop alice
  zakictl stop alice bob`, func(c *socketapi.Client) func(context.Context, string) (socketapi.Instance, error) { return c.Stop })

var restartCmd = instanceCmd("restart", "restart USER's instance and wait until it is ready", `
Examples:
  zakictl restart alice`, func(c *socketapi.Client) func(context.Context, string) (socketapi.Instance, error) { return c.Restart })

var rmCmd = &command{
	name: "rm", args: "USER...", nargs: -1,
	summary: "remove USER's container and registry entry",
	help: `
A running instance is removed too (stopped first), with or without
-f/--force. As with docker rm -f, --force also makes a user with no
instance no error (nothing is printed for it). The user's data (their
OpenClaw state) is kept unless --purge is given; the user keeps their port.

Examples:
  zakictl rm alice
  zakictl rm -f alice bob
  zakictl rm alice --purge
  zakictl rm $(zakictl ls -q --state stopped)`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		purge := fs.Bool("purge", false, "delete the user's data too")
		force := fs.BoolP("force", "f", false, "no error for a user with no instance (a running one is removed either way)")
		return func(ctx context.Context, args []string) error {
			return c.eachUser(ctx, args, func(ctx context.Context, user string) (any, error) {
				err := c.client.Remove(ctx, user, *purge)
				if *force && errors.Is(err, socketapi.ErrNotFound) {
					return map[string]any{"userId": user, "removed": false, "purged": false}, nil
				}
				if err != nil {
					return nil, err
				}
				return map[string]any{"userId": user, "removed": true, "purged": *purge}, nil
			}, func(v any) {
				if !v.(map[string]any)["removed"].(bool) {
					return
				}
				user := v.(map[string]any)["userId"]
				if *purge {
					fmt.Fprintf(c.stdout, "removed %s (data purged)\n", user)
				} else {
					fmt.Fprintf(c.stdout, "removed %s (data kept)\n", user)
				}
			})
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
As docker logs: --tail N keeps the last N lines (0: none, so that with -f
only new output shows; all, the default, keeps every line); --since keeps
the lines from a time on: an RFC 3339 time (2026-12-05T08:00:00Z), Unix
seconds (1764921600) or a duration back from now (10m, 2h, 1h30m).

Examples:
  zakictl logs alice --tail 100
  zakictl logs alice -f --tail 0
  zakictl logs alice --since 10m -t`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		follow := fs.BoolP("follow", "f", false, "keep printing new output until interrupted or the container stops")
		tail := fs.StringP("tail", "n", "all", "only the last `N` lines (0: none), or all")
		since := fs.String("since", "", "only the lines from `TIME` on: RFC 3339, Unix seconds, or a duration back from now (10m)")
		timestamps := fs.BoolP("timestamps", "t", false, "prefix each line with its time (RFC 3339)")
		return func(ctx context.Context, args []string) error {
			opts := socketapi.LogOptions{Follow: *follow, Timestamps: *timestamps}
			if *tail != "all" {
				n, err := strconv.Atoi(*tail)
				if err != nil || n < 0 {
					return fmt.Errorf("--tail %q: want a number of lines (0 or more) or all", *tail)
				}
				opts.Tail = &n
			}
			var err error
			if opts.Since, err = socketapi.ParseSince(*since, time.Now()); err != nil {
				return err // it names since and the forms
			}
			rc, err := c.client.Logs(ctx, args[0], opts)
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
