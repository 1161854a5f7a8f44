package agent

import (
	"context"
	"io"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// instrumented wraps the runtime: it bounds every call with the call
// timeout (pulls and streams have their own bounds) and measures it.
type instrumented struct {
	rt      runtime.Runtime
	m       *Metrics
	timeout time.Duration
}

var _ runtime.Runtime = (*instrumented)(nil)

func instrument(rt runtime.Runtime, m *Metrics, timeout time.Duration) *instrumented {
	return &instrumented{rt: rt, m: m, timeout: timeout}
}

// call bounds ctx by the call timeout plus extra, and returns the function
// that records the call.
func (r *instrumented) call(ctx context.Context, method string, extra time.Duration) (context.Context, func(error)) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout+extra)
	start := time.Now()
	return ctx, func(err error) {
		cancel()
		r.m.observeCall(method, err, time.Since(start))
	}
}

func (r *instrumented) Info(ctx context.Context) (runtime.Info, error) {
	ctx, done := r.call(ctx, "Info", 0)
	info, err := r.rt.Info(ctx)
	done(err)
	return info, err
}

func (r *instrumented) ImageID(ctx context.Context, ref string) (string, error) {
	ctx, done := r.call(ctx, "ImageID", 0)
	id, err := r.rt.ImageID(ctx, ref)
	done(err)
	return id, err
}

func (r *instrumented) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	start := time.Now()
	err := r.rt.PullImage(ctx, ref, progress)
	r.m.observeCall("PullImage", err, time.Since(start))
	return err
}

func (r *instrumented) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	ctx, done := r.call(ctx, "EnsureNetwork", 0)
	err := r.rt.EnsureNetwork(ctx, spec)
	done(err)
	return err
}

func (r *instrumented) RemoveNetwork(ctx context.Context, name string) error {
	ctx, done := r.call(ctx, "RemoveNetwork", 0)
	err := r.rt.RemoveNetwork(ctx, name)
	done(err)
	return err
}

func (r *instrumented) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	ctx, done := r.call(ctx, "Create", 0)
	id, err := r.rt.Create(ctx, spec)
	done(err)
	return id, err
}

func (r *instrumented) Start(ctx context.Context, ref string) error {
	ctx, done := r.call(ctx, "Start", 0)
	err := r.rt.Start(ctx, ref)
	done(err)
	return err
}

func (r *instrumented) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	ctx, done := r.call(ctx, "Stop", timeout)
	err := r.rt.Stop(ctx, refs, timeout)
	done(err)
	return err
}

func (r *instrumented) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	ctx, done := r.call(ctx, "Restart", timeout)
	err := r.rt.Restart(ctx, ref, timeout)
	done(err)
	return err
}

func (r *instrumented) Pause(ctx context.Context, ref string) error {
	ctx, done := r.call(ctx, "Pause", 0)
	err := r.rt.Pause(ctx, ref)
	done(err)
	return err
}

func (r *instrumented) Resume(ctx context.Context, ref string) error {
	ctx, done := r.call(ctx, "Resume", 0)
	err := r.rt.Resume(ctx, ref)
	done(err)
	return err
}

func (r *instrumented) Remove(ctx context.Context, refs []string, opts runtime.RemoveOptions) error {
	ctx, done := r.call(ctx, "Remove", 0)
	err := r.rt.Remove(ctx, refs, opts)
	done(err)
	return err
}

func (r *instrumented) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	ctx, done := r.call(ctx, "Inspect", 0)
	c, err := r.rt.Inspect(ctx, ref)
	done(err)
	return c, err
}

func (r *instrumented) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	ctx, done := r.call(ctx, "List", 0)
	cs, err := r.rt.List(ctx, opts)
	done(err)
	return cs, err
}

func (r *instrumented) Events(ctx context.Context, opts runtime.EventOptions) (runtime.EventStream, error) {
	start := time.Now()
	s, err := r.rt.Events(ctx, opts)
	r.m.observeCall("Events", err, time.Since(start))
	return s, err
}

func (r *instrumented) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := r.rt.Logs(ctx, ref, opts)
	r.m.observeCall("Logs", err, time.Since(start))
	return rc, err
}

// Exec is bounded by the call timeout plus the command's own.
func (r *instrumented) Exec(ctx context.Context, ref string, opts runtime.ExecOptions) (runtime.ExecResult, error) {
	ctx, done := r.call(ctx, "Exec", opts.Timeout)
	res, err := r.rt.Exec(ctx, ref, opts)
	done(err)
	return res, err
}

// instrumentedCluster is the runtime's Cluster calls, bounded and
// measured as the others are. instrumented itself does not implement
// runtime.Cluster: the agent keeps this beside it only for a runtime that
// does (see detectCluster), so that a local runtime is told apart with a
// nil check.
type instrumentedCluster struct {
	r  *instrumented
	cl runtime.Cluster
}

var _ runtime.Cluster = instrumentedCluster{}

// cluster returns the runtime's Cluster calls, instrumented; nil when the
// runtime does not implement runtime.Cluster (a local runtime: the fake).
// The plugin shim always does, and answers runtime.ErrUnimplemented when
// its plugin is local.
func (r *instrumented) cluster() runtime.Cluster {
	cl, ok := r.rt.(runtime.Cluster)
	if !ok {
		return nil
	}
	return instrumentedCluster{r: r, cl: cl}
}

func (c instrumentedCluster) Nodes(ctx context.Context) ([]runtime.Node, error) {
	ctx, done := c.r.call(ctx, "Nodes", 0)
	nodes, err := c.cl.Nodes(ctx)
	done(err)
	return nodes, err
}

func (c instrumentedCluster) PrepareDir(ctx context.Context, spec runtime.DirSpec) error {
	ctx, done := c.r.call(ctx, "PrepareDir", 0)
	err := c.cl.PrepareDir(ctx, spec)
	done(err)
	return err
}
