package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// waitReady waits until rec's port accepts connections that the gateway,
// not just the engine's port proxy, holds open, within the readiness
// timeout. It fails early when the container stops running.
func (a *Agent) waitReady(ctx context.Context, rec registry.Record) error {
	timeout := seconds(a.conf().Instance.ReadinessTimeoutSeconds)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := a.conf().Instance.BindAddress
	if a.cluster != nil {
		// The address of the instance's node (its ports answer on every
		// address of the node, not on bindAddress).
		if h := a.nodeHost(rec.UserID); h != "" {
			host = h
		}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(rec.Port))
	// Probe every readyPoll while a gateway is expected to come up (a
	// refused probe costs a connect through the engine's port proxy, next
	// to nothing), then back off: a coarser poll would add up to its
	// interval to every cold ensure.
	start := time.Now()
	delay := readyPoll
	nextInspect := time.Now().Add(500 * time.Millisecond)
	var lastErr error
	for {
		if lastErr = a.probe(ctx, addr); lastErr == nil {
			return nil
		}
		if time.Now().After(nextInspect) {
			nextInspect = time.Now().Add(500 * time.Millisecond)
			c, err := a.rt.Inspect(ctx, rec.ContainerID)
			switch {
			case err != nil && ctx.Err() == nil:
				return fmt.Errorf("inspect while waiting for readiness: %w", err)
			case err == nil && !c.Running():
				if c.OOMKilled {
					return errdefs.Errorf(errdefs.ErrInstanceFailed, "container was killed for lack of memory before it became ready")
				}
				return errdefs.Errorf(errdefs.ErrInstanceFailed, "container exited with code %d before it became ready", c.ExitCode)
			}
		}
		select {
		case <-ctx.Done():
			return errdefs.Errorf(errdefs.ErrTimeout, "not ready within %v: port %d: %v", timeout, rec.Port, lastErr)
		case <-time.After(delay):
		}
		if time.Since(start) > readyFastFor {
			delay = min(delay*2, 200*time.Millisecond)
		}
	}
}

// The readiness poll: every readyPoll for readyFastFor, then backing off
// to 200 ms.
const (
	readyPoll    = 5 * time.Millisecond
	readyFastFor = 3 * time.Second
)

// Probe is the readiness check ensure waits on (see probe). It is
// exported so that benchmarks hold a raw `docker run` to exactly the same
// check.
func Probe(ctx context.Context, addr string) error { return probe(ctx, addr) }

// probe checks that the gateway behind addr answers: it connects, sends
// a minimal HTTP request and waits for the first byte of any response.
// A bare TCP connect is not enough: the engine's userland proxy accepts on
// the host port as soon as the container starts, whether or not anything
// listens inside, and holds the connection while it tries to reach it.
func probe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nUser-Agent: zaki-agent-readiness\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no answer within a second")
		}
		return fmt.Errorf("connection closed without an answer (%v): nothing listens behind the port yet", err)
	}
	return nil
}

// markState records a state the agent itself just brought about, ahead
// of the engine's event, echo: the event of the call that did it ("" for
// none). Until echo arrives, the older events of the container the stream
// still holds do not change the state (see echoes).
func (a *Agent) markState(userID, id string, st runtime.State, echo runtime.EventAction) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls, ok := a.live[userID]
	if !ok || ls.ID != id {
		return
	}
	if echo != "" && ls.State != st {
		// A call that changed nothing (the container was there already)
		// may have no echo: one is awaited only for a change. (An echo
		// applied before this is seen too: the state is st already.)
		a.expectEchoLocked(id, echo)
	}
	ls.State = st
	ls.seq = a.seq.Add(1)
	a.live[userID] = ls
}
