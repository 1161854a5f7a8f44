package docker

import (
	"regexp"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// unknownOCIRuntime is what the engine says of a --runtime it does not
// know (one that daemon.json's "runtimes" lacks): the host is not set up
// for it, so ErrUnavailable.
const unknownOCIRuntime = `unknown runtime specified`

// unknownOCIRuntimeRE is Dialect.UnknownOCIRuntime.
var unknownOCIRuntimeRE = regexp.MustCompile(`(?i)` + unknownOCIRuntime)

// The docker client's error output, sorted into the runtime's error
// classes. The samples under testdata/stderr are what docker 28 said to
// engine 20.10.
var stderrClasses = clirt.Classes{
	{Class: runtime.ErrUnavailable, RE: regexp.MustCompile(`(?i)` +
		`cannot connect to the docker daemon` +
		`|is the docker daemon running` +
		`|error during connect` +
		`|permission denied while trying to connect to the docker daemon` +
		`|dial unix [^ ]+: connect: (connection refused|no such file or directory)` +
		`|connect: connection refused` +
		`|i/o timeout` +
		`|` + unknownOCIRuntime)},
	{Class: runtime.ErrNotFound, RE: regexp.MustCompile(`(?i)` +
		`no such (container|image|object|network)` +
		`|network [^ ]+ not found` +
		`|manifest unknown` +
		`|name unknown` +
		`|repository [^ ]+ not found` +
		`|repository does not exist`)},
	{Class: runtime.ErrAlreadyExists, RE: regexp.MustCompile(`(?i)` +
		`is already in use by container` +
		`|network with name [^ ]+ already exists` +
		`|already exists`)},
	// A precondition the caller must meet first (a running container is
	// not removed without force) is an invalid argument, as in the fake.
	{Class: runtime.ErrInvalidArgument, RE: regexp.MustCompile(`(?i)` +
		`invalid reference format` +
		`|you cannot remove a (running|paused|restarting) container` +
		`|container [^ ]+ is not running` +
		`|invalid argument ".*" for ".*" flag` +
		`|unknown (shorthand )?flag` +
		`|flag needs an argument` +
		`|invalid container name` +
		`|invalid restart policy` +
		`|invalid mount config` +
		`|invalid (host|container)?port` +
		`|invalid ip address` +
		`|minimum memory limit` +
		`|range of cpus is from` +
		`|conflicting options` +
		`|requires at least \d+ arguments?` +
		`|invalid (value|option|volume|tmpfs|ulimit|size)`)},
}

// classify returns the error class of a docker command's stderr, or nil.
// It is the one place where docker's words become error classes.
func classify(stderr string) error { return stderrClasses.Match(stderr) }
