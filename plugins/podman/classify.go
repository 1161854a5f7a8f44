package podman

import (
	"regexp"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// unknownOCIRuntime is what podman says of a --runtime it does not know
// (one that containers.conf's [engine.runtimes] lacks): the host is not
// set up for it, so ErrUnavailable, ahead of "not found".
const unknownOCIRuntime = `OCI runtime "[^"]*" not found`

// unknownOCIRuntimeRE is Dialect.UnknownOCIRuntime.
var unknownOCIRuntimeRE = regexp.MustCompile(`(?i)` + unknownOCIRuntime)

// Podman's error output, sorted into the runtime's error classes. The
// samples under testdata/stderr are what podman 4.3 (Debian 12) said.
var stderrClasses = clirt.Classes{
	{Class: runtime.ErrUnavailable, RE: regexp.MustCompile(`(?i)` +
		`cannot connect to podman` +
		`|unable to connect to podman` +
		`|dial unix [^ ]+: connect: (connection refused|no such file or directory)` +
		`|connect: connection refused` +
		`|i/o timeout` +
		`|no route to host` +
		`|` + unknownOCIRuntime)},
	{Class: runtime.ErrNotFound, RE: regexp.MustCompile(`(?i)` +
		`no such (container|image|object|network)` +
		`|no container with name or id` +
		`|image not known` +
		`|network not found` +
		`|manifest unknown` +
		`|name unknown` +
		`|repository [^ ]+ not found` +
		`|did not resolve to an alias`)},
	{Class: runtime.ErrAlreadyExists, RE: regexp.MustCompile(`(?i)` +
		`is already in use by` +
		`|that name is already in use` +
		`|already exists`)},
	// A precondition the caller must meet first (a running container is
	// not removed without force) is an invalid argument, as in the fake.
	{Class: runtime.ErrInvalidArgument, RE: regexp.MustCompile(`(?i)` +
		`invalid reference format` +
		`|container state improper` +
		`|network is being used` +
		`|unknown (shorthand )?flag` +
		`|flag needs an argument` +
		`|invalid argument` +
		`|invalid value for` +
		`|invalid --[a-z-]+` +
		`|requires name=soft:hard` +
		`|is not a valid restart policy` +
		`|statfs [^ ]+: no such file or directory` +
		`|parsing host port` +
		`|port numbers must be between` +
		`|unsupported driver` +
		`|must be at least` +
		`|requires at least \d+ arguments?`)},
}

// logrusLine is one of podman's own log lines (time="..." level=...): its
// notes about this host (no systemd for healthcheck timers, a read-only
// cgroup controller), never the failure itself, which podman prints as
// "Error: ...". They are left out of the classification, so that "dial
// unix /run/systemd/private: connect: no such file or directory" does not
// read as podman being unreachable.
var logrusLine = regexp.MustCompile(`^time="[^"]*" level=`)

// classify returns the error class of a podman command's stderr, or nil.
// It is the one place where podman's words become error classes.
func classify(stderr string) error {
	var kept []string
	for line := range strings.SplitSeq(stderr, "\n") {
		if line = strings.TrimSpace(line); line != "" && !logrusLine.MatchString(line) {
			kept = append(kept, line)
		}
	}
	return stderrClasses.Match(strings.Join(kept, "\n"))
}

// classifyIPTables sorts iptables' error output: the xtables lock held
// for too long is unavailable; anything else is left unclassified.
func classifyIPTables(stderr string) error {
	if strings.Contains(stderr, "xtables lock") || strings.Contains(stderr, "Permission denied") {
		return runtime.ErrUnavailable
	}
	return nil
}
