package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// Agent is what the server needs of the agent, in the API's own types
// (daemon.APIAgent adapts an *agent.Agent).
type Agent interface {
	Health(ctx context.Context) socketapi.Health
	EachInstance(state string, fn func(*socketapi.Instance)) error
	Get(ctx context.Context, userID string) (socketapi.Instance, error)
	Ensure(ctx context.Context, userID string, spec socketapi.InstanceSpec, opts socketapi.EnsureOptions) (socketapi.Instance, error)
	Touch(ctx context.Context, userID string) (socketapi.Instance, error)
	Stop(ctx context.Context, userID string) (socketapi.Instance, error)
	Restart(ctx context.Context, userID string) (socketapi.Instance, error)
	Remove(ctx context.Context, userID string, purge bool) error
	Logs(ctx context.Context, userID string, opts socketapi.LogOptions) (io.ReadCloser, error)
	Prune(ctx context.Context, req socketapi.PruneRequest) (socketapi.PruneResult, error)
	Exec(ctx context.Context, userID string, req socketapi.ExecRequest) (socketapi.ExecResult, error)
	// PullImage pulls image again, even when present; progress, when set,
	// receives its status lines and must not block.
	PullImage(ctx context.Context, image string, progress func(socketapi.PullProgress)) (socketapi.PullResult, error)
	// Import brings the platform's existing users over (POST /v1/import).
	Import(ctx context.Context, req socketapi.ImportRequest) (socketapi.ImportResult, error)
	// Subscribe streams lifecycle events until cancel is called; a reader
	// more than buf events behind loses some.
	Subscribe(buf int) (events <-chan socketapi.Event, cancel func())
}

// Config configures a Server. Zero durations and sizes take their defaults.
type Config struct {
	Agent  Agent
	Logger *slog.Logger // slog.Default() when nil
	// MaxBodyBytes caps a request body (413 past it); default 1 MiB.
	MaxBodyBytes int64
	// AllowUIDs and AllowGIDs may call besides root and the agent's own
	// uid; a gid matches the caller's primary or any supplementary group.
	AllowUIDs, AllowGIDs []int
	// Metrics is the agent's metrics registry, served at GET /metrics with
	// the API's own metrics; nil serves the API's alone.
	Metrics prometheus.Gatherer

	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// BodyTimeout reading its body (default 30s), WriteTimeout each write of
	// a response (default 30s: a stream reader stuck that long is dropped),
	// IdleTimeout an idle keep-alive connection (default 2m).
	ReadHeaderTimeout, BodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// CallTimeout bounds a mutating call once its request is read (default
	// 15m); the caller hanging up does not cancel it.
	CallTimeout time.Duration
	// EventBuffer is how many events a slow /v1/events reader may fall
	// behind before it loses some (default 256).
	EventBuffer int
	// MaxEventStreams bounds the /v1/events streams open at once (default
	// 64); MaxLogFollowers the logs?follow=true streams (default 32), and
	// MaxLogFollowersPerUser those of one user (default 2). One past a
	// bound is answered 429 too_many_requests.
	MaxEventStreams, MaxLogFollowers, MaxLogFollowersPerUser int
	// Heartbeat is how long an event stream stays silent before the
	// server writes a blank line to it (default 15s), so that a reader
	// gone away is noticed even when no event flows.
	Heartbeat time.Duration
	// Middleware, when set, wraps the whole handler, peer check included
	// (tests check every response against the OpenAPI document with it).
	Middleware func(http.Handler) http.Handler
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.BodyTimeout, 30*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 2*time.Minute)
	def(&c.CallTimeout, 15*time.Minute)
	def(&c.Heartbeat, 15*time.Second)
	for _, n := range []struct {
		v   *int
		def int
	}{{&c.EventBuffer, 256}, {&c.MaxEventStreams, 64}, {&c.MaxLogFollowers, 32}, {&c.MaxLogFollowersPerUser, 2}} {
		if *n.v <= 0 {
			*n.v = n.def
		}
	}
	return c
}

// Server serves the API. Create it with New, run it with Serve, end it
// with Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hs      *http.Server
	selfUID int
	allowU  map[int]bool
	allowG  map[int]bool
	// eventSlots and followSlots bound the streams callers hold.
	eventSlots, followSlots *streamSlots
	metrics                 *apiMetrics

	// closing is closed when Shutdown begins: streams end.
	closing   chan struct{}
	closeOnce sync.Once
	// ops is the base of mutating calls: cancelled only when Shutdown gives
	// up waiting for them.
	ops       context.Context
	cancelOps context.CancelFunc
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		selfUID: os.Geteuid(),
		allowU:  map[int]bool{},
		allowG:  map[int]bool{},
		metrics: newAPIMetrics(),
		closing: make(chan struct{}),

		eventSlots:  newStreamSlots("event streams", cfg.MaxEventStreams, 0),
		followSlots: newStreamSlots("log followers", cfg.MaxLogFollowers, cfg.MaxLogFollowersPerUser),
	}
	for _, u := range cfg.AllowUIDs {
		s.allowU[u] = true
	}
	for _, g := range cfg.AllowGIDs {
		s.allowG[g] = true
	}
	s.ops, s.cancelOps = context.WithCancel(context.Background())
	var h http.Handler = http.HandlerFunc(s.serveHTTP)
	if cfg.Middleware != nil {
		h = cfg.Middleware(h)
	}
	s.hs = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve accepts connections on ln until Shutdown; it returns nil after a
// Shutdown, and the listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	err := s.hs.Serve(envelopeListener{ln})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends the streams (events, logs
// follow) and waits for the calls in flight to finish, until ctx ends:
// then it cancels them and closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	err := s.hs.Shutdown(ctx)
	s.cancelOps()
	if err != nil {
		s.hs.Close()
	}
	return err
}

// serveHTTP checks the caller, then serves the API, logging the call.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w, rc: http.NewResponseController(w), writeTimeout: s.cfg.WriteTimeout}
	p := peerFrom(r.Context())
	rt := routeName(r.URL.EscapedPath())
	st := &callState{}
	defer func() {
		s.metrics.observe(r.Method, rt, st.statusOf(rw), time.Since(start))
		s.logCall(r, p, rw, st, time.Since(start))
	}()
	r = r.WithContext(context.WithValue(r.Context(), callStateKey{}, st))
	defer func() { rw.code = st.code }()
	if err := s.authorize(p, r); err != nil {
		s.writeError(rw, r, err)
		return
	}
	s.serveAPI(rw, r)
}

// logCall logs every refused call at warn level, every other mutating
// call at info, and reads and routine calls at debug: a touch, and an
// ensure answered by the running instance as it was ("reused"), which the
// platform sends with every user request. Never a body, never a header
// value.
func (s *Server) logCall(r *http.Request, p peer, rw *responseWriter, st *callState, d time.Duration) {
	level := slog.LevelDebug
	status := st.statusOf(rw)
	switch {
	case status == http.StatusForbidden:
		level = slog.LevelWarn
	case st.routine && status < 300:
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	outcome := "ok"
	if rw.code != "" {
		outcome = rw.code
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status),
		slog.String("outcome", outcome),
		slog.Duration("duration", d),
	}
	if p.ok {
		attrs = append(attrs, slog.Int("uid", p.uid), slog.Int("pid", p.pid))
	} else {
		attrs = append(attrs, slog.String("peer", "unknown"))
	}
	if r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String("query", r.URL.RawQuery))
	}
	if st.status != 0 {
		attrs = append(attrs, slog.Bool("streamed", true))
	}
	s.log.LogAttrs(context.Background(), level, "api call", attrs...)
}

// callState carries what a call's handlers tell the log: the error code
// answered, and whether the call was routine (see logCall).
type callState struct {
	code    string
	routine bool
	// status is the status a streamed answer (200) would have had without
	// streaming: an error line's, for the log and the metrics.
	status int
}

// statusOf is the status of the call answered through rw: the one
// answered, or a streamed error's.
func (st *callState) statusOf(rw *responseWriter) int {
	if st.status != 0 {
		return st.status
	}
	return rw.status()
}

type callStateKey struct{}

// writeError answers with err's status and error body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := socketapi.HTTPError(err)
	if st, ok := r.Context().Value(callStateKey{}).(*callState); ok {
		st.code = body.Error.Code
	}
	if status == http.StatusInternalServerError {
		s.log.Error("api internal error", "err", err)
	}
	writeJSON(w, status, body)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(socketapi.ErrorBody{Error: socketapi.ErrorDetail{Code: socketapi.CodeInternal, Message: "encode response: " + err.Error()}})
	}
	writeBody(w, status, append(b, '\n'))
}

// writeBody answers with b, a JSON document and its newline.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

// responseWriter records the status and error code of a response (for the
// log and the metrics) and bounds each write.
type responseWriter struct {
	http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	code         string // the error code answered, if any
	wrote        int
}

func (w *responseWriter) WriteHeader(status int) {
	if w.wrote == 0 {
		w.wrote = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.wrote == 0 {
		w.wrote = http.StatusOK
	}
	w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered; it reports failure (a stuck reader).
func (w *responseWriter) Flush() {
	w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	w.rc.Flush()
}

// FlushError is Flush with its error.
func (w *responseWriter) FlushError() error {
	w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	return w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) status() int {
	if w.wrote == 0 {
		return http.StatusOK
	}
	return w.wrote
}
