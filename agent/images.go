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
//
// An image found present is remembered (present), so that a create does
// not ask the engine again: a `docker image inspect` is a whole CLI run,
// about as long as the rest of the agent's own work on a cold ensure. An
// image removed behind the agent's back shows as a create that fails with
// ErrNotFound, which forgets it and makes sure of it again (createContainer).
type imagePuller struct {
	a        *Agent
	mu       sync.Mutex
	inflight map[string]*pull
	present  map[string]bool
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

// ensure returns once ref is present, pulling it when it is not. An image
// already known to be present is not checked again.
func (ip *imagePuller) ensure(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	ip.mu.Lock()
	known := ip.present[ref]
	ip.mu.Unlock()
	if known {
		return nil
	}
	ok, err := ip.a.rt.ImageExists(ctx, ref)
	if err != nil {
		return fmt.Errorf("check image %q: %w", ref, err)
	}
	if ok {
		ip.markPresent(ref)
		return nil
	}
	return ip.join(ctx, ref, progress)
}

// join waits for a pull of ref: the one in flight, or a new one. There is
// one pull per image at a time: an ensure that finds the image missing
// and a refresh (PullImage) share it.
func (ip *imagePuller) join(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
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
			err = ip.pullFailed(ref, err)
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
	if err == nil {
		ip.markPresent(ref)
	}
	p.err = err
	close(p.done)
}

func (ip *imagePuller) markPresent(ref string) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.present == nil {
		ip.present = make(map[string]bool)
	}
	ip.present[ref] = true
}

// forget drops what is known of ref, so that the next ensure asks the
// engine.
func (ip *imagePuller) forget(ref string) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	delete(ip.present, ref)
}

// pullFailed is the error of a pull the engine gave up on: ErrPullFailed
// with the engine's reason (no such image, the registry unreachable or
// refusing). A pull cut short keeps its class, and so does one of an
// engine that is unavailable: one that still answers (Info) was refused
// by the registry, which the client's words may not tell apart
// ("connection refused" is said of both).
func (ip *imagePuller) pullFailed(ref string, err error) error {
	switch {
	case errors.Is(err, errdefs.ErrTimeout), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pull image %q: %w", ref, err)
	case errors.Is(err, errdefs.ErrUnavailable):
		ctx, cancel := context.WithTimeout(ip.a.bg, 10*time.Second)
		defer cancel()
		if _, ierr := ip.a.rt.Info(ctx); ierr != nil {
			return fmt.Errorf("pull image %q: %w", ref, err)
		}
	}
	return errdefs.Errorf(errdefs.ErrPullFailed, "pull image %q: %v", ref, err)
}
