package socketapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultSocket is the agent's socket; SocketEnv names the environment
// variable that overrides it.
const (
	DefaultSocket = "/run/zaki-agent/agent.sock"
	SocketEnv     = "ZAKI_SOCKET"
)

// Client calls the agent's API over its Unix socket. The zero value is
// usable: it reaches $ZAKI_SOCKET, or DefaultSocket. A Client is safe for
// concurrent use; do not copy one after its first call.
type Client struct {
	// Socket is the agent's socket path; "" means $ZAKI_SOCKET, or
	// DefaultSocket.
	Socket string
	// HTTPClient, when set, carries the requests instead of the client's
	// own (its transport must reach the agent; tests wrap one).
	HTTPClient *http.Client
	// UserAgent is sent with every request when set.
	UserAgent string

	once sync.Once
	hc   *http.Client
}

// baseURL is the URL every request is made against; the host is ignored
// by the agent (the socket is the address).
const baseURL = "http://zaki-agent"

// SocketPath returns the socket the client reaches.
func (c *Client) SocketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	return DefaultSocket
}

func (c *Client) http() *http.Client {
	c.once.Do(func() {
		if c.HTTPClient != nil {
			c.hc = c.HTTPClient
			return
		}
		c.hc = &http.Client{Transport: NewTransport(c.SocketPath())}
	})
	return c.hc
}

// NewTransport returns an HTTP transport whose every connection goes to
// the Unix socket at path, whatever the URL's host.
func NewTransport(path string) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0, // ensure may take long: ctx bounds it
		DisableCompression:    true,
	}
}

// send sends one request and returns the response, whatever its status.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	return c.sendAccept(ctx, method, path, query, body, "")
}

// sendAccept is send with an Accept header (when not "").
func (c *Client) sendAccept(ctx context.Context, method, path string, query url.Values, body any, accept string) (*http.Response, error) {
	u := baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, Errorf(ErrUnavailable, "cannot reach zaki-agent at %s: %v", c.SocketPath(), unwrapURLError(err))
	}
	return resp, nil
}

// request is send, but any status other than 2xx becomes an *Error (the
// body read and closed).
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, errorFromResponse(resp.StatusCode, b, json.Unmarshal)
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// call sends a request and decodes a JSON response into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func instancePath(userID string, action ...string) string {
	p := "/v1/instances/" + url.PathEscape(userID)
	for _, a := range action {
		p += "/" + a
	}
	return p
}

// Health returns the agent's health. When the runtime is unavailable (503)
// it returns the health document and an error of class ErrUnavailable.
func (c *Client) Health(ctx context.Context) (Health, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/health", nil, nil)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var h Health
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusServiceUnavailable {
		if json.Unmarshal(b, &h) == nil && h.Status != "" {
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
			msg := "runtime unavailable"
			if h.Runtime.Error != "" {
				msg += ": " + h.Runtime.Error
			}
			return h, &Error{Status: resp.StatusCode, Code: CodeRuntimeUnavailable, Message: msg}
		}
	}
	return Health{}, errorFromResponse(resp.StatusCode, b, json.Unmarshal)
}

// List returns the instances, all of them when state is "", else those in
// that state (running, paused, stopped or missing).
func (c *Client) List(ctx context.Context, state string) ([]Instance, error) {
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	var out []Instance
	if err := c.call(ctx, http.MethodGet, "/v1/instances", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns userID's instance.
func (c *Client) Get(ctx context.Context, userID string) (Instance, error) {
	var in Instance
	err := c.call(ctx, http.MethodGet, instancePath(userID), nil, nil, &in)
	return in, err
}

// Ensure makes userID's instance exist, run and accept connections, and
// returns it; its Outcome says what it took.
func (c *Client) Ensure(ctx context.Context, userID string, spec InstanceSpec) (Instance, error) {
	return c.EnsureWith(ctx, userID, spec, ClientEnsureOptions{})
}

// EnsureWithProgress is Ensure, calling progress with each status line
// of the image pull the ensure waits for, if any (see
// ClientEnsureOptions.Progress).
func (c *Client) EnsureWithProgress(ctx context.Context, userID string, spec InstanceSpec, progress func(PullProgress)) (Instance, error) {
	return c.EnsureWith(ctx, userID, spec, ClientEnsureOptions{Progress: progress})
}

// ClientEnsureOptions tune EnsureWith.
type ClientEnsureOptions struct {
	// Force applies a changed spec (or a rebuilt image) to a hot instance
	// now, recreating it, instead of marking it stale (?force=true). An
	// instance whose spec is the same is reused all the same.
	Force bool
	// Progress, when set, is called with each status line of the image
	// pull the ensure waits for, if any (one call at a time, in the
	// caller's goroutine). The agent is asked for NDJSON (Accept:
	// application/x-ndjson); the errors are those of Ensure. A line the
	// agent could not send in time (a slow reader) is left out.
	Progress func(PullProgress)
}

// EnsureWith is Ensure with options.
func (c *Client) EnsureWith(ctx context.Context, userID string, spec InstanceSpec, opts ClientEnsureOptions) (Instance, error) {
	var q url.Values
	if opts.Force {
		q = url.Values{"force": {"true"}}
	}
	ensure := func() (Instance, error) {
		var in Instance
		err := c.call(ctx, http.MethodPut, instancePath(userID), q, spec, &in)
		return in, err
	}
	progress := opts.Progress
	if progress == nil {
		return ensure()
	}
	var in Instance
	err := c.streamCall(ctx, http.MethodPut, instancePath(userID), q, spec, progress, &in, func(l *StreamLine) bool {
		if l.Instance != nil {
			in = *l.Instance
		}
		return l.Instance != nil
	})
	return in, err
}

// PullImage pulls image again from its registry, even when the agent's
// host has it, so that a moved tag is brought over (the next cold ensure
// of an instance of it makes the instance anew). The image must be the
// agent's default or match its allowedImages (ErrForbidden). progress,
// when not nil, is called with each status line of the pull, as
// EnsureWithProgress does. A pull that fails is ErrPullFailed (502), with
// the engine's reason.
func (c *Client) PullImage(ctx context.Context, image string, progress func(PullProgress)) (PullResult, error) {
	req := PullRequest{Image: image}
	var res PullResult
	if progress == nil {
		err := c.call(ctx, http.MethodPost, "/v1/images/pull", nil, req, &res)
		return res, err
	}
	err := c.streamCall(ctx, http.MethodPost, "/v1/images/pull", nil, req, progress, &res, func(l *StreamLine) bool {
		if l.Pull != nil {
			res = *l.Pull
		}
		return l.Pull != nil
	})
	return res, err
}

// streamCall sends a request asking for NDJSON and reads its lines:
// progress lines to progress, then the result line (result takes it and
// says whether the line was one) or an error line, which becomes the
// *Error a plain answer would have been. An agent that answers plain JSON
// is read into out.
func (c *Client) streamCall(ctx context.Context, method, path string, q url.Values, body any, progress func(PullProgress), out any, result func(*StreamLine) bool) error {
	resp, err := c.sendAccept(ctx, method, path, q, body, NDJSON)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return errorFromResponse(resp.StatusCode, b, json.Unmarshal)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != NDJSON {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var l StreamLine
		if err := dec.Decode(&l); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return Errorf(ErrUnavailable, "%s %s: the agent's answer ended without a result", method, path)
			}
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
		switch {
		case l.Progress != nil:
			progress(*l.Progress)
		case l.Error != nil:
			status := l.Error.Status
			if status == 0 {
				status = StatusOfCode(l.Error.Code)
			}
			return &Error{Status: status, Code: l.Error.Code, Message: l.Error.Message}
		case result(&l):
			return nil
		}
	}
}

// Touch marks userID's instance as used now; a paused one is thawed
// (Outcome resumed).
func (c *Client) Touch(ctx context.Context, userID string) (Instance, error) {
	var in Instance
	err := c.call(ctx, http.MethodPost, instancePath(userID, "touch"), nil, nil, &in)
	return in, err
}

// Stop stops userID's instance, keeping its container.
func (c *Client) Stop(ctx context.Context, userID string) (Instance, error) {
	var in Instance
	err := c.call(ctx, http.MethodPost, instancePath(userID, "stop"), nil, nil, &in)
	return in, err
}

// Restart restarts userID's instance and waits until it is ready again.
func (c *Client) Restart(ctx context.Context, userID string) (Instance, error) {
	var in Instance
	err := c.call(ctx, http.MethodPost, instancePath(userID, "restart"), nil, nil, &in)
	return in, err
}

// Remove removes userID's container and registry entry; purge deletes the
// user's data too.
func (c *Client) Remove(ctx context.Context, userID string, purge bool) error {
	var q url.Values
	if purge {
		q = url.Values{"purge": {"true"}}
	}
	return c.call(ctx, http.MethodDelete, instancePath(userID), q, nil, nil)
}

// LogOptions tune Logs.
type LogOptions struct {
	// Tail, when set, keeps the last *Tail lines (0: none, so that with
	// Follow only new output comes, as docker logs --tail 0 -f); nil means
	// all of them.
	Tail *int
	// Since, when set, keeps the lines written at or after it (ParseSince
	// reads docker's forms).
	Since      time.Time
	Follow     bool // keep streaming until ctx ends or the container stops
	Timestamps bool // prefix each line with its RFC 3339 time and a space
}

// Logs streams userID's container output. Close the reader when done.
func (c *Client) Logs(ctx context.Context, userID string, opts LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Tail != nil {
		q.Set("tail", strconv.Itoa(*opts.Tail))
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Timestamps {
		q.Set("timestamps", "true")
	}
	resp, err := c.request(ctx, http.MethodGet, instancePath(userID, "logs"), q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Exec runs a command in userID's running instance and returns its exit
// code and output. A command that fails is no error: its exit code says
// so. The call waits for the command, up to its timeout.
func (c *Client) Exec(ctx context.Context, userID string, req ExecRequest) (ExecResult, error) {
	var res ExecResult
	err := c.call(ctx, http.MethodPost, instancePath(userID, "exec"), nil, req, &res)
	return res, err
}

// Prune runs one pruning pass now.
func (c *Client) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	var res PruneResult
	err := c.call(ctx, http.MethodPost, "/v1/prune", nil, req, &res)
	return res, err
}

// EventStream is a stream of lifecycle events (see Client.Events).
type EventStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Events follows the agent's lifecycle events from now on. The agent is
// subscribed when Events returns. Close the stream when done.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/events", nil, nil)
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Recv blocks for the next event; io.EOF when the stream ended.
func (s *EventStream) Recv() (Event, error) {
	var ev Event
	if err := s.dec.Decode(&ev); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return Event{}, err
	}
	return ev, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// OpenAPI returns the agent's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	return c.bytes(ctx, "/v1/openapi.json")
}

// Metrics returns the agent's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.bytes(ctx, "/metrics")
}

func (c *Client) bytes(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Import brings the Zaki platform's existing users over (see
// ImportRequest); with DryRun it only reports what it would do.
func (c *Client) Import(ctx context.Context, req ImportRequest) (ImportResult, error) {
	var res ImportResult
	err := c.call(ctx, http.MethodPost, "/v1/import", nil, req, &res)
	return res, err
}
