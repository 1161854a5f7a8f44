package socketapi

// The wire types of the API (v1). They are the agent's own types too, so
// that what the agent returns is what goes on the wire, field for field;
// openapi.json describes the same shapes and a contract test holds the
// two together.

// InstanceSpec is what a caller asks for (the body of PUT
// /v1/instances/{userId}). Every field is optional: defaults and ceilings
// come from the agent's config.
type InstanceSpec struct {
	Image     string            `json:"image,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Files     map[string]string `json:"files,omitempty"`
	Resources *Resources        `json:"resources,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// SeedFiles are written only where no file is yet, never overwritten
	// (the instance may edit them), and not part of the config hash. Keys
	// of Files (managed: written at every create and recreate, part of the
	// config hash) and SeedFiles are paths relative to the user's data dir
	// ("workspace/memory/2026-12-05.md").
	SeedFiles map[string]string `json:"seedFiles,omitempty"`
}

// Resources are the limits a caller may lower (never raise past the
// configured ceilings).
type Resources struct {
	CPUs   float64 `json:"cpus,omitempty"`
	Memory string  `json:"memory,omitempty"`
	Pids   int64   `json:"pids,omitempty"`
}

// Instance is one user's instance.
type Instance struct {
	UserID        string `json:"userId"`
	ContainerName string `json:"containerName"`
	ContainerID   string `json:"containerId,omitempty"`
	Image         string `json:"image"`
	// ImageID is the ID of the image the container runs ("sha256:..."),
	// empty when not known.
	ImageID string `json:"imageId,omitempty"`
	State   string `json:"state"` // running, paused, stopped or missing
	Health  string `json:"health,omitempty"`
	// Reason says why the instance is in its state when that is not its
	// container's: with a cluster runtime, a user whose node is not ready
	// is missing ("node n2 is not ready: node n2 is down").
	Reason string `json:"reason,omitempty"`
	Port   int    `json:"port"`
	// URL is the gateway's address: on instance.bindAddress, or with a
	// cluster runtime on the address of the instance's node.
	URL string `json:"url"`
	// Node is, with a cluster runtime, the node the user is pinned to (at
	// its first ensure, for life: its data lives there); "" for a local
	// runtime.
	Node         string            `json:"node,omitempty"`
	CreatedAtMs  int64             `json:"createdAtMs"`
	LastUsedAtMs int64             `json:"lastUsedAtMs"`
	ConfigHash   string            `json:"configHash"`
	Stale        bool              `json:"stale"`
	Labels       map[string]string `json:"labels,omitempty"`
	// DataBytes is the disk space the user's data dir takes (its
	// allocated blocks, each hard-linked file once), as last measured in
	// the background (every prune interval); absent (0) until it is first
	// measured.
	DataBytes int64 `json:"dataBytes,omitempty"`
	// Outcome is set by ensure: reused, resumed, started, created or
	// recreated; and by a touch that thawed a paused instance: resumed.
	Outcome string `json:"outcome,omitempty"`
}

// The states of an instance.
const (
	StateRunning = "running"
	StatePaused  = "paused" // frozen by the pause rule of pruning; thawed by ensure or touch
	StateStopped = "stopped"
	StateMissing = "missing"
)

// The outcomes of an ensure.
const (
	OutcomeReused    = "reused"
	OutcomeResumed   = "resumed" // a paused instance, thawed
	OutcomeStarted   = "started"
	OutcomeCreated   = "created"
	OutcomeRecreated = "recreated"
)

// Event is one lifecycle event, as GET /v1/events streams it (one JSON
// object a line).
type Event struct {
	// Type is one of the Event* constants.
	Type        string `json:"type"`
	UserID      string `json:"userId,omitempty"`
	ContainerID string `json:"containerId,omitempty"`
	Image       string `json:"image,omitempty"`
	// Outcome is the outcome of an ensure (reused, started, created, recreated).
	Outcome string `json:"outcome,omitempty"`
	// Message is a status line (image pull progress), a reason or an error.
	Message string `json:"message,omitempty"`
	// Port and OldPort are a user's new and former host port
	// (instance.port_changed).
	Port    int `json:"port,omitempty"`
	OldPort int `json:"oldPort,omitempty"`
	// ExitCode is a dead container's exit code.
	ExitCode *int  `json:"exitCode,omitempty"`
	TimeMs   int64 `json:"timeMs"`
	// Dropped counts the events this subscriber missed, because it read too
	// slowly, just before this one.
	Dropped uint64 `json:"dropped,omitempty"`
}

// EnsureOptions are what an ensure is asked beyond its spec.
type EnsureOptions struct {
	// Force applies a changed spec to a hot instance now (?force=true),
	// instead of marking it stale until its next cold ensure.
	Force bool
	// Progress, when set, receives the image pull's progress while the
	// ensure waits for it (Accept: application/x-ndjson).
	Progress func(PullProgress)
}

// PullProgress is one status line of an image pull.
type PullProgress struct {
	Image  string `json:"image"`
	Status string `json:"status"`
}

// PullRequest is the body of POST /v1/images/pull: the image to pull
// again from its registry, even when present (it must be the agent's
// default image or match its allowedImages).
type PullRequest struct {
	Image string `json:"image"`
}

// PullResult is what POST /v1/images/pull answers once the image is
// pulled.
type PullResult struct {
	Image string `json:"image"`
	// ImageID is what the tag resolves to now ("sha256:...").
	ImageID string `json:"imageId,omitempty"`
}

// StreamLine is one line of the NDJSON answer of an ensure or a pull
// asked with "Accept: application/x-ndjson": exactly one field is set.
// Progress lines come while an image is pulled; the last line is the
// result (Instance for an ensure, Pull for a pull) or Error.
type StreamLine struct {
	Progress *PullProgress `json:"progress,omitempty"`
	Instance *Instance     `json:"instance,omitempty"`
	Pull     *PullResult   `json:"pull,omitempty"`
	Error    *StreamError  `json:"error,omitempty"`
}

// StreamError ends a stream that failed once it had begun: the status
// the call would have answered without streaming, its error code and
// message.
type StreamError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NDJSON is the media type of streamed answers (events, and the progress
// of ensure and pull when asked for in Accept).
const NDJSON = "application/x-ndjson"

// The event types.
const (
	EventEnsured    = "instance.ensured"    // an ensure finished (see Outcome)
	EventStarted    = "instance.started"    // the container started
	EventDied       = "instance.died"       // the container's process exited
	EventOOM        = "instance.oom"        // the kernel killed it for memory
	EventStopped    = "instance.stopped"    // stopped by the agent (API or idle pruning)
	EventPaused     = "instance.paused"     // frozen by the agent (idle pruning)
	EventResumed    = "instance.resumed"    // a paused instance thawed by the agent (ensure or touch)
	EventRestarted  = "instance.restarted"  // restarted through the API
	EventRemoved    = "instance.removed"    // container and entry removed (API or pruning)
	EventDestroyed  = "instance.destroyed"  // the container is gone from the engine
	EventAdopted    = "instance.adopted"    // a labelled container was taken into the registry
	EventMissing    = "instance.missing"    // an entry's container is gone
	EventHealth     = "instance.health"     // the engine's health check changed (Message)
	EventPull       = "image.pull"          // image pull progress (Image, Message)
	EventPruned     = "prune.completed"     // a prune pass finished (Message: summary)
	EventRuntimeUp  = "runtime.up"          // the runtime answers again; state resynced
	EventRuntimeOut = "runtime.unavailable" // the runtime or its engine stopped answering
)

// ExecRequest is the body of POST /v1/instances/{userId}/exec: a command
// run in the user's running instance, as its own user, without a shell, a
// TTY or stdin. TimeoutSeconds left out (or 0) is the default (30);
// fractions are allowed, up to the most (600). Cmd is secret: never logged.
type ExecRequest struct {
	Cmd            []string `json:"cmd"`
	TimeoutSeconds float64  `json:"timeoutSeconds,omitempty"`
}

// ExecResult is what the command left: its exit code and its output, each
// stream cut at 1 MiB (Truncated says one was). Output that is not UTF-8
// is carried with U+FFFD in place of the bytes that are not.
type ExecResult struct {
	ExitCode  int    `json:"exitCode"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Truncated bool   `json:"truncated"`
}

// EventPortChanged: another process on the host held the user's port at
// start; the user moved to a free port (OldPort, Port) and the container
// was made anew on it.
const EventPortChanged = "instance.port_changed"

// PruneRequest asks for one pruning pass (the body of POST /v1/prune).
// Thresholds left out come from the config; 0 turns a rule off; fractions
// are allowed.
type PruneRequest struct {
	DryRun           bool     `json:"dryRun"`
	IdleStopMinutes  *float64 `json:"idleStopMinutes,omitempty"`
	IdlePauseMinutes *float64 `json:"idlePauseMinutes,omitempty"`
	IdleHours        *float64 `json:"idleHours,omitempty"`
	MaxAgeDays       *float64 `json:"maxAgeDays,omitempty"`
}

// PruneResult reports what a pass paused, stopped and removed (or, in a
// dry run, would have), what it kept but marked stale (instances past the maximum
// age but used within the hot window: made anew at their next cold
// moment), and what it failed to do (tried again at the next pass).
type PruneResult struct {
	DryRun  bool        `json:"dryRun"`
	Paused  []PruneItem `json:"paused"`
	Stopped []PruneItem `json:"stopped"`
	Removed []PruneItem `json:"removed"`
	Staled  []PruneItem `json:"staled"`
	Failed  []PruneItem `json:"failed"`
}

// PruneItem is one instance a pass acted on.
type PruneItem struct {
	UserID      string  `json:"userId"`
	ContainerID string  `json:"containerId,omitempty"`
	Reason      string  `json:"reason"` // idle-pause, idle-stop, idle or max-age
	IdleMinutes float64 `json:"idleMinutes"`
	AgeDays     float64 `json:"ageDays"`
	Error       string  `json:"error,omitempty"`
}

// The reasons of a prune item.
const (
	ReasonIdlePause = "idle-pause"
	ReasonIdleStop  = "idle-stop"
	ReasonIdle      = "idle"
	ReasonMaxAge    = "max-age"
)

// Health is the agent's view of itself, its runtime and the engine (GET
// /v1/health; 503 when Status is HealthUnavailable).
type Health struct {
	Status  string        `json:"status"` // one of the Health* constants
	Agent   AgentHealth   `json:"agent"`
	Runtime RuntimeHealth `json:"runtime"`
	Counts  Counts        `json:"instances"`
}

// The statuses of the health document.
const (
	HealthOK          = "ok"          // ready, every loop making progress, the runtime answers
	HealthDegraded    = "degraded"    // not ready yet (first reconciliation pending), or a loop is wedged
	HealthUnavailable = "unavailable" // the runtime or its engine does not answer (503)
)

// LoopsOK is AgentHealth.Loops when no loop is wedged.
const LoopsOK = "ok"

// AgentHealth describes the agent process.
type AgentHealth struct {
	Version      string `json:"version"`
	Pid          int    `json:"pid"`
	StartedAtMs  int64  `json:"startedAtMs"`
	Ready        bool   `json:"ready"`
	LastResyncMs int64  `json:"lastResyncMs,omitempty"`
	Loops        string `json:"loops"` // LoopsOK, or which loop is wedged
}

// RuntimeHealth describes the runtime plugin and its engine.
type RuntimeHealth struct {
	Name     string      `json:"name"`
	Up       bool        `json:"up"`
	Restarts int         `json:"restarts"`
	Engine   *EngineInfo `json:"engine,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// EngineInfo describes the container engine behind the runtime.
type EngineInfo struct {
	Runtime         string   `json:"runtime"`
	EngineVersion   string   `json:"engineVersion"`
	APIVersion      string   `json:"apiVersion,omitempty"`
	OS              string   `json:"os,omitempty"`
	Arch            string   `json:"arch,omitempty"`
	CgroupVersion   string   `json:"cgroupVersion,omitempty"`
	SecurityOptions []string `json:"securityOptions,omitempty"`
}

// Counts are the instances by state.
type Counts struct {
	Total   int `json:"total"`
	Running int `json:"running"`
	Paused  int `json:"paused"`
	Stopped int `json:"stopped"`
	Missing int `json:"missing"`
}

// The Zaki platform's own places, the defaults of an import.
const (
	DefaultImportUsersFile = "/var/zaki-platform/router/users.json"
	DefaultImportUsersDir  = "/var/zaki-platform/users"
)

// The default bounds on one user's data in an import.
const (
	DefaultImportMaxBytes = 2 << 30 // 2 GiB
	DefaultImportMaxFiles = 50000
)

// ImportRequest asks to bring the Zaki platform's existing users over (the
// body of POST /v1/import): the router's users file (a JSON object, user
// ID to {"port", ...}) and its data dirs (<usersDir>/user-<id>/). Empty
// fields take their defaults (DefaultImportUsersFile, DefaultImportUsersDir,
// DefaultImportMaxBytes, DefaultImportMaxFiles); Users, when not empty,
// limits the import to those users of the file.
type ImportRequest struct {
	UsersFile string   `json:"usersFile,omitempty"`
	UsersDir  string   `json:"usersDir,omitempty"`
	DryRun    bool     `json:"dryRun"`
	Users     []string `json:"users,omitempty"`
	// MaxBytes and MaxFiles bound one user's data: a user over either
	// fails, and nothing of it is kept.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	MaxFiles int   `json:"maxFiles,omitempty"`
}

// ImportResult reports what an import did (or, in a dry run, would do),
// user by user, in the order of their IDs.
type ImportResult struct {
	DryRun bool         `json:"dryRun"`
	Users  []ImportItem `json:"users"`
}

// ImportItem is what an import did with one user.
type ImportItem struct {
	UserID string `json:"userId"`
	// Action is one of the Import* actions below.
	Action string `json:"action"`
	// Port is the user's host port now (or in a dry run, would be);
	// OldPort the port of the users file when it differs (0 otherwise).
	Port    int `json:"port"`
	OldPort int `json:"oldPort,omitempty"`
	// Files and Bytes count the regular files copied (or to copy).
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Skipped are the entries of the source not copied, each
	// "path: reason" (a symlink, a device, a fifo, a socket, a file with
	// more than one hard link).
	Skipped []string `json:"skipped"`
	// Message says what was done, or why not.
	Message string `json:"message,omitempty"`
}

// The actions of an import item.
const (
	ImportImported    = "imported"     // data copied, container replaced
	ImportWouldImport = "would-import" // dry run: would be imported
	ImportExists      = "exists"       // imported before: nothing done
	ImportFailed      = "failed"       // see Message; nothing of it was kept
	ImportInvalid     = "invalid"      // the user ID is not valid here: skipped
)
