package engineapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ObjectVersion is a swarm object's version index: an update must send
// the one last read, and fails with ErrConflict when another came between.
type ObjectVersion struct {
	Index uint64
}

// Service is a swarm service as read back.
type Service struct {
	ID        string
	Version   ObjectVersion
	CreatedAt time.Time
	UpdatedAt time.Time
	Spec      ServiceSpec
	Endpoint  struct {
		Ports []PortConfig // the ports published, with the ones the engine picked
	}
	UpdateStatus *UpdateStatus `json:",omitempty"`
	// ServiceStatus is set by Services when asked for (status).
	ServiceStatus *ServiceStatus `json:",omitempty"`
}

// UpdateStatus is how the last update went.
type UpdateStatus struct {
	State       string // "updating", "paused", "completed", "rollback_started", ...
	StartedAt   *time.Time
	CompletedAt *time.Time
	Message     string
}

// ServiceStatus counts a service's tasks.
type ServiceStatus struct {
	RunningTasks   uint64
	DesiredTasks   uint64
	CompletedTasks uint64
}

// ServiceCreated is the answer of CreateService.
type ServiceCreated struct {
	ID       string
	Warnings []string // such as an image that could not be pinned to a digest
}

// CreateService creates a service. A name already taken is ErrConflict.
func (c *Client) CreateService(ctx context.Context, spec ServiceSpec) (ServiceCreated, error) {
	var out ServiceCreated
	err := c.call(ctx, request{method: http.MethodPost, path: "/services/create", body: spec,
		secrets: spec.secrets()}, &out)
	return out, err
}

// Service inspects the service of ID or name ref. The engine tries ref as
// a full ID, then as a name, then as an ID prefix: a name with a "-" or
// an upper-case letter can never be taken for a prefix of another
// service's ID.
func (c *Client) Service(ctx context.Context, ref string) (Service, error) {
	return inspect[Service](ctx, c, "service", "/services/", ref, "")
}

// Services lists the services filters select ("id", "label", "mode",
// "name"; a name matches as a prefix), with their task counts when status.
func (c *Client) Services(ctx context.Context, filters Filters, status bool) ([]Service, error) {
	q := url.Values{}
	filters.query(q)
	if status {
		q.Set("status", "true")
	}
	return get[[]Service](ctx, c, "/services", q)
}

// UpdateService replaces the spec of service ref, last read at version.
// It returns the engine's warnings. Another update since is ErrConflict:
// read the service again and retry. The engine itself updates a new
// service once, just after creating it (seen on 20.10: an "update" event
// with no attributes), so the version CreateService's caller reads at
// once may be stale already.
func (c *Client) UpdateService(ctx context.Context, ref string, version ObjectVersion, spec ServiceSpec) ([]string, error) {
	id, err := pathID("service", ref)
	if err != nil {
		return nil, err
	}
	q := url.Values{"version": {strconv.FormatUint(version.Index, 10)}}
	var out struct{ Warnings []string }
	err = c.call(ctx, request{method: http.MethodPost, path: "/services/" + id + "/update", query: q,
		body: spec, secrets: spec.secrets()}, &out)
	return out.Warnings, err
}

// RemoveService removes service ref; its tasks' containers are removed by
// their nodes afterwards, not before this returns.
func (c *Client) RemoveService(ctx context.Context, ref string) error {
	id, err := pathID("service", ref)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodDelete, path: "/services/" + id}, nil)
}

// ServiceLogs streams the stdout and stderr of the tasks of service ref,
// as a manager gathers them from the nodes: always multiplexed (see Demux
// and Merge; a service's tasks have no TTY here), Tail counted per task.
// A follow does not end when the tasks stop, only when ctx ends or the
// service is removed: the caller decides when it has read enough. The
// caller closes the stream.
func (c *Client) ServiceLogs(ctx context.Context, ref string, opts LogsOptions) (io.ReadCloser, error) {
	id, err := pathID("service", ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/services/" + id + "/logs", query: opts.query()})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// secrets returns what of s no error may show: its env values.
func (s ServiceSpec) secrets() []string {
	if s.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	return envSecrets(s.TaskTemplate.ContainerSpec.Env)
}
