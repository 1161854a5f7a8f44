package engineapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Defaults of Config.
const (
	DefaultSocket      = "/var/run/docker.sock"
	DefaultAPIVersion  = "1.41"
	DefaultMaxResponse = 16 << 20
)

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// Config configures a Client.
type Config struct {
	// Socket is the path of the engine's Unix socket (DefaultSocket when
	// empty).
	Socket string
	// APIVersion is the API version put in every path, without the "v"
	// (DefaultAPIVersion when empty). An engine older than it refuses
	// every call but Ping with ErrInvalidArgument.
	APIVersion string
	// MaxResponse bounds the body of a JSON answer, in bytes
	// (DefaultMaxResponse when zero); a longer one fails the call. Streams
	// (logs, exec output) are not bounded here.
	MaxResponse int64
	// Logger, when set, gets one debug line per call: method, path and
	// query, status and duration; never a body.
	Logger *slog.Logger
}

// Client calls one engine. It is safe for concurrent use.
type Client struct {
	hc      *http.Client
	tr      *http.Transport
	version string
	maxResp int64
	log     *slog.Logger
}

// New returns a Client of the engine cfg names. It does not connect:
// the first call does (Ping to check).
func New(cfg Config) *Client {
	sock := cfg.Socket
	if sock == "" {
		sock = DefaultSocket
	}
	c := &Client{version: cfg.APIVersion, maxResp: cfg.MaxResponse, log: cfg.Logger}
	if c.version == "" {
		c.version = DefaultAPIVersion
	}
	if c.maxResp <= 0 {
		c.maxResp = DefaultMaxResponse
	}
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	c.hc = &http.Client{Transport: c.tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // the engine redirects only paths it cleaned: never follow
	}}
	return c
}

// APIVersion returns the version the client puts in its paths.
func (c *Client) APIVersion() string { return c.version }

// Close closes the idle connections; streams still open stay open.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Filters select objects in list calls and the event stream: a filter
// name to its values, as {"label": {"a=b"}, "service": {"web"}}. Values
// of one name are ORed, names ANDed.
type Filters map[string][]string

// Add returns f with value added to name's values (f made when nil).
func (f Filters) Add(name, value string) Filters {
	if f == nil {
		f = Filters{}
	}
	f[name] = append(f[name], value)
	return f
}

// query adds f to q as the engine's "filters" parameter.
func (f Filters) query(q url.Values) {
	if len(f) == 0 {
		return
	}
	b, _ := json.Marshal(map[string][]string(f)) // cannot fail
	q.Set("filters", string(b))
}

// request is one call: what to send, and what may not appear in an error.
type request struct {
	method  string
	path    string // after the version, with its leading "/"
	query   url.Values
	body    any      // JSON-encoded when non-nil
	secrets []string // redacted from the engine's error message
	raw     bool     // unversioned path (/_ping)
}

// do sends req and returns the answer when its status is 2xx; otherwise
// the error of Error. The caller closes the body.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := url.URL{Scheme: "http", Host: "docker", Path: "/v" + c.version + req.path}
	if req.raw {
		u.Path = req.path
	}
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s %s: %w", req.method, req.path, err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", req.method, req.path, ctx.Err())
		}
		return nil, errdefs.Errorf(errdefs.ErrUnavailable, "%s %s: engine: %w", req.method, req.path, err)
	}
	if c.log != nil {
		c.log.Debug("engine api", "method", req.method, "path", u.Path, "query", u.RawQuery,
			"status", resp.StatusCode, "duration", time.Since(start))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return nil, fmt.Errorf("%s %s: %w", req.method, req.path, Error(resp.StatusCode, msg, req.secrets))
}

// call sends req and decodes its JSON answer into out (when non-nil),
// reading at most MaxResponse bytes of it.
func (c *Client) call(ctx context.Context, req request, out any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s %s: read answer: %w", req.method, req.path, err)
	}
	if int64(len(b)) > c.maxResp {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "%s %s: answer longer than %d bytes", req.method, req.path, c.maxResp)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s %s: decode answer: %w", req.method, req.path, err)
	}
	return nil
}

// Error returns the error of an engine's answer of status code with
// body, an error class of errdefs carrying the engine's message (the
// body's "message", or the body itself when it is not the engine's JSON),
// each of secrets that appears in it replaced by "<redacted>":
//
//	400 invalid argument        401, 403 forbidden
//	404 not found               409 conflict
//	429 too many requests       5xx, other unavailable
//
// Swarm answers a service update sent with a stale version index with a
// 500 "update out of sequence": that one is a conflict (read the service
// again and retry), not an unavailable engine.
func Error(code int, body []byte, secrets []string) error {
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	msg = redact(msg, secrets)
	if msg == "" {
		msg = http.StatusText(code)
	}
	var class error
	switch {
	case code == http.StatusBadRequest:
		class = errdefs.ErrInvalidArgument
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		class = errdefs.ErrForbidden
	case code == http.StatusNotFound:
		class = errdefs.ErrNotFound
	case code == http.StatusConflict:
		class = errdefs.ErrConflict
	case code == http.StatusTooManyRequests:
		class = errdefs.ErrTooManyRequests
	case code == http.StatusInternalServerError && strings.Contains(msg, "update out of sequence"):
		class = errdefs.ErrConflict
	default:
		class = errdefs.ErrUnavailable
	}
	return errdefs.Errorf(class, "engine: %s (%d)", msg, code)
}

// minSecret is the shortest secret redact replaces: shorter ones would
// blank out every digit or word of a message, and are no secrets.
const minSecret = 4

// redact replaces each of secrets at least minSecret bytes long in msg.
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= minSecret {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
		}
	}
	return msg
}

// envSecrets returns the values of env ("NAME=value"), the parts of a
// request no error may show.
func envSecrets(env []string) []string {
	var out []string
	for _, kv := range env {
		if _, v, ok := strings.Cut(kv, "="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// pathID checks an ID or name that goes in a path: an empty one would
// name a collection instead of one of its objects, and a "/", "." or
// ".." another path.
func pathID(kind, id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid %s id %q", kind, id)
	}
	return id, nil
}

// get answers a GET of path (with query q, nil for none), decoded into a T.
func get[T any](ctx context.Context, c *Client, path string, q url.Values) (T, error) {
	var out T
	err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, &out)
	return out, err
}

// inspect answers a GET of prefix/<ref>suffix, ref checked by pathID as
// the ID or name of a kind.
func inspect[T any](ctx context.Context, c *Client, kind, prefix, ref, suffix string) (T, error) {
	id, err := pathID(kind, ref)
	if err != nil {
		var zero T
		return zero, err
	}
	return get[T](ctx, c, prefix+id+suffix, nil)
}
