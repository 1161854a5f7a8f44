package engineapi

import (
	"context"
	"net/url"
	"time"
)

// TaskState is a task's state, in the order a task goes through them.
type TaskState string

// The task states. A task runs at TaskRunning; TaskComplete and the ones
// after it are final.
const (
	TaskNew       TaskState = "new"
	TaskAllocated TaskState = "allocated"
	TaskPending   TaskState = "pending" // no node fits (placement, resources)
	TaskAssigned  TaskState = "assigned"
	TaskAccepted  TaskState = "accepted"
	TaskPreparing TaskState = "preparing" // pulling the image
	TaskReady     TaskState = "ready"
	TaskStarting  TaskState = "starting"
	TaskRunning   TaskState = "running"
	TaskComplete  TaskState = "complete"
	TaskShutdown  TaskState = "shutdown"
	TaskFailed    TaskState = "failed"
	TaskRejected  TaskState = "rejected" // the node refused it (a bind source missing, ...)
	TaskRemove    TaskState = "remove"
	TaskOrphaned  TaskState = "orphaned" // its node was down too long
)

// Task is one run of a service's container on a node.
type Task struct {
	ID        string
	Version   ObjectVersion
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
	// Spec is the task's copy of the service's TaskTemplate, as it was
	// when the task was made.
	Spec         TaskSpec
	ServiceID    string
	Slot         int
	NodeID       string // empty until the task is assigned
	Status       TaskStatus
	DesiredState TaskState
}

// TaskStatus is where a task is.
type TaskStatus struct {
	Timestamp time.Time
	State     TaskState
	Message   string
	// Err says why a task failed or was rejected.
	Err string
	// ContainerStatus is set once the node made the container: a task's
	// container ID changes with every new task, the service stays.
	ContainerStatus *ContainerStatus
	// PortStatus lists the host-mode ports published on the task's node.
	PortStatus struct {
		Ports []PortConfig
	}
}

// ContainerStatus is a task's container.
type ContainerStatus struct {
	ContainerID string
	PID         int
	ExitCode    int
}

// Tasks lists the tasks filters select: "service" (ID or name), "node",
// "desired-state" ("running", "shutdown", "accepted"), "label", "id",
// "name".
func (c *Client) Tasks(ctx context.Context, filters Filters) ([]Task, error) {
	q := url.Values{}
	filters.query(q)
	return get[[]Task](ctx, c, "/tasks", q)
}

// Task inspects the task of ID id.
func (c *Client) Task(ctx context.Context, id string) (Task, error) {
	return inspect[Task](ctx, c, "task", "/tasks/", id, "")
}
