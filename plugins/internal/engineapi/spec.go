package engineapi

import "time"

// ServiceSpec is what a service is made of (ServiceSpec in the API). An
// update replaces the whole spec: a field these types do not hold is
// reset to its default by UpdateService, so build the spec whole from
// the desired state rather than editing one read back.
type ServiceSpec struct {
	Name         string            `json:",omitempty"`
	Labels       map[string]string `json:",omitempty"`
	TaskTemplate TaskSpec
	Mode         ServiceMode
	UpdateConfig *UpdateConfig `json:",omitempty"`
	EndpointSpec *EndpointSpec `json:",omitempty"`
}

// ServiceMode sets how many tasks run: one of its fields is set.
type ServiceMode struct {
	Replicated *ReplicatedService `json:",omitempty"`
}

// ReplicatedService runs Replicas tasks. Replicas is always sent, so that
// zero means zero (the engine would make a missing one 1).
type ReplicatedService struct {
	Replicas uint64
}

// UpdateConfig is how an update replaces a service's tasks.
type UpdateConfig struct {
	Parallelism   uint64
	Delay         time.Duration `json:",omitempty"`
	FailureAction string        `json:",omitempty"` // "pause", "continue", "rollback"
	// Monitor is how long each new task is watched for failure before
	// the update goes on (the engine's default is 5 s).
	Monitor         time.Duration `json:",omitempty"`
	MaxFailureRatio float32       `json:",omitempty"`
	Order           string        `json:",omitempty"` // "stop-first", "start-first"
}

// TaskSpec is the template of a service's tasks.
type TaskSpec struct {
	ContainerSpec *ContainerSpec        `json:",omitempty"`
	Resources     *ResourceRequirements `json:",omitempty"`
	RestartPolicy *RestartPolicy        `json:",omitempty"`
	Placement     *Placement            `json:",omitempty"`
	Networks      []NetworkAttachment   `json:",omitempty"`
	LogDriver     *Driver               `json:",omitempty"`
	// ForceUpdate, when changed, makes an update replace the tasks even
	// if nothing else changed (how a service is restarted).
	ForceUpdate uint64 `json:",omitempty"`
}

// ContainerSpec is the container of each task.
//
// API 1.41 has no Privileges.NoNewPrivileges (nor Seccomp, AppArmor): they
// came with API 1.44 (engine 25.0), and an engine of 20.10 ignores them
// without a word. On 1.41 no_new_privs comes only from the node's engine
// being run with --no-new-privileges, so this type does not offer it.
type ContainerSpec struct {
	Image    string
	Labels   map[string]string `json:",omitempty"`
	Command  []string          `json:",omitempty"`
	Args     []string          `json:",omitempty"`
	Hostname string            `json:",omitempty"`
	// Env holds "NAME=value" entries; the values are secret: never in an
	// error or a log line.
	Env      []string `json:",omitempty"`
	Dir      string   `json:",omitempty"`
	User     string   `json:",omitempty"` // "uid:gid"
	Init     *bool    `json:",omitempty"` // nil: the engine's default
	ReadOnly bool     `json:",omitempty"`
	Mounts   []Mount  `json:",omitempty"`
	// StopSignal and StopGracePeriod (nil: the engine's 10 s) stop the
	// task's container.
	StopSignal      string         `json:",omitempty"`
	StopGracePeriod *time.Duration `json:",omitempty"`
	// Healthcheck is "Healthcheck" in the engine's JSON (the reference
	// spells it "HealthCheck"; the engine reads either). Through the API
	// its Test may be the exec form ["CMD", ...], which the CLI cannot
	// give a service.
	Healthcheck    *HealthConfig     `json:",omitempty"`
	Sysctls        map[string]string `json:",omitempty"`
	CapabilityAdd  []string          `json:",omitempty"`
	CapabilityDrop []string          `json:",omitempty"` // ["ALL"] drops every one
	Ulimits        []Ulimit          `json:",omitempty"`
}

// Mount is a bind mount, a tmpfs or a volume of a task's container.
type Mount struct {
	Type         string // "bind", "tmpfs", "volume"
	Source       string `json:",omitempty"` // a host path for a bind (it must exist on the node)
	Target       string
	ReadOnly     bool          `json:",omitempty"`
	BindOptions  *BindOptions  `json:",omitempty"`
	TmpfsOptions *TmpfsOptions `json:",omitempty"`
}

// BindOptions tune a bind mount.
type BindOptions struct {
	Propagation  string `json:",omitempty"` // "rprivate", ...
	NonRecursive bool   `json:",omitempty"`
}

// TmpfsOptions tune a tmpfs mount.
type TmpfsOptions struct {
	SizeBytes int64  `json:",omitempty"`
	Mode      uint32 `json:",omitempty"` // permission bits; 0: the engine's default
}

// HealthConfig is a container's health check. Its durations are 0
// (inherit) or at least a millisecond.
type HealthConfig struct {
	// Test is ["CMD", argv...], ["CMD-SHELL", line], ["NONE"], or empty
	// to inherit the image's.
	Test        []string      `json:",omitempty"`
	Interval    time.Duration `json:",omitempty"`
	Timeout     time.Duration `json:",omitempty"`
	StartPeriod time.Duration `json:",omitempty"`
	Retries     int           `json:",omitempty"`
}

// Ulimit is one resource limit of the container's processes.
type Ulimit struct {
	Name       string // "nofile", "nproc", ...
	Soft, Hard int64
}

// ResourceRequirements bound a task and reserve for it.
type ResourceRequirements struct {
	Limits       *Limit     `json:",omitempty"`
	Reservations *Resources `json:",omitempty"`
}

// Limit caps a task's container. Swarm has no memory-swap nor CPU shares:
// a task's swap is whatever the node's engine gives by default.
type Limit struct {
	NanoCPUs    int64 `json:",omitempty"`
	MemoryBytes int64 `json:",omitempty"`
	Pids        int64 `json:",omitempty"` // 0: unlimited (new in API 1.41)
}

// Resources are CPUs and memory, as reserved for a task or offered by a
// node.
type Resources struct {
	NanoCPUs    int64 `json:",omitempty"`
	MemoryBytes int64 `json:",omitempty"`
}

// RestartPolicy is when the swarm replaces a task that ended.
type RestartPolicy struct {
	Condition   string         `json:",omitempty"` // "none", "on-failure", "any"
	Delay       *time.Duration `json:",omitempty"` // nil: the engine's 5 s
	MaxAttempts uint64         `json:",omitempty"` // 0: no bound
	Window      *time.Duration `json:",omitempty"`
}

// Placement constrains the nodes a task may run on.
type Placement struct {
	// Constraints are ANDed "attr==value" or "attr!=value", where attr
	// is node.id, node.hostname, node.role, node.labels.<name>, ...
	Constraints []string `json:",omitempty"`
	MaxReplicas uint64   `json:",omitempty"` // per node; 0: no bound
}

// NetworkAttachment attaches the tasks to a network (name or ID).
type NetworkAttachment struct {
	Target  string
	Aliases []string `json:",omitempty"`
}

// Driver names a driver and its options (a log driver).
type Driver struct {
	Name    string
	Options map[string]string `json:",omitempty"`
}

// EndpointSpec publishes a service's ports.
type EndpointSpec struct {
	Mode  string       `json:",omitempty"` // "vip" (default), "dnsrr"
	Ports []PortConfig `json:",omitempty"`
}

// PortConfig is one published port. PublishMode "host" publishes it on
// the node that runs the task, on every address of the node (API 1.41
// has no host IP); "ingress" (the default) on every node through the
// routing mesh.
type PortConfig struct {
	Name          string `json:",omitempty"`
	Protocol      string `json:",omitempty"` // "tcp" (default), "udp", "sctp"
	TargetPort    uint32
	PublishedPort uint32 `json:",omitempty"` // 0: the engine picks one
	PublishMode   string `json:",omitempty"`
}
