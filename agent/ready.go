package agent

import (
	"context"
	"errors"
	"fmt"
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
	addr := net.JoinHostPort(a.conf().Instance.BindAddress, strconv.Itoa(rec.Port))
	delay := 10 * time.Millisecond
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
					return fmt.Errorf("container was killed for lack of memory before it became ready")
				}
				return fmt.Errorf("container exited with code %d before it became ready", c.ExitCode)
			}
		}
		select {
		case <-ctx.Done():
			return errdefs.Errorf(errdefs.ErrTimeout, "not ready within %v: port %d: %v", timeout, rec.Port, lastErr)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// probe checks that addr accepts a connection and keeps it open. The
// engine's userland proxy accepts on the host port as soon as the
// container starts, then closes the connection when nothing listens
// inside; a connection still open after a short read wait (or one the
// server greets) is a ready gateway.
func probe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 250 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(15 * time.Millisecond))
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err == nil {
		err = errors.New("closed")
	}
	return fmt.Errorf("connection closed at once (%v): nothing listens behind the port yet", err)
}

// markState records a state the agent itself just brought about, ahead
// of the engine's event.
func (a *Agent) markState(userID, id string, st runtime.State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls, ok := a.live[userID]
	if !ok || ls.ID != id {
		return
	}
	ls.State = st
	ls.seq = a.seq.Add(1)
	a.live[userID] = ls
}
