package server

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// events streams lifecycle events as NDJSON, one flushed line each, until
// the caller hangs up or the server shuts down. A slow reader never slows
// the agent: its subscription drops events (counted in the next one's
// "dropped"), and a reader stuck for WriteTimeout is cut off. A stream
// silent for Heartbeat gets a blank line (NDJSON readers skip it), so
// that a reader gone away is found out while no event flows; streams past
// MaxEventStreams are refused (429). HEAD answers the stream's status and
// headers (429 too when no slot is free) and ends.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ call) error {
	release, err := s.eventSlots.acquire("")
	if err != nil {
		return err
	}
	defer release()
	if r.Method == http.MethodHead {
		writeStreamHeader(w, socketapi.NDJSON)
		return nil
	}
	events, cancel := s.cfg.Agent.Subscribe(s.cfg.EventBuffer)
	defer cancel()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	writeStreamHeader(w, socketapi.NDJSON)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return nil
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.closing:
			return nil
		case <-beat.C:
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			beat.Reset(s.cfg.Heartbeat)
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
	}
}

// logs streams a container's output as it comes, flushed after every
// read, until it ends (without follow: what there is), the caller hangs up
// or the server shuts down. HEAD asks the engine for the last line alone
// (so that its status is GET's: 404 for a user without a container), then
// answers the headers without reading it.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, c call) error {
	tail, err := parseTail(c.query["tail"])
	if err != nil {
		return err
	}
	follow, err := parseBool("follow", c.query["follow"])
	if err != nil {
		return err
	}
	since, err := socketapi.ParseSince(c.query["since"], time.Now())
	if err != nil {
		return err
	}
	timestamps, err := parseBool("timestamps", c.query["timestamps"])
	if err != nil {
		return err
	}
	if follow {
		// Each follower is a `docker logs -f` of its own: bounded.
		release, err := s.followSlots.acquire(c.userID)
		if err != nil {
			return err
		}
		defer release()
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	opts := socketapi.LogOptions{Tail: tail, Since: since, Follow: follow, Timestamps: timestamps}
	if r.Method == http.MethodHead {
		one := 1
		opts = socketapi.LogOptions{Tail: &one}
	}
	rd, err := s.cfg.Agent.Logs(ctx, c.userID, opts)
	if err != nil {
		return err
	}
	defer rd.Close()
	// A Read blocked in the stream returns once it is closed.
	defer context.AfterFunc(ctx, func() { rd.Close() })()

	writeStreamHeader(w, "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		return nil
	}
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return nil
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		}
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				s.log.Warn("logs stream broke", "user", c.userID, "err", err)
			}
			return nil
		}
	}
}

// writeStreamHeader starts a streamed answer: 200, of content type ct,
// never cached.
func writeStreamHeader(w http.ResponseWriter, ct string) {
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}

// wantsNDJSON tells whether the caller's Accept header names NDJSON: then
// an ensure or a pull streams its progress (see progressCall).
func wantsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == socketapi.NDJSON && params["q"] != "0" {
				return true
			}
		}
	}
	return false
}

// progressBuffer is how many progress lines may wait for a slow reader
// before newer ones are dropped.
const progressBuffer = 256

// progressCall serves an ensure or a pull asked with Accept:
// application/x-ndjson. op runs within the operation timeout, as without
// NDJSON, and gets a progress callback that never blocks: its lines wait
// in a buffer for a writer goroutine, and when the buffer is full (the
// reader is slow or gone) they are dropped. The first line starts the
// answer: 200, application/x-ndjson, each line flushed. Then the last
// line is op's result (result makes it) or its error as {"error":
// {"status", "code", "message"}}. An op that fails before any line is
// written answers its error as usual (its status, a JSON error body); one
// that succeeds without progress answers its result line alone.
func (s *Server) progressCall(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, progress func(socketapi.PullProgress)) (socketapi.StreamLine, error)) error {
	pw := newProgressWriter(w)
	go pw.run()
	ctx, cancel := s.opContext()
	line, err := op(ctx, pw.progress)
	cancel()
	pw.finish()
	if err != nil {
		if !pw.started {
			return err
		}
		status, body := socketapi.HTTPError(err)
		if st, ok := r.Context().Value(callStateKey{}).(*callState); ok {
			st.code = body.Error.Code
			st.status = status
		}
		if status == http.StatusInternalServerError {
			s.log.Error("api internal error", "err", err)
		}
		line = socketapi.StreamLine{Error: &socketapi.StreamError{Status: status, Code: body.Error.Code, Message: body.Error.Message}}
	}
	pw.write(line)
	return nil
}

// progressWriter writes the lines of a progress stream (see
// progressCall): the progress lines from its own goroutine (run), the
// last one from the handler's once run is done.
type progressWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	lines chan socketapi.PullProgress
	stop  chan struct{}
	done  chan struct{}
	// started and broken are run's until done is closed: the answer has
	// begun, a write failed (the reader is gone or stuck: nothing more is
	// written).
	started, broken bool
}

func newProgressWriter(w http.ResponseWriter) *progressWriter {
	return &progressWriter{
		w:     w,
		rc:    http.NewResponseController(w),
		lines: make(chan socketapi.PullProgress, progressBuffer),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// progress queues a line, or drops it when the writer is behind; it never
// blocks (the agent calls it from the pull every waiter shares).
func (p *progressWriter) progress(pp socketapi.PullProgress) {
	select {
	case p.lines <- pp:
	default:
	}
}

// run writes the queued lines until finish, then what is left queued.
func (p *progressWriter) run() {
	defer close(p.done)
	for {
		select {
		case pp := <-p.lines:
			p.write(socketapi.StreamLine{Progress: &pp})
		case <-p.stop:
			for {
				select {
				case pp := <-p.lines:
					p.write(socketapi.StreamLine{Progress: &pp})
				default:
					return
				}
			}
		}
	}
}

// finish waits until every line queued so far is written.
func (p *progressWriter) finish() {
	close(p.stop)
	<-p.done
}

// write writes one line, starting the answer first if need be.
func (p *progressWriter) write(line socketapi.StreamLine) {
	if p.broken {
		return
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	if !p.started {
		p.started = true
		writeStreamHeader(p.w, socketapi.NDJSON)
	}
	if _, err := p.w.Write(append(b, '\n')); err != nil {
		p.broken = true
		return
	}
	if p.rc.Flush() != nil {
		p.broken = true
	}
}
