package daemon

import (
	"context"
	"io"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// APIAgent is the agent as the API server sees it. The server's Agent
// speaks only the API's types (package socketapi), so that the HTTP layer
// never depends on the agent's or the runtime's options; the calls that
// take or give such options are translated here.
func APIAgent(a *agent.Agent) server.Agent { return apiAgent{a} }

type apiAgent struct{ *agent.Agent }

var _ server.Agent = apiAgent{}

func (x apiAgent) Ensure(ctx context.Context, userID string, spec socketapi.InstanceSpec, opts socketapi.EnsureOptions) (socketapi.Instance, error) {
	o := agent.EnsureOptions{Force: opts.Force, Progress: pullProgress(opts.Progress)}
	return x.Agent.Ensure(ctx, userID, spec, o)
}

func (x apiAgent) PullImage(ctx context.Context, image string, progress func(socketapi.PullProgress)) (socketapi.PullResult, error) {
	id, err := x.Agent.PullImage(ctx, image, pullProgress(progress))
	if err != nil {
		return socketapi.PullResult{}, err
	}
	return socketapi.PullResult{Image: image, ImageID: id}, nil
}

// pullProgress translates a progress callback (nil stays nil).
func pullProgress(fn func(socketapi.PullProgress)) func(runtime.PullProgress) {
	if fn == nil {
		return nil
	}
	return func(p runtime.PullProgress) { fn(socketapi.PullProgress{Image: p.Ref, Status: p.Status}) }
}

func (x apiAgent) Logs(ctx context.Context, userID string, opts socketapi.LogOptions) (io.ReadCloser, error) {
	return x.Agent.Logs(ctx, userID, runtime.LogOptions{Tail: opts.Tail, Since: opts.Since, Follow: opts.Follow, Timestamps: opts.Timestamps})
}

func (x apiAgent) Subscribe(buf int) (events <-chan socketapi.Event, cancel func()) {
	sub := x.Agent.Subscribe(buf)
	return sub.C, sub.Close
}
