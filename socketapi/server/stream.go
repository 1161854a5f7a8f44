package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// events streams lifecycle events as NDJSON, one flushed line each, until
// the caller hangs up or the server shuts down. A slow reader never slows
// the agent: its subscription drops events (counted in the next one's
// "dropped"), and a reader stuck for WriteTimeout is cut off. A stream
// silent for Heartbeat gets a blank line (NDJSON readers skip it), so
// that a reader gone away is found out while no event flows; streams past
// MaxEventStreams are refused (429).
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ call) error {
	release, err := s.eventSlots.acquire("")
	if err != nil {
		return err
	}
	defer release()
	events, cancel := s.cfg.Agent.Subscribe(s.cfg.EventBuffer)
	defer cancel()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
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
// or the server shuts down.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, c call) error {
	tail, err := parseTail(c.query["tail"])
	if err != nil {
		return err
	}
	follow, err := parseBool("follow", c.query["follow"])
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
	rd, err := s.cfg.Agent.Logs(ctx, c.userID, socketapi.LogOptions{Tail: tail, Follow: follow})
	if err != nil {
		return err
	}
	defer rd.Close()
	// A Read blocked in the stream returns once it is closed.
	defer context.AfterFunc(ctx, func() { rd.Close() })()

	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
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
