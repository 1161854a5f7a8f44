package server

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// call is one request, parsed: the path's user ID, the checked query and
// the body (read, not yet decoded).
type call struct {
	userID string
	query  map[string]string
	body   []byte
}

// handler serves one method of one path. It returns an error to answer
// with, or nil when it answered itself.
type handler struct {
	serve func(s *Server, w http.ResponseWriter, r *http.Request, c call) error
	query []string // the query parameters it accepts
	body  bool     // it takes a JSON body
}

// routes maps each path template to its methods.
var routes = map[string]map[string]handler{
	"/v1/health":                     {http.MethodGet: {serve: (*Server).health}},
	"/v1/instances":                  {http.MethodGet: {serve: (*Server).list, query: []string{"state"}}},
	"/v1/instances/{userId}":         {http.MethodGet: {serve: (*Server).get}, http.MethodPut: {serve: (*Server).ensure, query: []string{"force"}, body: true}, http.MethodDelete: {serve: (*Server).remove, query: []string{"purge"}}},
	"/v1/instances/{userId}/touch":   {http.MethodPost: {serve: (*Server).touch}},
	"/v1/instances/{userId}/stop":    {http.MethodPost: {serve: (*Server).stop}},
	"/v1/instances/{userId}/restart": {http.MethodPost: {serve: (*Server).restart}},
	"/v1/instances/{userId}/logs":    {http.MethodGet: {serve: (*Server).logs, query: []string{"tail", "since", "follow", "timestamps"}}},
	"/v1/instances/{userId}/exec":    {http.MethodPost: {serve: (*Server).exec, body: true}},
	"/v1/prune":                      {http.MethodPost: {serve: (*Server).prune, body: true}},
	"/v1/images/pull":                {http.MethodPost: {serve: (*Server).pull, body: true}},
	"/v1/import":                     {http.MethodPost: {serve: (*Server).importUsers, body: true}},
	"/v1/events":                     {http.MethodGet: {serve: (*Server).events}},
	"/v1/openapi.json":               {http.MethodGet: {serve: (*Server).openapi}},
	"/metrics":                       {http.MethodGet: {serve: (*Server).serveMetrics}},
}

// match finds the route of an escaped path: its template and the user ID
// it names ("" when none). ok is false for a path no route serves: paths
// match exactly, a trailing slash included (404, never a redirect).
func match(escaped string) (template, userID string, ok bool) {
	if _, ok := routes[escaped]; ok {
		return escaped, "", true
	}
	rest, found := strings.CutPrefix(escaped, "/v1/instances/")
	if !found {
		return "", "", false
	}
	seg, action, hasAction := strings.Cut(rest, "/")
	// Exact: no empty segment, so no trailing slash ("/v1/instances/a/"
	// is not "/v1/instances/a").
	if seg == "" || hasAction && action == "" || strings.Contains(action, "/") {
		return "", "", false
	}
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		return "", "", false
	}
	template = "/v1/instances/{userId}"
	if action != "" {
		template += "/" + action
	}
	if _, ok := routes[template]; !ok {
		return "", "", false
	}
	return template, id, true
}

// routeName is the route template of a path, for metrics ("other" when
// none).
func routeName(escaped string) string {
	if t, _, ok := match(escaped); ok {
		return t
	}
	return "other"
}

// serveAPI routes a request, checks its query and reads its body, then
// calls its handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	template, userID, ok := match(r.URL.EscapedPath())
	if !ok {
		s.writeError(w, r, socketapi.Errorf(socketapi.ErrNotFound, "no such path: %s", r.URL.EscapedPath()))
		return
	}
	methods := routes[template]
	h, ok := methods[r.Method]
	if !ok && r.Method == http.MethodHead {
		// HEAD is served wherever GET is: its status and headers, no body
		// (net/http drops what the handler writes); the streams answer
		// their headers and end (see events and logs).
		h, ok = methods[http.MethodGet]
	}
	if !ok {
		allow := allowed(methods)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, socketapi.Errorf(socketapi.ErrMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, template, strings.Join(allow, ", ")))
		return
	}
	q, err := parseQuery(r.URL.RawQuery, h.query...)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(w, r, h.body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := h.serve(s, w, r, call{userID: userID, query: q, body: body}); err != nil {
		s.writeError(w, r, err)
	}
}

// allowed lists the methods of a path, sorted, for an Allow header: HEAD
// with GET.
func allowed(methods map[string]handler) []string {
	allow := make([]string, 0, len(methods)+1)
	for m := range methods {
		allow = append(allow, m)
	}
	if _, ok := methods[http.MethodGet]; ok {
		allow = append(allow, http.MethodHead)
	}
	sort.Strings(allow)
	return allow
}

// opContext is the context of a mutating call: it outlives the caller
// hanging up, within CallTimeout, and ends if Shutdown gives up on it.
func (s *Server) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ops, s.cfg.CallTimeout)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ call) error {
	h := s.cfg.Agent.Health(r.Context())
	status := http.StatusOK
	if h.Status == socketapi.HealthUnavailable {
		status = http.StatusServiceUnavailable
		if st, ok := r.Context().Value(callStateKey{}).(*callState); ok {
			st.code = socketapi.CodeRuntimeUnavailable
		}
	}
	writeJSON(w, status, h)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, c call) error {
	state := c.query["state"]
	switch state {
	case "", socketapi.StateRunning, socketapi.StatePaused, socketapi.StateStopped, socketapi.StateMissing:
	default:
		return socketapi.Errorf(socketapi.ErrInvalidArgument, "invalid state %q: want running, paused, stopped or missing", state)
	}
	return writeInstances(w, func(fn func(*socketapi.Instance)) error { return s.cfg.Agent.EachInstance(state, fn) })
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, c call) error {
	in, err := s.cfg.Agent.Get(r.Context(), c.userID)
	if err != nil {
		return err
	}
	writeInstance(w, http.StatusOK, &in)
	return nil
}

func (s *Server) ensure(w http.ResponseWriter, r *http.Request, c call) error {
	force, err := parseBool("force", c.query["force"])
	if err != nil {
		return err
	}
	var spec socketapi.InstanceSpec
	if err := decodeJSON(c.body, &spec); err != nil {
		return err
	}
	if wantsNDJSON(r) {
		return s.progressCall(w, r, func(ctx context.Context, progress func(socketapi.PullProgress)) (socketapi.StreamLine, error) {
			in, err := s.cfg.Agent.Ensure(ctx, c.userID, spec, socketapi.EnsureOptions{Force: force, Progress: progress})
			if err != nil {
				return socketapi.StreamLine{}, err
			}
			if in.Outcome == socketapi.OutcomeReused {
				markRoutine(r)
			}
			return socketapi.StreamLine{Instance: &in}, nil
		})
	}
	ctx, cancel := s.opContext()
	defer cancel()
	in, err := s.cfg.Agent.Ensure(ctx, c.userID, spec, socketapi.EnsureOptions{Force: force})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if in.Outcome == socketapi.OutcomeCreated {
		status = http.StatusCreated
	}
	if in.Outcome == socketapi.OutcomeReused {
		markRoutine(r)
	}
	writeInstance(w, status, &in)
	return nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request, c call) error {
	purge, err := parseBool("purge", c.query["purge"])
	if err != nil {
		return err
	}
	ctx, cancel := s.opContext()
	defer cancel()
	if err := s.cfg.Agent.Remove(ctx, c.userID, purge); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) touch(w http.ResponseWriter, r *http.Request, c call) error {
	markRoutine(r)
	return s.instanceOp(w, c, s.cfg.Agent.Touch)
}

// markRoutine tells the log that r is a routine call (see logCall).
func markRoutine(r *http.Request) {
	if st, ok := r.Context().Value(callStateKey{}).(*callState); ok {
		st.routine = true
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, c call) error {
	return s.instanceOp(w, c, s.cfg.Agent.Stop)
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request, c call) error {
	return s.instanceOp(w, c, s.cfg.Agent.Restart)
}

func (s *Server) instanceOp(w http.ResponseWriter, c call, op func(context.Context, string) (socketapi.Instance, error)) error {
	ctx, cancel := s.opContext()
	defer cancel()
	in, err := op(ctx, c.userID)
	if err != nil {
		return err
	}
	writeInstance(w, http.StatusOK, &in)
	return nil
}

// exec runs a command in an instance. The body (the command) is never
// logged.
func (s *Server) exec(w http.ResponseWriter, r *http.Request, c call) error {
	return jsonOp(s, w, c, func(ctx context.Context, req socketapi.ExecRequest) (socketapi.ExecResult, error) {
		return s.cfg.Agent.Exec(ctx, c.userID, req)
	})
}

// pull pulls an image again (POST /v1/images/pull), streaming its
// progress when the caller asks for NDJSON.
func (s *Server) pull(w http.ResponseWriter, r *http.Request, c call) error {
	var req socketapi.PullRequest
	if err := decodeJSON(c.body, &req); err != nil {
		return err
	}
	if req.Image == "" {
		return socketapi.Errorf(socketapi.ErrInvalidArgument, "image is required")
	}
	if wantsNDJSON(r) {
		return s.progressCall(w, r, func(ctx context.Context, progress func(socketapi.PullProgress)) (socketapi.StreamLine, error) {
			res, err := s.cfg.Agent.PullImage(ctx, req.Image, progress)
			if err != nil {
				return socketapi.StreamLine{}, err
			}
			return socketapi.StreamLine{Pull: &res}, nil
		})
	}
	ctx, cancel := s.opContext()
	defer cancel()
	res, err := s.cfg.Agent.PullImage(ctx, req.Image, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) prune(w http.ResponseWriter, r *http.Request, c call) error {
	return jsonOp(s, w, c, s.cfg.Agent.Prune)
}

// importUsers brings the Zaki platform's existing users over.
func (s *Server) importUsers(w http.ResponseWriter, r *http.Request, c call) error {
	return jsonOp(s, w, c, s.cfg.Agent.Import)
}

// jsonOp serves a mutating call whose body decodes into a Req and whose
// result is answered as JSON with 200.
func jsonOp[Req, Res any](s *Server, w http.ResponseWriter, c call, op func(context.Context, Req) (Res, error)) error {
	var req Req
	if err := decodeJSON(c.body, &req); err != nil {
		return err
	}
	ctx, cancel := s.opContext()
	defer cancel()
	res, err := op(ctx, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ call) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(socketapi.OpenAPI)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(socketapi.OpenAPI)
	return nil
}
