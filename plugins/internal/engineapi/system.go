package engineapi

import (
	"context"
	"net/http"
)

// Ping is what GET /_ping tells of the engine.
type Ping struct {
	APIVersion string // the engine's own (newest) API version
	OSType     string // "linux"
}

// Ping checks that the engine answers. Its path is unversioned, so that
// an engine older than the pinned version still answers, with its own.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/_ping", raw: true})
	if err != nil {
		return Ping{}, err
	}
	resp.Body.Close()
	return Ping{APIVersion: resp.Header.Get("Api-Version"), OSType: resp.Header.Get("Ostype")}, nil
}

// Version is the answer of GET /version.
type Version struct {
	Version       string // "20.10.24+dfsg1"
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string
	Os            string
	Arch          string
	KernelVersion string
}

// Version returns the engine's version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	return get[Version](ctx, c, "/version", nil)
}

// Info is the part of GET /info the plugin reads.
type Info struct {
	ID              string
	Name            string // the host name
	ServerVersion   string
	OperatingSystem string
	NCPU            int
	MemTotal        int64
	CgroupVersion   string
	DefaultRuntime  string
	SecurityOptions []string
	Swarm           SwarmInfo
}

// SwarmInfo is this engine's part in a swarm.
type SwarmInfo struct {
	NodeID   string
	NodeAddr string
	// LocalNodeState is "inactive" (in no swarm), "pending", "active",
	// "error" or "locked".
	LocalNodeState string
	// ControlAvailable: this node is a manager, so it answers the
	// nodes, services and tasks calls (a worker answers them 503).
	ControlAvailable bool
	Error            string
	Nodes, Managers  int
}

// Info returns the engine's system information.
func (c *Client) Info(ctx context.Context) (Info, error) {
	return get[Info](ctx, c, "/info", nil)
}
