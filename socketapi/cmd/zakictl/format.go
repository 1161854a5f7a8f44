package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// writeTable prints instances as a table, like docker ps.
func writeTable(w io.Writer, ins []socketapi.Instance, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "USER\tSTATE\tPORT\tIMAGE\tAGE\tIDLE\tDATA\tSTALE")
	for _, in := range ins {
		stale := ""
		if in.Stale {
			stale = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", in.UserID, in.State, in.Port, in.Image,
			since(now, in.CreatedAtMs), since(now, in.LastUsedAtMs), sizeText(in.DataBytes), stale)
	}
	return tw.Flush()
}

// sizeText is a size in bytes, short and binary: 512B, 4.0K, 340M, 1.2G;
// "-" when not known (0: not measured yet).
func sizeText(n int64) string {
	if n <= 0 {
		return "-"
	}
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f < 10 {
		return fmt.Sprintf("%.1f%c", f, units[i])
	}
	return fmt.Sprintf("%.0f%c", f, units[i])
}

// since is the time from ms (unix milliseconds) to now, short: 45s, 12m,
// 5h, 3d; "-" when unknown.
func since(now time.Time, ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return durText(now.Sub(time.UnixMilli(ms)))
}

// durText is a duration, short: 45s, 12m, 5h, 3d.
func durText(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// writePrune prints what a prune pass did (or would do).
func writePrune(w io.Writer, res socketapi.PruneResult) {
	verb := map[string]string{"paused": "paused", "stopped": "stopped", "removed": "removed", "staled": "kept stale", "failed": "failed"}
	if res.DryRun {
		verb = map[string]string{"paused": "would pause", "stopped": "would stop", "removed": "would remove", "staled": "would keep stale", "failed": "would fail"}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	any := false
	for _, g := range []struct {
		key   string
		items []socketapi.PruneItem
	}{{"paused", res.Paused}, {"stopped", res.Stopped}, {"removed", res.Removed}, {"staled", res.Staled}, {"failed", res.Failed}} {
		for _, it := range g.items {
			if !any {
				fmt.Fprintln(tw, "ACTION\tUSER\tREASON\tIDLE\tAGE\tERROR")
				any = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", verb[g.key], it.UserID, it.Reason,
				minutesText(it.IdleMinutes), daysText(it.AgeDays), it.Error)
		}
	}
	tw.Flush()
	summary := fmt.Sprintf("%d stopped, %d removed, %d failed", len(res.Stopped), len(res.Removed), len(res.Failed))
	if res.DryRun {
		summary = fmt.Sprintf("dry run: %d would be stopped, %d removed", len(res.Stopped), len(res.Removed))
	}
	if len(res.Paused) > 0 {
		summary += fmt.Sprintf(", %d paused", len(res.Paused))
	}
	if len(res.Staled) > 0 {
		// Old instances kept because they are hot, renewed when cold.
		summary += fmt.Sprintf(", %d kept stale", len(res.Staled))
	}
	fmt.Fprintln(w, summary)
}

func minutesText(m float64) string { return durText(time.Duration(m * float64(time.Minute))) }

func daysText(d float64) string { return durText(time.Duration(d * 24 * float64(time.Hour))) }

// formatEvent is one event on one line.
func formatEvent(ev socketapi.Event) string {
	var b strings.Builder
	b.WriteString(time.UnixMilli(ev.TimeMs).UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteString(" " + ev.Type)
	if ev.UserID != "" {
		b.WriteString(" " + ev.UserID)
	}
	for _, kv := range [][2]string{{"image", ev.Image}, {"outcome", ev.Outcome}, {"container", short(ev.ContainerID)}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if ev.ExitCode != nil {
		fmt.Fprintf(&b, " exitCode=%d", *ev.ExitCode)
	}
	if ev.Message != "" {
		fmt.Fprintf(&b, " message=%q", ev.Message)
	}
	if ev.Dropped > 0 {
		fmt.Fprintf(&b, " (%d events dropped before this one)", ev.Dropped)
	}
	return b.String()
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// writeHealth prints the health document.
func writeHealth(w io.Writer, h socketapi.Health) {
	fmt.Fprintf(w, "status:    %s\n", h.Status)
	ready := "ready"
	if !h.Agent.Ready {
		ready = "not ready"
	}
	fmt.Fprintf(w, "agent:     %s, pid %d, %s, loops %s\n", h.Agent.Version, h.Agent.Pid, ready, h.Agent.Loops)
	rt := fmt.Sprintf("%s, ", h.Runtime.Name)
	if h.Runtime.Up {
		rt += "up"
	} else {
		rt += "down"
	}
	fmt.Fprintf(w, "runtime:   %s, %d restarts\n", rt, h.Runtime.Restarts)
	if e := h.Runtime.Engine; e != nil {
		fmt.Fprintf(w, "engine:    %s %s (%s/%s, cgroup v%s)\n", e.Runtime, e.EngineVersion, e.OS, e.Arch, e.CgroupVersion)
	}
	if h.Runtime.Error != "" {
		fmt.Fprintf(w, "error:     %s\n", h.Runtime.Error)
	}
	c := h.Counts
	fmt.Fprintf(w, "instances: %d (%d running, %d paused, %d stopped, %d missing)\n", c.Total, c.Running, c.Paused, c.Stopped, c.Missing)
}

// readSpecFiles reads the NAME=PATH values of a --file-like flag into a
// map of NAME to the content of PATH (nil when there are none).
func readSpecFiles(flag string, values []string) (map[string]string, error) {
	var out map[string]string
	for _, f := range values {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=PATH", flag, f)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flag, name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(b)
	}
	return out, nil
}

// readEnvFile adds the NAME=VALUE lines of file to env: blank lines and
// lines starting with # are skipped, a bare NAME takes its value from
// zakictl's own environment (and is skipped when unset), as docker's
// --env-file does. Values are taken as they are: no quotes, no escapes.
func readEnvFile(file string, env map[string]string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, set, err := envEntry(strings.TrimLeft(line, " \t"))
		if err != nil {
			return fmt.Errorf("--env-file %s:%d: %w", file, n, err)
		}
		if set {
			env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--env-file %s: %w", file, err)
	}
	return nil
}

// envEntry parses NAME=VALUE, or NAME alone: its value from zakictl's
// environment (set is false when it has none). The error never holds the
// value.
func envEntry(s string) (name, value string, set bool, err error) {
	k, v, hasValue := strings.Cut(s, "=")
	if k == "" || strings.ContainsAny(k, " \t") {
		return "", "", false, fmt.Errorf("want NAME=VALUE or NAME, got %q", firstChars(s))
	}
	if !hasValue {
		v, hasValue = os.LookupEnv(k)
	}
	return k, v, hasValue, nil
}

func firstChars(s string) string {
	k, _, _ := strings.Cut(s, "=")
	if len(k) > 20 {
		k = k[:20]
	}
	return k
}
