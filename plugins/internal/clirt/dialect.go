package clirt

import (
	"context"
	"io"
	"regexp"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Dialect is what one command-line client says its own way. Fields marked
// optional may be left zero; the others are required.
type Dialect struct {
	// Name is the client's name ("docker"): the message of each command's
	// debug line, and how errors name it.
	Name string
	// Classify returns the error class of a failed command's stderr
	// (runtime.ErrNotFound, ...), or nil (see Classes).
	Classify func(stderr string) error
	// Argv, optional, rewrites every command's arguments before they run
	// (podman's global options go after the subcommand).
	Argv func(args []string) []string
	// Output is how ps and inspect print their JSON.
	Output Output

	// UnknownOCIRuntime matches what the client says when the engine does
	// not know the OCI runtime a container asks for (--runtime): Create
	// then returns runtime.UnknownOCIRuntime.
	UnknownOCIRuntime *regexp.Regexp

	// CreateArgs returns the arguments of `create` up to (not including)
	// the env file and the image: "create", the options of
	// cliargs.CreateFlags with the client's healthcheck flags, and the
	// client's own options. Its errors are returned as they are.
	CreateArgs func(ctx context.Context, spec runtime.ContainerSpec) ([]string, error)

	// Timeout is how the client's stop, restart and rm take a stop
	// timeout in whole seconds.
	Timeout func(seconds int) []string
	// Ignore, optional, are the options of stop and rm without which one
	// missing container fails the whole command.
	Ignore []string
	// ForceRemove are the options of a forced rm.
	ForceRemove []string
	// ThawBeforeStop, optional, is for a client that neither stops nor
	// restarts a paused container: a stop or restart that fails is tried
	// again after an unpause of those that were paused.
	ThawBeforeStop bool
	// StopBeforeForceRemove makes a forced Remove stop the containers
	// first, at once (a timeout of 0).
	StopBeforeForceRemove bool
	// Note, optional, reports whether a line of a batch command's stderr
	// is one of the client's notes rather than a failure.
	Note func(line string) bool
	// Identify, optional, is for a client that names a failed container of
	// a batch otherwise than as given: it returns how each ref that still
	// names a container is known (refs gone are left out). Without it,
	// every ref is taken to be there, named as given.
	Identify func(ctx context.Context, refs []string) (map[string]Identity, error)

	// ListArgs is `ps` of all containers with full IDs, as JSON; the label
	// filters follow it.
	ListArgs []string
	// InspectArgs inspects containers as JSON, up to the "--" before the
	// refs.
	InspectArgs []string
	// IDArgs prints a container's full ID, bare or as a JSON string, up to
	// the "--" before the ref.
	IDArgs []string
	// States, optional, maps the client's container states onto the
	// runtime's; a state it lacks is taken as it is.
	States map[string]runtime.State
	// ParseShellHealth, optional, recognises a shell-form healthcheck
	// command that Create wrote for an exec-form test, and returns the
	// test.
	ParseShellHealth func(cmd string) (argv []string, ok bool)
	// ReadBack, optional, corrects the common reading of one inspected
	// container (Inspect.Container) where the client stores a field its
	// own way.
	ReadBack func(j *Inspect, c *runtime.Container)

	// FollowTail, optional, streams a followed tail (Follow with a Tail)
	// of the container id, for a client whose own one is not cut at the
	// moment of the call.
	FollowTail func(ctx context.Context, id string, opts runtime.LogOptions) (io.ReadCloser, error)

	// EventArgs is the `events` command of container events from now on,
	// given the label selector and its filters as `ps` takes them
	// (cliargs.LabelFilters).
	EventArgs func(now time.Time, labels map[string]string, filters []string) []string
	// ParseEvent reads one line of EventArgs' output; ok is false for an
	// event the runtime does not follow.
	ParseEvent func(line []byte) (ev runtime.Event, ok bool, err error)
	// MatchLabels makes the stream match the label selector itself, for a
	// client whose label filter is not docker's.
	MatchLabels bool
	// ImageEvents are the arguments that add image events to EventArgs'
	// (given no label selector then: the stream matches it itself, on
	// container events only). ParseEvent reads them as Event.Image.
	ImageEvents []string

	// ICCOff is the `network create` option that turns inter-container
	// traffic off.
	ICCOff string
	// CreateNetwork, optional, runs `network create` with args (instead of
	// RunClient), for a client that needs retries.
	CreateNetwork func(ctx context.Context, args []string) error

	// ImageIDArgs print the ID of an image (bare or as a JSON string), and
	// fail as not found for an absent one; the reference follows.
	ImageIDArgs []string
	// PullArgs is the command that pulls ref.
	PullArgs func(ref string) []string
	// PullOnStderr says the client prints pull progress on stderr: the
	// stream then merges both, and a failure is classified from its last
	// lines.
	PullOnStderr bool

	// ExecRefused tells a failed `exec` that the client refused (no such
	// container, one not running) from a command that ran and exited
	// non-zero.
	ExecRefused ExecRefusal
	// TopArgs follow `top -- REF`: the client then prints a header line
	// and a line per process of the container: its host PID (when
	// TopHostPID), its PID and parent PID (host's or container's, alike),
	// and its arguments.
	TopArgs    []string
	TopHostPID bool
	// MainPIDArgs print the host PID of a container's main process, up to
	// the "--" before the ref.
	MainPIDArgs []string
}

// Identity is how a container is known: its full ID and its name.
type Identity struct{ ID, Name string }

// ExecRefusal is how a client refuses an exec: with one of Codes and a
// stderr that starts with one of Prefixes. A refusal whose stderr holds
// one of NotRunning is runtime.ErrConflict; others are classified. (A
// command of the user's that exits with such a code and prints such a
// line is taken for a refusal: the client gives no other sign.)
type ExecRefusal struct {
	Codes      []int
	Prefixes   []string
	NotRunning []string
}
