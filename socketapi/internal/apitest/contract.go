package apitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// Contract checks requests and responses against the OpenAPI document:
//
//   - every response's status is documented for its operation (an unknown
//     path, a trailing slash included, must be 404; a method the path lacks
//     405 with an Allow header naming exactly the documented methods, HEAD
//     with GET), and its headers and body match the documented ones
//     (NDJSON streams line by line); HEAD is checked as the path's GET,
//     without a body;
//   - every error body carries the code that goes with its status;
//   - a request the document calls invalid is answered 4xx.
//
// Failures are reported on t when the test ends.
type Contract struct {
	doc    *openapi3.T
	router routers.Router

	mu       sync.Mutex
	checked  int
	failures []string
}

// LoadDoc loads and validates the OpenAPI document.
func LoadDoc() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(socketapi.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not valid OpenAPI: %w", err)
	}
	return doc, nil
}

// NewContract returns a contract check that reports to t.
func NewContract(t testing.TB) *Contract {
	t.Helper()
	c, err := newContract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, f := range c.failures {
			t.Errorf("OpenAPI contract: %s", f)
		}
	})
	return c
}

func newContract() (*Contract, error) {
	doc, err := LoadDoc()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Contract{doc: doc, router: router}, nil
}

// Checked returns how many responses were checked so far.
func (c *Contract) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

// Failures returns the failures so far.
func (c *Contract) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.failures...)
}

func (c *Contract) fail(r *http.Request, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failures) < 50 {
		c.failures = append(c.failures, fmt.Sprintf("%s %s: ", r.Method, r.URL.RequestURI())+fmt.Sprintf(format, args...))
	}
}

// Middleware wraps the server's whole handler (server.Config.Middleware).
// It keeps a copy of what the handler reads of the request body (so that
// the server's own limits and timeouts apply as they would without it).
func (c *Contract) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tee := &teeBody{ReadCloser: r.Body}
		r.Body = tee
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		c.check(r, tee.buf.Bytes(), tee.err, rec)
	})
}

// teeBody keeps what is read of a body, and the first error other than
// io.EOF.
type teeBody struct {
	io.ReadCloser
	buf bytes.Buffer
	err error
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.buf.Write(p[:n])
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// recorder keeps a copy of the response as it goes out.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		w.header = w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (c *Contract) check(r *http.Request, reqBody []byte, readErr error, rec *recorder) {
	c.mu.Lock()
	c.checked++
	c.mu.Unlock()
	if rec.status == 0 {
		rec.status = http.StatusOK
		rec.header = rec.ResponseWriter.Header().Clone()
	}
	// HEAD is served as GET is, without a body.
	head := r.Method == http.MethodHead
	asGet := r.Clone(context.Background())
	if head {
		asGet.Method = http.MethodGet
	}
	route, params, err := c.router.FindRoute(asGet)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		c.checkBareError(r, rec, http.StatusNotFound, socketapi.CodeNotFound)
		return
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.checkBareError(r, rec, http.StatusMethodNotAllowed, socketapi.CodeMethodNotAllowed)
		if rec.status == http.StatusMethodNotAllowed {
			c.checkMethodNotAllowed(r, rec)
		}
		return
	case err != nil:
		c.fail(r, "find route: %v", err)
		return
	}
	// A request carrying a browser header or from a caller not allowed is
	// refused first, whatever else it holds.
	if rec.status == http.StatusForbidden {
		c.checkErrorBody(r, rec)
		return
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            false,
	}
	r2 := asGet
	r2.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route, Options: opts}
	if readErr == nil {
		if verr := openapi3filter.ValidateRequest(context.Background(), in); verr != nil && rec.status/100 != 4 {
			c.fail(r, "request invalid by the document (%v) but answered %d", firstLine(verr), rec.status)
		}
	}
	if rec.status/100 != 2 {
		c.checkErrorBody(r, rec)
	}
	ct, _, _ := mime.ParseMediaType(rec.header.Get("Content-Type"))
	respOpts := *opts
	if ct == "application/x-ndjson" || head {
		respOpts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: rec.status, Header: rec.header, Options: &respOpts,
	}
	out.SetBodyBytes(rec.body.Bytes())
	if verr := openapi3filter.ValidateResponse(context.Background(), out); verr != nil {
		c.fail(r, "response %d invalid: %v", rec.status, firstLine(verr))
	}
	if ct == "application/x-ndjson" && !head {
		c.checkNDJSON(r, route, rec)
	}
}

// methods are the methods a path may document.
var methods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodOptions}

// checkMethodNotAllowed checks a 405: its Allow header names exactly the
// path's documented methods (HEAD with GET), and the answer is the
// documented 405 of the path's operations (headers and body).
func (c *Contract) checkMethodNotAllowed(r *http.Request, rec *recorder) {
	var want []string
	var route *routers.Route
	var params map[string]string
	for _, m := range methods {
		r2 := r.Clone(context.Background())
		r2.Method = m
		rt, ps, err := c.router.FindRoute(r2)
		if err != nil {
			continue
		}
		want = append(want, m)
		if m == http.MethodGet {
			want = append(want, http.MethodHead)
		}
		if route == nil {
			route, params = rt, ps
		}
	}
	if route == nil {
		c.fail(r, "405 on a path the document does not have")
		return
	}
	sort.Strings(want)
	if got := rec.header.Get("Allow"); got != strings.Join(want, ", ") {
		c.fail(r, "Allow %q, want %q", got, strings.Join(want, ", "))
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
		Status:                 rec.status, Header: rec.header, Options: opts,
	}
	out.SetBodyBytes(rec.body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.fail(r, "405 not the documented one of %s %s: %v", route.Method, route.Path, firstLine(err))
	}
}

// checkNDJSON validates each line of a stream against the documented
// schema of one item.
func (c *Contract) checkNDJSON(r *http.Request, route *routers.Route, rec *recorder) {
	resp := route.Operation.Responses.Status(rec.status)
	if resp == nil || resp.Value == nil {
		c.fail(r, "status %d not documented", rec.status)
		return
	}
	mt := resp.Value.Content.Get("application/x-ndjson")
	if mt == nil || mt.Schema == nil {
		c.fail(r, "no application/x-ndjson schema for %d", rec.status)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(rec.body.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue // a heartbeat
		}
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			c.fail(r, "NDJSON line %q: %v", sc.Text(), err)
			continue
		}
		if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			c.fail(r, "NDJSON line %q: %v", sc.Text(), firstLine(err))
		}
	}
}

// checkBareError checks a response to a request no operation serves.
func (c *Contract) checkBareError(r *http.Request, rec *recorder, want int, code string) {
	if rec.status == http.StatusForbidden {
		c.checkErrorBody(r, rec)
		return
	}
	if rec.status != want {
		c.fail(r, "status %d, want %d", rec.status, want)
		return
	}
	if want == http.StatusMethodNotAllowed && rec.header.Get("Allow") == "" {
		c.fail(r, "405 without an Allow header")
	}
	if got := c.checkErrorBody(r, rec); got != code {
		c.fail(r, "error code %q, want %q", got, code)
	}
}

// checkErrorBody checks an error response against the Error schema and
// that its code goes with its status; it returns the code.
func (c *Contract) checkErrorBody(r *http.Request, rec *recorder) string {
	if r.URL.Path == "/v1/health" && rec.status == http.StatusServiceUnavailable {
		return "" // the health document, checked as a response
	}
	ct, _, _ := mime.ParseMediaType(rec.header.Get("Content-Type"))
	if ct != "application/json" {
		c.fail(r, "error %d with Content-Type %q", rec.status, rec.header.Get("Content-Type"))
		return ""
	}
	var v any
	if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
		c.fail(r, "error body %q: %v", rec.body.String(), err)
		return ""
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		c.fail(r, "error body %q: %v", rec.body.String(), firstLine(err))
		return ""
	}
	var eb socketapi.ErrorBody
	json.Unmarshal(rec.body.Bytes(), &eb)
	if want := socketapi.StatusOfCode(eb.Error.Code); want != rec.status {
		c.fail(r, "error code %q answered with %d, want %d", eb.Error.Code, rec.status, want)
	}
	if eb.Error.Message == "" {
		c.fail(r, "error %q without a message", eb.Error.Code)
	}
	return eb.Error.Code
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
