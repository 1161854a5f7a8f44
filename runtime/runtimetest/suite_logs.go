package runtimetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testLogs: Logs returns a container's output, its last lines with Tail
// (none with Tail 0), those from a time on with Since, timestamps on
// request; a follow ends when its ctx is cancelled, or by itself once the
// container has stopped; a missing container is ErrNotFound.
func (s *suite) testLogs(t *testing.T) {
	ctx := s.ctx(t)
	name := s.name("logs")
	s.create(t, s.simpleSpec(name, nil))
	s.start(t, name)

	var all []string
	s.waitFor(t, func(poll.LogT) poll.Result {
		lines, err := s.readLogs(ctx, name, runtime.LogOptions{})
		if err != nil {
			return poll.Error(err)
		}
		if len(lines) == 0 {
			return poll.Continue("logs of %s: no output yet", name)
		}
		all = lines
		return poll.Success()
	})
	last := all[len(all)-1]

	tail, err := s.readLogs(ctx, name, runtime.LogOptions{Tail: new(1)})
	if err != nil {
		t.Fatalf("logs %s tail 1: %v", name, err)
	}
	if len(tail) != 1 || tail[0] != last {
		t.Errorf("logs %s tail 1: got %q, want [%q]", name, tail, last)
	}

	stamped, err := s.readLogs(ctx, name, runtime.LogOptions{Tail: new(1), Timestamps: true})
	if err != nil {
		t.Fatalf("logs %s with timestamps: %v", name, err)
	}
	if len(stamped) != 1 {
		t.Errorf("logs %s tail 1 with timestamps: got %q, want one line", name, stamped)
	} else if ts, text, _ := strings.Cut(stamped[0], " "); text != last {
		t.Errorf("logs %s with timestamps: got %q, want a timestamp, a space and %q", name, stamped[0], last)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("logs %s with timestamps: %q does not start with an RFC 3339 time: %v", name, stamped[0], err)
	}

	t.Run("FollowCancel", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rc, err := s.rt.Logs(fctx, name, runtime.LogOptions{Follow: true})
		if err != nil {
			t.Fatalf("logs %s follow: %v", name, err)
		}
		defer rc.Close()
		lines, done := scanLines(rc)
		select {
		case l := <-lines:
			if l != all[0] {
				t.Errorf("logs %s follow: first line %q, want %q", name, l, all[0])
			}
		case err := <-done:
			t.Fatalf("logs %s follow: ended (%v) before its first line", name, err)
		case <-time.After(s.cfg.Timeout):
			t.Fatalf("logs %s follow: no line within %v", name, s.cfg.Timeout)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(s.cfg.Timeout):
			t.Errorf("logs %s follow: still streaming %v after its ctx was cancelled", name, s.cfg.Timeout)
		}
	})

	t.Run("FollowStopped", func(t *testing.T) {
		if err := s.rt.Stop(ctx, []string{name}, stopTimeout); err != nil {
			t.Fatalf("stop %s: %v", name, err)
		}
		var (
			lines []string
			err   error
		)
		if within(t, s.cfg.Timeout, "logs "+name+" follow of a stopped container", func() {
			lines, err = s.readLogs(ctx, name, runtime.LogOptions{Follow: true})
		}) {
			if err != nil {
				t.Errorf("logs %s follow of a stopped container: %v", name, err)
			}
			if len(lines) < len(all) {
				t.Errorf("logs %s follow of a stopped container: got %q, want at least %q", name, lines, all)
			}
		}
	})

	t.Run("SinceAndTail0", func(t *testing.T) { s.testLogsSince(t, name) })

	missing := s.name("logs-missing")
	if err := s.logsErr(ctx, missing); runtime.Class(err) != runtime.ErrNotFound {
		t.Errorf("logs %s (missing): got %v, want class %v", missing, err, runtime.ErrNotFound)
	}
}

// readLogs reads a container's logs to their end, as lines.
func (s *suite) readLogs(ctx context.Context, ref string, opts runtime.LogOptions) ([]string, error) {
	rc, err := s.rt.Logs(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return nil, err
	}
	return strings.Split(text, "\n"), err
}

// scanLines reads r line by line into lines, then sends the end of r
// (nil for EOF) on done. It stops when r ends.
func scanLines(r io.Reader) (lines <-chan string, done <-chan error) {
	l := make(chan string, 1024)
	d := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case l <- sc.Text():
			default: // nobody reads that many: drop
			}
		}
		d <- sc.Err()
	}()
	return l, d
}

// testLogsSince starts the stopped container name again, so that its
// output has lines of two moments, then checks Since (between them: the
// later lines only; in the future: none), Since with Tail, and Tail 0
// (none, with or without Timestamps; followed, on a container that stops,
// none either).
func (s *suite) testLogsSince(t *testing.T, name string) {
	ctx := s.ctx(t)
	before, err := s.readStamped(ctx, name, runtime.LogOptions{})
	if err != nil || len(before) == 0 {
		t.Fatalf("logs %s with timestamps: %v, %d lines", name, err, len(before))
	}
	s.start(t, name)
	var lines []stampedLine
	s.waitFor(t, func(poll.LogT) poll.Result {
		lines, err = s.readStamped(ctx, name, runtime.LogOptions{})
		if err != nil {
			return poll.Error(err)
		}
		if lines[len(lines)-1].time.After(before[len(before)-1].time) {
			return poll.Success()
		}
		return poll.Continue("logs of %s: no line after its start yet", name)
	})
	// Since: halfway between the last line of before and the next one.
	k := len(before)
	for !lines[k].time.After(lines[k-1].time) {
		k++
	}
	since := lines[k-1].time.Add(lines[k].time.Sub(lines[k-1].time) / 2)
	var want []string
	for _, l := range lines[k:] {
		want = append(want, l.text)
	}
	got, err := s.readLogs(ctx, name, runtime.LogOptions{Since: since})
	if err != nil {
		t.Fatalf("logs %s since %v: %v", name, since, err)
	}
	// The container runs: it may have written more since.
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("logs %s since %v: got %q, want %q first (all: %v)", name, since, got, want, lines)
	}
	got, err = s.readLogs(ctx, name, runtime.LogOptions{Since: since, Tail: new(1)})
	if err != nil || len(got) != 1 {
		t.Errorf("logs %s since %v tail 1: got %q, %v; want one line", name, since, got, err)
	}
	got, err = s.readLogs(ctx, name, runtime.LogOptions{Since: time.Now().Add(time.Hour)})
	if err != nil || len(got) != 0 {
		t.Errorf("logs %s since an hour from now: got %q, %v; want nothing", name, got, err)
	}
	for _, stamps := range []bool{false, true} {
		got, err = s.readLogs(ctx, name, runtime.LogOptions{Tail: new(0), Timestamps: stamps})
		if err != nil || len(got) != 0 {
			t.Errorf("logs %s tail 0 (timestamps %v): got %q, %v; want nothing", name, stamps, got, err)
		}
	}
	if err := s.rt.Stop(ctx, []string{name}, stopTimeout); err != nil {
		t.Fatalf("stop %s: %v", name, err)
	}
	if within(t, s.cfg.Timeout, "logs "+name+" follow tail 0 of a stopped container", func() {
		got, err = s.readLogs(ctx, name, runtime.LogOptions{Tail: new(0), Follow: true})
	}) && (err != nil || len(got) != 0) {
		t.Errorf("logs %s follow tail 0 of a stopped container: got %q, %v; want nothing", name, got, err)
	}
	// Followed, with Since (and a Tail), on the stopped container: the
	// same lines, and the stream ends.
	final, err := s.readLogs(ctx, name, runtime.LogOptions{})
	if err != nil || len(final) == 0 {
		t.Fatalf("logs %s: %q, %v", name, final, err)
	}
	if within(t, s.cfg.Timeout, "logs "+name+" follow since", func() {
		got, err = s.readLogs(ctx, name, runtime.LogOptions{Since: since, Follow: true})
	}) && (err != nil || len(got) < len(want) || !slices.Equal(got[:len(want)], want)) {
		t.Errorf("logs %s follow since %v of a stopped container: got %q, %v; want %q first", name, since, got, err, want)
	}
	if within(t, s.cfg.Timeout, "logs "+name+" follow since tail 1", func() {
		got, err = s.readLogs(ctx, name, runtime.LogOptions{Since: since, Tail: new(1), Follow: true})
	}) && (err != nil || len(got) != 1 || got[0] != final[len(final)-1]) {
		t.Errorf("logs %s follow since %v tail 1 of a stopped container: got %q, %v; want [%q]", name, since, got, err, final[len(final)-1])
	}
}

// stampedLine is a line of output read with Timestamps.
type stampedLine struct {
	time time.Time
	text string
}

// readStamped reads a container's logs with timestamps, parsed.
func (s *suite) readStamped(ctx context.Context, ref string, opts runtime.LogOptions) ([]stampedLine, error) {
	opts.Timestamps = true
	lines, err := s.readLogs(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	out := make([]stampedLine, 0, len(lines))
	for _, l := range lines {
		ts, text, _ := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("logs %s: line %q does not start with an RFC 3339 time: %w", ref, l, err)
		}
		out = append(out, stampedLine{tm, text})
	}
	return out, nil
}
