package engineapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Container is the part of a container's inspect the plugin reads.
type Container struct {
	ID      string `json:"Id"`
	Name    string // with its leading "/"
	Created time.Time
	Image   string // the image's ID
	State   ContainerState
	Config  struct {
		Image    string // as the container was created from
		Hostname string
		User     string
		Labels   map[string]string // a swarm task's carry com.docker.swarm.{service,task,node}.id
		Tty      bool              // when set, Logs and exec output are not multiplexed
		// Healthcheck is the container's own check (nil: the image's).
		Healthcheck *HealthConfig
		StopTimeout *int // seconds; nil: the engine's 10
	}
	HostConfig struct {
		Init           *bool
		ReadonlyRootfs bool
		CapAdd         []string
		CapDrop        []string
		SecurityOpt    []string
		PidsLimit      *int64
		Memory         int64
		NanoCpus       int64
		Ulimits        []Ulimit
		// Mounts are the mounts asked for (a swarm task's binds and
		// tmpfs, with their options).
		Mounts []Mount
		// PortBindings maps "18789/tcp" to where it is published.
		PortBindings map[string][]PortBinding
	}
}

// PortBinding is a published port of a container ("" HostIp: every
// address).
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// ContainerState is a container's run state.
type ContainerState struct {
	Status     string // "created", "running", "paused", "restarting", "exited", "dead"
	Running    bool
	Paused     bool
	OOMKilled  bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *struct {
		Status string // "starting", "healthy", "unhealthy"
	}
}

// ContainerInspect inspects the container of ID or name ref.
func (c *Client) ContainerInspect(ctx context.Context, ref string) (Container, error) {
	return inspect[Container](ctx, c, "container", "/containers/", ref, "/json")
}

// ContainerSummary is one container of Containers.
type ContainerSummary struct {
	ID      string `json:"Id"`
	Names   []string
	Image   string
	ImageID string
	Labels  map[string]string
	State   string // "running", "exited", ...
	Status  string // "Up 2 minutes", ...
	Created int64  // Unix time
}

// Containers lists the containers filters select ("label", "name",
// "status", "id", ...), the stopped ones too when all.
func (c *Client) Containers(ctx context.Context, all bool, filters Filters) ([]ContainerSummary, error) {
	q := url.Values{}
	filters.query(q)
	if all {
		q.Set("all", "1")
	}
	return get[[]ContainerSummary](ctx, c, "/containers/json", q)
}

// LogsOptions tune ContainerLogs.
type LogsOptions struct {
	Follow     bool      // keep streaming until ctx ends or the container stops
	Timestamps bool      // prefix each line with its RFC 3339 time and a space
	Since      time.Time // zero: from the start
	Tail       *int      // the last *Tail lines only; nil: all of them
}

// ContainerLogs streams the stdout and stderr of container ref, as the
// engine sends them: multiplexed (see Demux and Merge) unless the
// container has a TTY. With Follow the stream ends when the container
// stops; when ctx ends, reading fails with ctx's error. The caller closes
// it.
func (c *Client) ContainerLogs(ctx context.Context, ref string, opts LogsOptions) (io.ReadCloser, error) {
	id, err := pathID("container", ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/logs", query: opts.query()})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// query returns the logs endpoints' parameters for opts.
func (opts LogsOptions) query() url.Values {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Timestamps {
		q.Set("timestamps", "1")
	}
	if !opts.Since.IsZero() {
		q.Set("since", unixTime(opts.Since))
	}
	if opts.Tail != nil {
		q.Set("tail", strconv.Itoa(max(*opts.Tail, 0)))
	}
	return q
}

// unixTime formats t as the engine's "seconds.nanoseconds".
func unixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
