package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Podman runs a container's healthcheck from a transient systemd timer
// that calls `podman healthcheck run ID` every interval. Without systemd
// as PID 1 (a container, a CI machine) there is no timer: podman logs
// "unable to get systemd connection to add healthchecks", the container
// runs, and its health stays "starting" for ever. Run then does what the
// timers would: it follows the containers' start and died events, and
// runs `podman healthcheck run ID` every interval (after the previous
// check ended, as the timer's OnUnitInactiveSec does) for each running
// container that has a healthcheck. Podman itself applies the start
// period, retries and timeout, records the result, and emits the
// health_status event.
//
// One plugin process per host does it (the others wait on a lock file),
// so that several plugins (an agent and a test, say) do not run each
// check twice.

// healthConcurrency bounds the checks run at once.
const healthConcurrency = 4

// Run does the plugin's background work until ctx ends, and returns ctx's
// error: it fetches the host facts that Info reports, and runs the
// healthchecks when podman cannot (Config.Healthchecks). The plugin's
// main runs it once, beside runtime.Serve; the runtime's methods work
// without it (Info then lacks the host facts).
func (p *Podman) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.factsLoop(ctx) })
	if p.runsHealthchecks() {
		wg.Go(func() { p.healthLoop(ctx) })
	}
	wg.Wait()
	return ctx.Err()
}

// runsHealthchecks reports whether Run runs the healthchecks.
func (p *Podman) runsHealthchecks() bool {
	switch p.health {
	case HealthPlugin:
		return true
	case HealthEngine:
		return false
	}
	_, err := os.Stat("/run/systemd/system") // sd_booted(3)
	return err != nil
}

// factsLoop fetches the host facts, retrying until it has them.
func (p *Podman) factsLoop(ctx context.Context) {
	for delay := 5 * time.Second; ; delay = min(2*delay, time.Minute) {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := p.fetchHostFacts(fctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if hint := sandboxHint(err); hint != "" {
			p.log.Error("podman info failed; retrying", "err", err, "in", delay, "hint", hint)
		} else {
			p.log.Warn("podman info failed; retrying", "err", err, "in", delay)
		}
		if !ctxwait.Sleep(ctx, delay) {
			return
		}
	}
}

// sandboxHint says what to do when podman's error is the agent's unit
// sandbox at work: zaki-agent.service keeps /var/lib/containers read-only
// (and podman from its other work) unless the podman drop-in is linked in.
func sandboxHint(err error) string {
	if !strings.Contains(err.Error(), "read-only file system") {
		return ""
	}
	return "under systemd, runtime = \"podman\" needs the unit's podman drop-in: " +
		"ln -s /usr/share/zaki-agent/podman.conf /etc/systemd/system/zaki-agent.service.d/podman.conf, " +
		"then systemctl daemon-reload and restart zaki-agent (README: Install)"
}

// healthLoop takes the host's healthcheck lock, then runs the checks,
// starting over (after a second) whenever the event stream breaks.
func (p *Podman) healthLoop(ctx context.Context) {
	unlock, err := lockFile(ctx, p.lockPath)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("healthchecks not run: lock", "path", p.lockPath, "err", err)
		}
		return
	}
	defer unlock()
	p.log.Info("running the containers' healthchecks (no systemd timers on this host)")
	for ctx.Err() == nil {
		err := p.healthSession(ctx)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("healthchecks: starting over", "err", err)
		ctxwait.Sleep(ctx, time.Second)
	}
}

// healthEntry is one container whose healthcheck Run runs.
type healthEntry struct {
	interval time.Duration
	timeout  time.Duration
	next     time.Time
	running  bool
}

// healthSession subscribes to events, finds the running containers with a
// healthcheck, and runs their checks until the stream ends or ctx does.
func (p *Podman) healthSession(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.Events(sctx, runtime.EventOptions{})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer func() {
		// Every goroutine of the session ends with it.
		cancel()
		stream.Close()
		wg.Wait()
	}()
	events := make(chan runtime.Event)
	ended := make(chan error, 1)
	wg.Go(func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			select {
			case events <- ev:
			case <-sctx.Done():
				return
			}
		}
	})

	entries := map[string]*healthEntry{}
	watch := func(cs []runtime.Container) {
		for _, c := range cs {
			h := c.Spec.Healthcheck
			if !c.Running() || h == nil || h.Interval <= 0 {
				delete(entries, c.ID)
				continue
			}
			entries[c.ID] = &healthEntry{interval: h.Interval, timeout: h.Timeout, next: time.Now().Add(h.Interval)}
		}
	}
	running, err := p.runningContainers(sctx)
	if err != nil {
		return err
	}
	watch(running)

	done := make(chan string)
	slots := healthConcurrency
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case err := <-ended:
			return err
		case ev := <-events:
			switch ev.Action {
			case runtime.EventStart, runtime.EventUnpause:
				c, err := p.InspectContainers(sctx, []string{ev.ID})
				if err != nil {
					p.log.Warn("healthchecks: inspect", "id", ev.ID, "err", err)
					continue
				}
				watch(c)
			case runtime.EventDie, runtime.EventDestroy, runtime.EventPause:
				// A paused container is not checked (podman would fail
				// the check, not record it) until it is thawed.
				delete(entries, ev.ID)
			}
		case id := <-done:
			slots++
			if e, ok := entries[id]; ok {
				e.running = false
				e.next = time.Now().Add(e.interval)
			}
		case now := <-tick.C:
			for id, e := range entries {
				if slots == 0 {
					break
				}
				if e.running || now.Before(e.next) {
					continue
				}
				e.running = true
				slots--
				wg.Go(func() {
					p.runHealthcheck(sctx, id, e.timeout)
					select {
					case done <- id:
					case <-sctx.Done():
					}
				})
			}
		}
	}
}

// runningContainers returns the running containers, inspected.
func (p *Podman) runningContainers(ctx context.Context) ([]runtime.Container, error) {
	cs, err := p.ListPS(ctx, []string{"ps", "--no-trunc", "--format", "json", "--filter=status=running"})
	if err != nil {
		return nil, fmt.Errorf("healthchecks: list: %w", err)
	}
	return cs, nil
}

// runHealthcheck runs one check. Its result is podman's to record; an
// unhealthy container (exit 1) is not an error here.
func (p *Podman) runHealthcheck(ctx context.Context, id string, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	_, err := p.RunClient(ctx, "healthcheck", "run", "--", id)
	var ee *cli.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode == 1) && ctx.Err() == nil {
		p.log.Debug("healthcheck run", "id", id, "err", err)
	}
}

// lockFile takes an exclusive lock on path, trying every two seconds
// until it has it or ctx ends. The lock goes with the process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !ctxwait.Sleep(ctx, 2*time.Second) {
			f.Close()
			return nil, ctx.Err()
		}
	}
}
