package runtime

import (
	"context"
	"io"
	"slices"
	"time"
)

// Runtime is the contract between the agent and a container engine. Every
// implementation (the docker-CLI plugin, the in-memory fake, the gRPC client
// shim that reaches a plugin process) behaves the same way, which
// runtimetest.Run checks:
//
//   - every method takes ctx first and gives up when it is done; a deadline
//     that passes surfaces as ErrTimeout;
//   - errors belong to the classes in errors.go, whatever the engine said;
//   - stopping what is stopped and removing what is gone succeed (as in the
//     CRI contract); creating a name that exists is ErrAlreadyExists;
//   - a spec that fails Validate is ErrInvalidArgument and reaches no engine.
//
// Container references (the ref arguments) are a container's ID or its name.
type Runtime interface {
	// Info reports the runtime and the engine behind it. It is the health
	// probe: ErrUnavailable when the engine cannot be reached.
	Info(ctx context.Context) (Info, error)

	// ImageID returns the ID of the image ref names in the engine's image
	// store (its content address, "sha256:<hex>"), "" when there is none.
	// A tag rebuilt or pulled anew resolves to another ID.
	ImageID(ctx context.Context, ref string) (string, error)
	// PullImage pulls ref, calling progress (when not nil) with each status
	// line the engine reports, in order, from the calling goroutine's point
	// of view: progress is never called after PullImage returns.
	PullImage(ctx context.Context, ref string, progress func(PullProgress)) error

	// EnsureNetwork creates the network unless one of that name exists.
	EnsureNetwork(ctx context.Context, spec NetworkSpec) error
	// RemoveNetwork removes a network; a network that does not exist is not
	// an error.
	RemoveNetwork(ctx context.Context, name string) error

	// Create creates (does not start) a container and returns its ID.
	Create(ctx context.Context, spec ContainerSpec) (string, error)
	// Start starts a container; starting a running one is not an error.
	Start(ctx context.Context, ref string) error
	// Stop stops the containers (paused ones too), each given timeout to
	// exit before it is killed, in as few engine calls as the engine
	// allows. Stopped or
	// missing containers are not an error. When some containers fail, the
	// error is a *BatchError naming each.
	Stop(ctx context.Context, refs []string, timeout time.Duration) error
	// Restart stops (with timeout) and starts a container; a paused one
	// too.
	Restart(ctx context.Context, ref string, timeout time.Duration) error
	// Pause freezes a running container's processes (the engine's pause:
	// the cgroup freezer): its memory is kept, it uses no CPU, its port
	// accepts connections that it does not answer. Pausing a paused
	// container is not an error; ErrNotFound when there is no such
	// container, ErrConflict when it is not running.
	Pause(ctx context.Context, ref string) error
	// Resume thaws a paused container. Resuming a running one is not an
	// error; ErrNotFound when there is no such container, ErrConflict when
	// it is neither paused nor running. Stop, Restart, Remove (with force)
	// and Logs work on a paused container as on a running one; Exec is
	// ErrConflict.
	Resume(ctx context.Context, ref string) error
	// Remove removes the containers (force: running ones too), in as few
	// engine calls as the engine allows. Missing containers are not an
	// error. When some containers fail, the error is a *BatchError.
	Remove(ctx context.Context, refs []string, opts RemoveOptions) error

	// Inspect returns one container; ErrNotFound when there is none.
	Inspect(ctx context.Context, ref string) (Container, error)
	// List returns the containers whose labels match opts.Labels, running
	// or not, fully inspected, in as few engine calls as the engine allows.
	List(ctx context.Context, opts ListOptions) ([]Container, error)

	// Events streams container events (and, with opts.Images, image
	// events) from now on until ctx ends or the
	// stream is closed.
	Events(ctx context.Context, opts EventOptions) (EventStream, error)
	// Logs streams a container's output (stdout and stderr interleaved).
	Logs(ctx context.Context, ref string, opts LogOptions) (io.ReadCloser, error)

	// Exec runs a command in a running container, as the container's own
	// user, without a TTY or stdin, and returns its exit code and output
	// (each stream cut at opts.MaxOutput). A command that runs and fails
	// is no error: its exit code says so. ErrNotFound when there is no
	// such container, ErrConflict when it is not running, ErrTimeout when
	// the command outlived opts.Timeout: it is then killed, with every
	// process it started, before Exec returns.
	Exec(ctx context.Context, ref string, opts ExecOptions) (ExecResult, error)
}

// ExecOptions tune Exec.
type ExecOptions struct {
	// Cmd is the command and its arguments (exec form, no shell). Secret:
	// never in a log line.
	Cmd []string
	// Timeout bounds the command (required, at most MaxExecTimeout).
	Timeout time.Duration
	// MaxOutput caps what is kept of stdout and of stderr, each (zero:
	// DefaultExecOutput; at most MaxExecOutput).
	MaxOutput int
}

// Bounds of Exec.
const (
	DefaultExecOutput = 1 << 20
	MaxExecOutput     = 1 << 20
	MaxExecTimeout    = time.Hour
)

// ExecResult is what an exec'd command left.
type ExecResult struct {
	ExitCode        int
	Stdout          []byte
	Stderr          []byte
	StdoutTruncated bool
	StderrTruncated bool
}

// Info describes a runtime and its engine.
type Info struct {
	Runtime       string `json:"runtime"`       // "docker", "fake", ...
	EngineVersion string `json:"engineVersion"` // e.g. "20.10.24+dfsg1"
	APIVersion    string `json:"apiVersion,omitempty"`
	OS            string `json:"os,omitempty"`
	Arch          string `json:"arch,omitempty"`
	CgroupVersion string `json:"cgroupVersion,omitempty"`
	// SecurityOptions lists what the engine enforces ("seccomp", "apparmor", ...).
	SecurityOptions []string `json:"securityOptions,omitempty"`
	// OCIRuntimes are the OCI runtimes the engine knows by name
	// (ContainerSpec.OCIRuntime), sorted; nil when it does not say.
	OCIRuntimes []string `json:"ociRuntimes,omitempty"`
	// ImageEvents says that Events streams image events when asked
	// (EventOptions.Images). Without them, the agent cannot hear of a tag
	// rebuilt behind its back and resolves the tag at each cold ensure.
	ImageEvents bool `json:"-"`
	// Unenforced lists the spec fields the runtime cannot enforce, by
	// their keys (the Field* constants; a key this version does not know
	// is ignored). A spec that sets one of them is refused by ValidateFor
	// unless the caller says something else enforces it; nothing is
	// dropped silently. Empty for the local engines, which enforce every
	// field.
	Unenforced []string `json:"unenforced,omitempty"`
	// Capabilities lists what the runtime can do beyond the contract every
	// runtime keeps (the Cap* constants), sorted; empty for the local
	// engines.
	Capabilities []string `json:"capabilities,omitempty"`
}

// The keys of the spec fields a runtime may list in Info.Unenforced. They
// are spelt as the keys under [instance] of the agent's config file where
// one exists (instance.security.noNewPrivileges is FieldNoNewPrivileges),
// and never change: they cross the plugin boundary.
const (
	FieldNoNewPrivileges = "security.noNewPrivileges" // Security.NoNewPrivileges set
	FieldMemorySwap      = "resources.memorySwap"     // Resources.MemorySwap set
	FieldCPUShares       = "resources.cpuShares"      // Resources.CPUShares set
	// FieldHostIP: the runtime publishes ports on every address of the
	// node and cannot bind one. A port's HostIP may then be "" (every
	// address); one that is set is an unenforced field like the others.
	FieldHostIP = "ports.hostIP"
	// FieldPlacement is Placement.Node set. It is not listed in
	// Unenforced: a runtime without CapPlacement refuses it outright.
	FieldPlacement = "placement.node"
)

// The capabilities a runtime may list in Info.Capabilities.
const (
	// CapPlacement: the runtime runs containers on nodes, honours
	// ContainerSpec.Placement and reports Container.Node and NodeAddr; it
	// implements Cluster.
	CapPlacement = "placement"
)

// Has reports whether the runtime lists capability c.
func (i Info) Has(c string) bool { return slices.Contains(i.Capabilities, c) }

// Cluster is implemented by the runtimes that run containers on several
// nodes (CapPlacement). A Runtime that does not implement it is one local
// node. The gRPC client shim always implements it, and answers
// ErrUnimplemented when its plugin does not.
type Cluster interface {
	// Nodes lists the nodes containers may be placed on, sorted by name,
	// ready or not.
	Nodes(ctx context.Context) ([]Node, error)
	// PrepareDir makes spec.Path on spec.Node a directory owned by
	// spec.UID:spec.GID (mode 0700), creating it and its missing parents;
	// a directory that exists is re-owned, its content is left alone.
	// ErrNotFound when there is no such node, ErrUnavailable when it is
	// not ready.
	PrepareDir(ctx context.Context, spec DirSpec) error
}

// Node is one node of a Cluster.
type Node struct {
	Name string // as in Placement.Node and Container.Node
	// Addr is the address the published ports of its containers answer
	// on (Container.NodeAddr).
	Addr  string
	Ready bool
	// Reason says why a node is not ready ("node n2 is down"); "" when
	// it is.
	Reason string
}

// DirSpec is a directory PrepareDir makes on a node.
type DirSpec struct {
	Node string
	Path string // a clean absolute path
	UID  int
	GID  int
}

// PullProgress is one status line of an image pull.
type PullProgress struct {
	Ref    string
	Status string // the engine's words, e.g. "abc123: Downloading"
}

// NetworkSpec describes a bridge network for instances.
type NetworkSpec struct {
	Name   string
	Driver string // empty means "bridge"
	// DisableICC turns inter-container traffic off on the network.
	DisableICC bool
	Labels     map[string]string
}

// ContainerSpec is everything a container is created with. Sizes are in the
// docker CLI's notation ("512m", "2g"); see ParseBytes.
type ContainerSpec struct {
	Name   string
	Image  string
	Cmd    []string          // empty: the image's default
	Env    map[string]string // secret: never on a command line, in a log or a label
	Labels map[string]string
	User   string // "uid:gid"
	Init   bool

	Resources Resources
	Security  Security
	Restart   RestartPolicy

	Network string
	Ports   []PortBinding
	Mounts  []Mount

	Healthcheck *Healthcheck
	// StopTimeout is the grace period the engine itself uses on stop; zero
	// leaves the engine's default.
	StopTimeout time.Duration

	// Log bounds the container's output kept by the engine (what Logs
	// reads); zero leaves the engine's default, unbounded for docker.
	Log LogConfig

	// OCIRuntime names the engine's OCI runtime the container runs under
	// (`--runtime`), such as "runsc" (gVisor), which the engine must know
	// (Info.OCIRuntimes); empty: the engine's default. Read back as the
	// engine names it, so a container made with "" reads back as the
	// engine's default ("runc").
	OCIRuntime string

	// Placement says where the container runs, for the runtimes that
	// place containers on nodes (CapPlacement); the others refuse a
	// non-empty Placement.Node. Read back by the runtimes that have it.
	Placement Placement
}

// Placement constrains the node a container runs on.
type Placement struct {
	// Node is the name of the node the container must run on (Node.Name);
	// "" lets the runtime choose, and Container.Node says where it did.
	Node string
}

// LogConfig bounds a container's log files. Engines that keep a single
// file (podman's k8s-file) empty it when it reaches MaxSize and read
// MaxFiles back as 1.
type LogConfig struct {
	MaxSize  string // per file, docker notation ("10m"); read back as a byte count
	MaxFiles int    // files kept, the live one included; needs MaxSize
}

// Resources are the limits a container runs under. Zero values leave the
// engine's default.
type Resources struct {
	CPUs       float64 // --cpus
	CPUShares  int64   // --cpu-shares
	Memory     string  // --memory, e.g. "2g"
	MemorySwap string  // --memory-swap: memory plus swap; equal to Memory means no swap
	PidsLimit  int64   // --pids-limit
	Ulimits    []Ulimit
}

// Ulimit is one resource limit, as in --ulimit nofile=1024:2048.
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// Security holds the hardening options of a container.
type Security struct {
	ReadOnlyRoot    bool
	Tmpfs           []Tmpfs
	CapDrop         []string
	CapAdd          []string
	NoNewPrivileges bool
	SeccompProfile  string // empty: the engine's default; "unconfined" is refused by Validate
	ApparmorProfile string // empty: the engine's default
}

// Tmpfs is a tmpfs mount, as in --tmpfs /tmp:size=64m.
type Tmpfs struct {
	Path    string
	Options string // e.g. "size=64m"; empty for the engine's default
}

// RestartPolicy is the engine's restart policy, as in --restart on-failure:5.
type RestartPolicy struct {
	Name       string // "", "no", "on-failure", "always", "unless-stopped"
	MaxRetries int    // on-failure only
}

// PortBinding publishes a container port on a host address.
type PortBinding struct {
	// HostIP is the address it is published on, e.g. "127.0.0.1";
	// required, but for a runtime that lists FieldHostIP in
	// Info.Unenforced, where "" means every address of the node.
	HostIP        string
	HostPort      int
	ContainerPort int
	Protocol      string // "tcp" when empty
}

// Mount is a bind mount of a host directory.
type Mount struct {
	Source   string // absolute host path
	Target   string // absolute container path
	ReadOnly bool
}

// Healthcheck is the engine-side health check of a container.
type Healthcheck struct {
	Test        []string // exec form, without the "CMD" prefix
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	Force bool // remove running containers too
}

// ListOptions select containers for List.
type ListOptions struct {
	// Labels the containers must all carry: key=value, or key alone when
	// the value is "".
	Labels map[string]string
}

// State is a container's lifecycle state.
type State string

// The states a container can be in, as the engine reports them.
const (
	StateCreated    State = "created"
	StateRunning    State = "running"
	StatePaused     State = "paused"
	StateRestarting State = "restarting"
	StateRemoving   State = "removing"
	StateExited     State = "exited"
	StateDead       State = "dead"
)

// Container is a container as the engine reports it.
type Container struct {
	ID           string
	Name         string // without a leading slash
	Image        string // the reference it was created from
	ImageID      string
	State        State
	Health       string // "", "starting", "healthy", "unhealthy"
	ExitCode     int
	OOMKilled    bool
	RestartCount int
	CreatedAt    time.Time
	StartedAt    time.Time // zero when never started
	FinishedAt   time.Time // zero when never stopped

	// Node is the name of the node the container runs on (or last ran
	// on): "" for a local engine.
	Node string
	// NodeAddr is the address its published ports answer on: "" for a
	// local engine, whose ports answer on the HostIP they were published
	// on.
	NodeAddr string

	// Spec is the container's configuration read back from the engine, in
	// the terms of ContainerSpec (sizes as byte counts, e.g. "2147483648";
	// Env is never read back and stays empty).
	Spec ContainerSpec
}

// Running reports whether the container's processes are up.
func (c Container) Running() bool {
	return c.State == StateRunning || c.State == StateRestarting || c.State == StatePaused
}

// EventOptions select events for Events.
type EventOptions struct {
	Labels map[string]string // as in ListOptions; container events only
	// Images adds the engine's image events (Event.Image): every image,
	// whatever its labels.
	Images bool
}

// EventStream is a stream of container events.
type EventStream interface {
	// Recv blocks for the next event. When the stream ends it returns
	// io.EOF (closed or ctx done) or the error that broke it (for example
	// ErrUnavailable when the engine went away).
	Recv() (Event, error)
	// Close ends the stream and releases its resources.
	Close() error
}

// EventAction is what happened to a container.
type EventAction string

// The container events the agent follows.
const (
	EventCreate  EventAction = "create"
	EventStart   EventAction = "start"
	EventDie     EventAction = "die"
	EventStop    EventAction = "stop"
	EventKill    EventAction = "kill"
	EventOOM     EventAction = "oom"
	EventDestroy EventAction = "destroy"
	EventRestart EventAction = "restart"
	EventHealth  EventAction = "health_status"
	EventPause   EventAction = "pause"
	EventUnpause EventAction = "unpause"
)

// The image events the agent follows (Event.Image): a tag moved to
// another image, removed, an image deleted, pulled, loaded or imported.
const (
	EventImageTag    EventAction = "tag"
	EventImageUntag  EventAction = "untag"
	EventImageDelete EventAction = "delete"
	EventImagePull   EventAction = "pull"
	EventImageLoad   EventAction = "load"
	EventImageImport EventAction = "import"
)

// Event is one container event, or one image event when Image is set:
// then ID is the image's ID and Name the reference the engine names (for
// tag and pull, the tag; may be empty, or an ID, for the others).
type Event struct {
	Action   EventAction
	Image    bool
	ID       string
	Name     string
	Labels   map[string]string
	ExitCode int    // for die
	Health   string // for health_status: "healthy", "unhealthy", ...
	Time     time.Time
}

// LogOptions tune Logs.
type LogOptions struct {
	// Tail, when set, keeps the last *Tail lines of what is there (0: none,
	// so that with Follow only what comes after the call is streamed); nil
	// means all of them.
	Tail *int
	// Since, when set, keeps only the lines written at or after it.
	Since      time.Time
	Follow     bool // keep streaming until ctx ends or the container stops
	Timestamps bool // prefix each line with its RFC 3339 time and a space
}
