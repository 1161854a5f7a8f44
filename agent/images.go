package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
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
// What each reference resolves to (its image ID) is remembered (ids), so
// that neither a reused ensure nor a create asks the engine again: a
// `docker image inspect` is a whole CLI run, about as long as the rest of
// the agent's own work on a cold ensure. The cache is filled on first
// need, refreshed after every pull, and dropped by forget: for one
// reference after a pull by the API, for all of them on every image event
// of the engine (a tag rebuilt, retagged, removed, pulled, loaded behind
// the agent's back: imageEvent) and on every resync of the event stream
// (events may have been missed). The references forgotten on an image
// event are resolved again at once in the background, so that instances
// show as stale without waiting for an ensure. An image removed behind
// the agent's back also shows as a create that fails with ErrNotFound,
// which forgets it and makes sure of it again (createContainer).
type imagePuller struct {
	a        *Agent
	mu       sync.Mutex
	inflight map[string]*pull
	// ids maps a reference to its image ID ("": known to be absent). It
	// is copied on write and read without the lock (idsView: the instance
	// list reads it for each instance).
	ids atomic.Pointer[map[string]string]
	// gen counts forgets, so that a lookup that raced with one does not
	// store the ID it read before.
	gen     uint64
	pending map[string]int // refs refreshLoop resolves again, with the count of their marks
	refresh chan struct{}  // kicks refreshLoop; capacity 1
}

type pull struct {
	done chan struct{}
	err  error
	id   string // what ref resolves to after the pull

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

// idsView returns the cache of image IDs: read it, never change it.
func (ip *imagePuller) idsView() map[string]string {
	if m := ip.ids.Load(); m != nil {
		return *m
	}
	return nil
}

// id returns the ID ref resolves to: from the cache, else asked of the
// engine (and remembered, absence too, until the next forget or image
// event); "" when the image is absent.
func (ip *imagePuller) id(ctx context.Context, ref string) (string, error) {
	if id, ok := ip.idsView()[ref]; ok {
		return id, nil
	}
	return ip.lookup(ctx, ref)
}

// lookup asks the engine what ref resolves to and remembers it, unless a
// renewal or a forget came meanwhile.
func (ip *imagePuller) lookup(ctx context.Context, ref string) (string, error) {
	ip.mu.Lock()
	gen := ip.gen
	ip.mu.Unlock()
	id, err := ip.a.rt.ImageID(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("check image %q: %w", ref, err)
	}
	if !ip.store(ref, id, gen) {
		// A renewal came meanwhile: it may not have seen ref (forgotten
		// before this lookup), so have it resolved again after it.
		ip.resolveLater(ref)
	}
	return id, nil
}

// ensure returns the ID of ref once it is present, pulling it when it is
// not. An image already known to be present is not checked again.
func (ip *imagePuller) ensure(ctx context.Context, ref string, progress func(runtime.PullProgress)) (string, error) {
	if id := ip.idsView()[ref]; id != "" && !ip.due(ref) {
		return id, nil
	}
	// An absence remembered is asked again: it may be older than a load
	// the engine did not tell of, and a pull may not be possible.
	ip.forget(ref)
	id, err := ip.id(ctx, ref)
	if err != nil || id != "" {
		return id, err
	}
	return ip.join(ctx, ref, progress, true)
}

// join waits for a pull of ref, the one in flight or a new one, and
// returns the ID ref resolves to after it. There is one pull per image at
// a time: an ensure that finds the image missing and a refresh
// (PullImage) share it.
func (ip *imagePuller) join(ctx context.Context, ref string, progress func(runtime.PullProgress), ifMissing bool) (string, error) {
	ip.mu.Lock()
	if ip.inflight == nil {
		ip.inflight = make(map[string]*pull)
	}
	p := ip.inflight[ref]
	if p == nil && ifMissing {
		// A pull that ended since the caller found the image missing left
		// its ID in the cache (run stores it before leaving inflight).
		if id := ip.idsView()[ref]; id != "" {
			ip.mu.Unlock()
			return id, nil
		}
	}
	start := p == nil
	if start {
		p = &pull{done: make(chan struct{}), watchers: map[int]func(runtime.PullProgress){}}
		ip.inflight[ref] = p
	}
	// The first waiter watches before the pull starts: a pull that is
	// quick (an image already there) would otherwise tell its progress to
	// no one.
	unwatch := p.watch(progress)
	if start {
		go ip.run(ref, p)
	}
	ip.mu.Unlock()
	defer unwatch()

	select {
	case <-p.done:
		if p.err != nil {
			return "", p.err
		}
		if p.id == "" {
			return "", errdefs.Errorf(errdefs.ErrPullFailed, "pull image %q: done, but the engine does not have it", ref)
		}
		return p.id, nil
	case <-ctx.Done():
		return "", errdefs.Errorf(errdefs.ErrTimeout, "waiting for image %q: %v", ref, ctx.Err())
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

	if err == nil {
		// A pull may have moved the tag: what it resolves to now is asked
		// of the engine, not kept from before.
		ip.forget(ref)
		p.id, err = ip.id(ctx, ref)
	}
	ip.mu.Lock()
	delete(ip.inflight, ref)
	ip.mu.Unlock()
	p.err = err
	close(p.done)
}

// store remembers that ref resolves to id, unless a forget came after gen.
func (ip *imagePuller) store(ref, id string, gen uint64) bool {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.gen != gen {
		return false
	}
	old := ip.idsView()
	if cur, ok := old[ref]; ok && cur == id {
		return true
	}
	m := make(map[string]string, len(old)+1)
	maps.Copy(m, old)
	m[ref] = id
	ip.ids.Store(&m)
	return true
}

// forget drops what is known of ref, so that the next ensure asks the
// engine.
func (ip *imagePuller) forget(ref string) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	ip.gen++
	old := ip.idsView()
	if _, ok := old[ref]; !ok {
		return
	}
	m := maps.Clone(old)
	delete(m, ref)
	ip.ids.Store(&m)
}

// imageEvent handles an image event of the engine: every reference known
// is resolved again in the background (a tag may be named otherwise in the
// event than in the config: "localhost/x", "docker.io/library/x", or by ID
// alone in an untag).
func (ip *imagePuller) imageEvent(ev runtime.Event) {
	ip.a.log.Debug("image event: image IDs to resolve again", "action", string(ev.Action), "image", ev.Name)
	ip.renew()
}

// renew has every reference known resolved again in the background (after
// an image event, or a resync that may have missed some). Each keeps its
// last known ID meanwhile, so that a hot ensure never waits for the
// engine; a cold one asks the engine itself while the reference is due
// (resolvedImage). A resolution begun before the renewal is not stored.
func (ip *imagePuller) renew() {
	ip.mu.Lock()
	ip.gen++
	refs := slices.Collect(maps.Keys(ip.idsView()))
	ip.mu.Unlock()
	ip.resolveLater(refs...)
}

// resolveLater has refreshLoop resolve refs in the background.
func (ip *imagePuller) resolveLater(refs ...string) {
	if len(refs) == 0 {
		return
	}
	ip.mu.Lock()
	if ip.pending == nil {
		ip.pending = map[string]int{}
	}
	for _, r := range refs {
		ip.pending[r]++
	}
	ip.mu.Unlock()
	select {
	case ip.refresh <- struct{}{}:
	default: // a refresh is already due: it takes the pending refs too
	}
}

// due tells whether ref waits to be resolved again.
func (ip *imagePuller) due(ref string) bool {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	return ip.pending[ref] > 0
}

// refreshLoop resolves the references an image event forgot, one engine
// call each, until ctx ends.
func (ip *imagePuller) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ip.refresh:
		}
		ip.mu.Lock()
		marks := maps.Clone(ip.pending)
		ip.mu.Unlock()
		// A reference stays due until resolved (or tried): a cold ensure
		// meanwhile asks the engine itself.
		for _, ref := range slices.Sorted(maps.Keys(marks)) {
			cctx, cancel := context.WithTimeout(ctx, seconds(ip.a.conf().CallTimeoutSeconds))
			if _, err := ip.lookup(cctx, ref); err != nil {
				ip.a.log.Debug("image event: resolve image again", "image", ref, "err", err)
			}
			cancel()
			ip.mu.Lock()
			if ip.pending[ref] == marks[ref] { // not marked again meanwhile
				delete(ip.pending, ref)
			}
			ip.mu.Unlock()
		}
	}
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

// containerImages maps container IDs to image IDs, safe for concurrent
// use.
type containerImages struct{ m sync.Map }

func (c *containerImages) Load(containerID string) (string, bool) {
	v, ok := c.m.Load(containerID)
	if !ok {
		return "", false
	}
	return v.(string), true
}

func (c *containerImages) Store(containerID, imageID string) { c.m.Store(containerID, imageID) }

func (c *containerImages) Delete(containerID string) { c.m.Delete(containerID) }
