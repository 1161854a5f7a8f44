package engineapi

import (
	"context"
	"io"
	"net/http"
)

// ExecConfig is a command to run in a running container.
type ExecConfig struct {
	// Cmd is the command and its arguments (exec form). Secret: it never
	// appears in an error.
	Cmd          []string
	Env          []string `json:",omitempty"` // "NAME=value"; secret values
	User         string   `json:",omitempty"` // the container's when empty
	WorkingDir   string   `json:",omitempty"`
	AttachStdout bool
	AttachStderr bool
}

// ExecCreate sets up cfg's command in container ref and returns the exec
// instance's ID. A paused or stopped container is ErrConflict.
func (c *Client) ExecCreate(ctx context.Context, ref string, cfg ExecConfig) (string, error) {
	id, err := pathID("container", ref)
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"Id"`
	}
	err = c.call(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/exec", body: cfg,
		secrets: append(envSecrets(cfg.Env), cfg.Cmd...)}, &out)
	return out.ID, err
}

// ExecStart starts exec instance id and returns its output, multiplexed
// (see Demux), ending when the command does (or, when detach, at once and
// empty). No stdin nor TTY is attached. A command the engine could not
// start is no error here: the engine's message (which names the command)
// comes on stdout and ExecInspect's ExitCode is 126 (20.10). The caller
// closes it.
func (c *Client) ExecStart(ctx context.Context, id string, detach bool) (io.ReadCloser, error) {
	id, err := pathID("exec", id)
	if err != nil {
		return nil, err
	}
	body := struct{ Detach, Tty bool }{Detach: detach}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/exec/" + id + "/start", body: body})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExecInspect is the state of an exec instance.
type ExecInspect struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    *int // nil while it runs
	Pid         int
}

// ExecInspect inspects exec instance id.
func (c *Client) ExecInspect(ctx context.Context, id string) (ExecInspect, error) {
	return inspect[ExecInspect](ctx, c, "exec", "/exec/", id, "/json")
}
