package apitest

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/golden"
	"gotest.tools/v3/icmd"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// CLI runs the built zakictl against an Env's socket and checks its
// outputs with golden files (testdata/<name>.golden of the calling test's
// package; -update rewrites them).
type CLI struct {
	T   *testing.T
	Bin string
	E   *Env
	Env []string // added to the environment (ZAKI_SOCKET is set)
	Dir string   // a temp dir of the test's files, shown as <dir>
	// Replace, when set, maps more run-specific text to stable names.
	Replace map[string]string
}

// NewCLI returns a CLI for e, with zakictl built once per test process.
func NewCLI(t *testing.T, e *Env) *CLI {
	return &CLI{T: t, Bin: testenv.Binary(t, "zakictl"), E: e, Env: []string{"ZAKI_SOCKET=" + e.Socket}}
}

// Cmd is a zakictl command line.
func (c *CLI) Cmd(args ...string) icmd.Cmd {
	cmd := icmd.Command(c.Bin, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Timeout = 60 * time.Second
	return cmd
}

// Run runs zakictl.
func (c *CLI) Run(args ...string) *icmd.Result {
	c.T.Helper()
	return icmd.RunCmd(c.Cmd(args...))
}

// Golden runs zakictl and checks its exit code, stdout and stderr,
// normalized, against testdata/<name>.golden.
func (c *CLI) Golden(name string, args ...string) *icmd.Result {
	c.T.Helper()
	res := c.Run(args...)
	table := false
	for _, a := range args {
		table = table || a == "ls" || a == "prune"
	}
	got := fmt.Sprintf("$ zakictl %s\n--- exit %d\n--- stdout\n%s--- stderr\n%s", c.Normalize(strings.Join(args, " "), false), res.ExitCode,
		c.Normalize(res.Stdout(), table), c.Normalize(res.Stderr(), false))
	golden.Assert(c.T, got, name+".golden")
	return res
}

var (
	idRE       = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	shortIDRE  = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	msRE       = regexp.MustCompile(`"(createdAtMs|lastUsedAtMs|startedAtMs|lastResyncMs|timeMs)": \d+`)
	hashRE     = regexp.MustCompile(`"configHash": "[^"]*"`)
	pidRE      = regexp.MustCompile(`("pid": |pid )\d+`)
	numRE      = regexp.MustCompile(`\b\d{4,5}\b`)
	durRE      = regexp.MustCompile(`(^|\s)\d+[smhd](\s|$)`)
	spacesRE   = regexp.MustCompile(` {2,}`)
	versionRE  = regexp.MustCompile(`(?m)^(zakictl|zaki-agent) \S+$`)
	jsonVerRE  = regexp.MustCompile(`"(version|zakictl|agent)": "[^"]*"`)
	minutesRE  = regexp.MustCompile(`"(idleMinutes|ageDays)": [0-9.e-]+`)
	agentVerRE = regexp.MustCompile(`agent:     [^,]+,`)
)

// Normalize replaces what changes from run to run: IDs, ports, times,
// pids, versions, temp paths; in a table, durations too, and columns are
// then separated by three spaces whatever their widths.
func (c *CLI) Normalize(s string, table bool) string {
	cfg := c.E.Agent.Config()
	lo, hi, _ := cfg.Instance.Ports()
	s = strings.ReplaceAll(s, c.E.Socket, "<socket>")
	if c.Dir != "" {
		s = strings.ReplaceAll(s, c.Dir, "<dir>")
	}
	for from, to := range c.Replace {
		s = strings.ReplaceAll(s, from, to)
	}
	s = idRE.ReplaceAllString(s, "<id>")
	s = shortIDRE.ReplaceAllString(s, "<id12>")
	s = msRE.ReplaceAllString(s, `"$1": <ms>`)
	s = hashRE.ReplaceAllString(s, `"configHash": "<hash>"`)
	s = pidRE.ReplaceAllString(s, "${1}<pid>")
	s = minutesRE.ReplaceAllString(s, `"$1": <n>`)
	s = versionRE.ReplaceAllString(s, "$1 <version>")
	s = jsonVerRE.ReplaceAllString(s, `"$1": "<version>"`)
	s = agentVerRE.ReplaceAllString(s, "agent:     <version>,")
	s = numRE.ReplaceAllStringFunc(s, func(m string) string {
		if n, _ := strconv.Atoi(m); n >= lo && n <= hi {
			return "<port>"
		}
		return m
	})
	var lines []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if table && strings.Contains(l, "   ") && !strings.HasPrefix(l, " ") { // a table row
			l = durRE.ReplaceAllString(l, "$1<dur>$2")
			l = durRE.ReplaceAllString(l, "$1<dur>$2")
			l = spacesRE.ReplaceAllString(l, "   ")
			l = strings.TrimRight(l, " \n") + "\n"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "")
}
