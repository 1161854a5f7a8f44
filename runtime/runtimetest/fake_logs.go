package runtimetest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// logLine is one line of a container's output.
type logLine struct {
	time time.Time
	text string
}

// timestampFormat is docker's log timestamp: RFC 3339 with nanoseconds.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Logs streams a container's output: what it holds (its last *opts.Tail
// lines when Tail is set; those from opts.Since on when it is), then, with
// Follow, new lines until ctx ends, the
// reader is closed, or the container stops or is removed (io.EOF), or the
// engine goes down (ErrUnavailable).
func (f *Fake) Logs(ctx context.Context, ref string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := f.begin(ctx, "Logs", runtime.ValidateRef(ref), ref); err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return nil, fmt.Errorf("logs %q: %w", ref, err)
	}
	next := 0
	for next < len(c.logs) && c.logs[next].time.Before(opts.Since) {
		next++
	}
	if opts.Tail != nil && len(c.logs)-next > max(*opts.Tail, 0) {
		next = len(c.logs) - max(*opts.Tail, 0)
	}
	return &logReader{
		f: f, c: c, next: next, opts: opts, ctx: ctx,
		down: f.downCh, closed: make(chan struct{}),
	}, nil
}

// WriteLog appends lines to a container's output, as its process would.
func (f *Fake) WriteLog(ref string, lines ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(ref)
	if err != nil {
		return fmt.Errorf("write log %q: %w", ref, err)
	}
	for _, l := range lines {
		f.logLocked(c, l)
	}
	return nil
}

// logLocked appends one line (or several, split at line breaks) to c's
// output. f.mu must be held.
func (f *Fake) logLocked(c *fakeContainer, text string) {
	now := f.now()
	if n := len(c.logs); n > 0 && !now.After(c.logs[n-1].time) {
		// Strictly after the last line, as an engine's stamps are, so
		// that "since the last line" never takes the last line back.
		now = c.logs[n-1].time.Add(time.Nanosecond)
	}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		c.logs = append(c.logs, logLine{time: now, text: l})
	}
	c.wakeLogs()
}

// wakeLogs wakes the followers of c's logs. Fake.mu must be held.
func (c *fakeContainer) wakeLogs() {
	close(c.logWake)
	c.logWake = make(chan struct{})
}

// logReader reads a container's output line by line, straight from the
// fake, without a goroutine of its own.
type logReader struct {
	f      *Fake
	c      *fakeContainer
	next   int // index of the next line to read
	opts   runtime.LogOptions
	ctx    context.Context
	down   <-chan struct{}
	closed chan struct{}
	once   sync.Once

	pending []byte
}

func (r *logReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		select {
		case <-r.closed:
			return 0, io.EOF
		default:
		}
		r.f.mu.Lock()
		if r.next < len(r.c.logs) {
			l := r.c.logs[r.next]
			r.next++
			r.f.mu.Unlock()
			if l.time.Before(r.opts.Since) {
				continue
			}
			r.pending = r.format(l)
			break
		}
		if !r.opts.Follow || !r.c.alive() || r.c.removed {
			r.f.mu.Unlock()
			return 0, io.EOF
		}
		wake := r.c.logWake
		r.f.mu.Unlock()
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, io.EOF
		case <-r.closed:
			return 0, io.EOF
		case <-r.down:
			return 0, fmt.Errorf("logs %q: %w", r.c.spec.Name, errDown)
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *logReader) format(l logLine) []byte {
	if r.opts.Timestamps {
		return []byte(l.time.UTC().Format(timestampFormat) + " " + l.text + "\n")
	}
	return []byte(l.text + "\n")
}

// Close ends the stream; a Read blocked in it returns io.EOF.
func (r *logReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}
