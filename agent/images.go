package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// imagePuller makes sure images are present, with one pull per image at a
// time however many users wait for it. A pull is bounded twice: overall
// (pullTimeoutSeconds) and by progress (pullStallSeconds without a status
// line abandons it). It runs on the agent's background context, so a
// caller that gives up does not cancel it for the others.
type imagePuller struct {
	a        *Agent
	mu       sync.Mutex
	inflight map[string]*pull
}

type pull struct {
	done chan struct{}
	err  error

	mu       sync.Mutex
	watchers map[int]func(runtime.PullProgress)
	nextID   int
}

func (p *pull) watch(fn func(runtime.PullProgress)) (unwatch func()) {
	if fn == nil {
		return func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.nextID
	p.nextID++
	p.watchers[id] = fn
	return func() {
		p.mu.Lock()
		delete(p.watchers, id)
		p.mu.Unlock()
	}
}

func (p *pull) progress(pp runtime.PullProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fn := range p.watchers {
		fn(pp)
	}
}

// ensure returns once ref is present, pulling it when it is not.
func (ip *imagePuller) ensure(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	ok, err := ip.a.rt.ImageExists(ctx, ref)
	if err != nil {
		return fmt.Errorf("check image %q: %w", ref, err)
	}
	if ok {
		return nil
	}
	ip.mu.Lock()
	if ip.inflight == nil {
		ip.inflight = make(map[string]*pull)
	}
	p := ip.inflight[ref]
	if p == nil {
		p = &pull{done: make(chan struct{}), watchers: map[int]func(runtime.PullProgress){}}
		ip.inflight[ref] = p
		go ip.run(ref, p)
	}
	unwatch := p.watch(progress)
	ip.mu.Unlock()
	defer unwatch()

	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return errdefs.Errorf(errdefs.ErrTimeout, "waiting for image %q: %v", ref, ctx.Err())
	}
}

func (ip *imagePuller) run(ref string, p *pull) {
	a := ip.a
	limit := seconds(a.conf().Instance.PullTimeoutSeconds)
	stallLimit := seconds(a.conf().Instance.PullStallSeconds)
	ctx, cancel := context.WithTimeout(a.bg, limit)
	defer cancel()
	var stalled sync.Once
	stalledFlag := make(chan struct{})
	stall := time.AfterFunc(stallLimit, func() {
		stalled.Do(func() { close(stalledFlag) })
		cancel()
	})
	defer stall.Stop()

	a.log.Info("pulling image", "image", ref)
	start := time.Now()
	err := a.rt.PullImage(ctx, ref, func(pp runtime.PullProgress) {
		stall.Reset(stallLimit)
		p.progress(pp)
		a.publish(Event{Type: EventPull, Image: ref, Message: pp.Status})
	})
	select {
	case <-stalledFlag:
		err = errdefs.Errorf(errdefs.ErrTimeout, "pull image %q: no progress for %v", ref, stallLimit)
	default:
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errdefs.Errorf(errdefs.ErrTimeout, "pull image %q: not done within %v", ref, limit)
		} else if err != nil {
			err = fmt.Errorf("pull image %q: %w", ref, err)
		}
	}
	if err != nil {
		a.log.Warn("image pull failed", "image", ref, "err", err)
		a.publish(Event{Type: EventPull, Image: ref, Message: "failed: " + err.Error()})
	} else {
		a.log.Info("image pulled", "image", ref, "seconds", time.Since(start).Seconds())
		a.publish(Event{Type: EventPull, Image: ref, Message: "done"})
	}

	ip.mu.Lock()
	delete(ip.inflight, ref)
	ip.mu.Unlock()
	p.err = err
	close(p.done)
}
