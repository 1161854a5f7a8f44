package swarm

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Logs streams a container's output through the manager, which gathers
// it from the nodes (GET /services/{id}/logs): stdout and stderr
// interleaved. Only the tasks the swarm still has are there: scaling to
// 0 (Stop) removes the tasks and their containers, so a stopped
// container has no logs; Tail counts per task. The manager does not end
// a follow when the task stops, so the plugin does: it looks at the
// service every Config.Poll and ends the stream (io.EOF) a look after
// the container stopped or was removed.
func (r *Runtime) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	s, err := r.service(ctx, ref)
	if err != nil {
		return nil, err
	}
	lo := engineapi.LogsOptions{Follow: opts.Follow, Timestamps: opts.Timestamps, Since: opts.Since, Tail: opts.Tail}
	rc, err := r.api.ServiceLogs(ctx, s.ID, lo)
	if err != nil {
		return nil, wrap(err, "logs "+ref)
	}
	if !opts.Follow {
		return engineapi.Merge(rc), nil
	}
	f := &followed{ReadCloser: engineapi.Merge(rc), stop: make(chan struct{})}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		r.endWhenStopped(ctx, s.ID, f)
	}()
	return f, nil
}

// endWhenStopped closes f one look after the service of id no longer
// runs, or when f is closed or ctx ends.
func (r *Runtime) endWhenStopped(ctx context.Context, id string, f *followed) {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	stopped := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.stop:
			return
		case <-t.C:
		}
		if stopped { // one more look's worth of lines has come
			f.end()
			return
		}
		c, err := r.Inspect(ctx, id)
		stopped = runtime.Class(err) == runtime.ErrNotFound || (err == nil && !c.Running())
	}
}

// followed is a followed log stream that the plugin may end.
type followed struct {
	io.ReadCloser
	ended    atomic.Bool
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// end ends the stream for its reader: its reads return io.EOF.
func (f *followed) end() {
	f.ended.Store(true)
	f.ReadCloser.Close()
}

func (f *followed) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err != nil && f.ended.Load() {
		return n, io.EOF
	}
	return n, err
}

func (f *followed) Close() error {
	f.stopOnce.Do(func() { close(f.stop) })
	err := f.ReadCloser.Close()
	f.wg.Wait()
	return err
}
