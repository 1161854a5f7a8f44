package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// call is one request of the contract test and the status it must get.
type call struct {
	path, body string
	headers    []string
	status     int
	stream     bool // an endless stream: read its headers, then hang up
}

// TestContractEveryRoute calls every operation of openapi.json (path ×
// method, read from the document: an operation without cases here fails
// the test) over the real agent on the fake runtime, with good and bad
// input, and a request no route serves for each: a trailing slash (404),
// each method the path lacks (405), HEAD for each GET, a browser's header
// (403). The contract check (kin-openapi's openapi3filter) validates each
// answer's status, headers and body against the document: an undocumented
// status or body fails the test.
func TestContractEveryRoute(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "alice", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	assert.NilError(t, e.Fake.WriteLog("zaki-user-alice", "one", "two"))
	usersFile := filepath.Join(t.TempDir(), "users.json")
	assert.NilError(t, os.WriteFile(usersFile, []byte(`{}`), 0o600))
	usersDir := t.TempDir()
	importBody := `{"usersFile":"` + usersFile + `","usersDir":"` + usersDir + `","dryRun":true}`
	ndjson := "Accept: application/x-ndjson"

	// In the order run: each operation's good calls (2xx) and bad ones.
	ops := []struct {
		op    string // "METHOD template"
		calls []call
	}{
		{"GET /v1/health", []call{{path: "/v1/health", status: 200}, {path: "/v1/health?verbose=1", status: 400}}},
		{"GET /v1/instances", []call{
			{path: "/v1/instances", status: 200},
			{path: "/v1/instances?state=running", status: 200},
			{path: "/v1/instances?state=asleep", status: 400},
		}},
		{"PUT /v1/instances/{userId}", []call{
			{path: "/v1/instances/bob", body: `{}`, status: 201},
			{path: "/v1/instances/bob", body: `{"resources":{"memory":"512m"}}`, status: 200},
			{path: "/v1/instances/bob?force=true", body: `{"labels":{"plan":"pro"}}`, status: 200},
			{path: "/v1/instances/carl", body: `{}`, headers: []string{ndjson}, status: 200},
			{path: "/v1/instances/bob", body: `{"env":{"1A":"x"}}`, status: 400},
			{path: "/v1/instances/bob", body: `{"image":"evil/miner:latest"}`, status: 403},
			{path: "/v1/instances/-bob", body: `{}`, status: 400},
		}},
		{"GET /v1/instances/{userId}", []call{
			{path: "/v1/instances/alice", status: 200},
			{path: "/v1/instances/nobody", status: 404},
			{path: "/v1/instances/a%2Fb", status: 400},
		}},
		{"POST /v1/instances/{userId}/touch", []call{
			{path: "/v1/instances/alice/touch", status: 200},
			{path: "/v1/instances/nobody/touch", status: 404},
			{path: "/v1/instances/alice/touch", body: `{"x":1}`, status: 400},
		}},
		{"POST /v1/instances/{userId}/stop", []call{
			{path: "/v1/instances/bob/stop", status: 200},
			{path: "/v1/instances/nobody/stop", status: 404},
			{path: "/v1/instances/alice/stop?now=1", status: 400},
		}},
		{"POST /v1/instances/{userId}/restart", []call{
			{path: "/v1/instances/bob/restart", status: 200},
			{path: "/v1/instances/nobody/restart", status: 404},
			{path: "/v1/instances/.x/restart", status: 400},
		}},
		{"GET /v1/instances/{userId}/logs", []call{
			{path: "/v1/instances/alice/logs?tail=1", status: 200},
			{path: "/v1/instances/alice/logs?follow=true", status: 200, stream: true},
			{path: "/v1/instances/alice/logs?tail=0", status: 200},
			{path: "/v1/instances/alice/logs?tail=all&since=10m&timestamps=true", status: 200},
			{path: "/v1/instances/alice/logs?tail=-1", status: 400},
			{path: "/v1/instances/alice/logs?since=yesterday", status: 400},
			{path: "/v1/instances/alice/logs?timestamps=maybe", status: 400},
			{path: "/v1/instances/nobody/logs", status: 404},
		}},
		{"POST /v1/instances/{userId}/exec", []call{
			{path: "/v1/instances/alice/exec", body: `{"cmd":` + jsonOf(t, runtimetest.StubCmd("echo", "hi")) + `}`, status: 200},
			{path: "/v1/instances/alice/exec", body: `{"cmd":[]}`, status: 400},
			{path: "/v1/instances/alice/exec", body: `{"cmd":["a\u0000b"]}`, status: 400},
			{path: "/v1/instances/nobody/exec", body: `{"cmd":["x"]}`, status: 404},
		}},
		{"POST /v1/prune", []call{
			{path: "/v1/prune", body: `{"dryRun":true}`, status: 200},
			{path: "/v1/prune", body: `{"idleHours":-1}`, status: 400},
		}},
		{"POST /v1/images/pull", []call{
			{path: "/v1/images/pull", body: `{"image":"alpine/openclaw:latest"}`, status: 200},
			{path: "/v1/images/pull", body: `{"image":"alpine/openclaw:latest"}`, headers: []string{ndjson}, status: 200},
			// The fake's registry has no stand-in image.
			{path: "/v1/images/pull", body: `{"image":"` + testenv.StubImage + `"}`, status: 502},
			{path: "/v1/images/pull", body: `{"image":""}`, status: 400},
			{path: "/v1/images/pull", body: `{"image":"evil/miner:latest"}`, status: 403},
		}},
		{"POST /v1/import", []call{
			{path: "/v1/import", body: importBody, status: 200},
			{path: "/v1/import", body: `{"usersFile":"users.json"}`, status: 400},
		}},
		{"GET /v1/events", []call{
			{path: "/v1/events", status: 200, stream: true},
			{path: "/v1/events?since=1", status: 400},
		}},
		{"GET /v1/openapi.json", []call{{path: "/v1/openapi.json", status: 200}, {path: "/v1/openapi.json?v=2", status: 400}}},
		{"GET /metrics", []call{{path: "/metrics", status: 200}, {path: "/metrics?name=x", status: 400}}},
		{"DELETE /v1/instances/{userId}", []call{
			{path: "/v1/instances/bob?purge=true", status: 204},
			{path: "/v1/instances/bob", status: 404},
			{path: "/v1/instances/alice?purge=maybe", status: 400},
		}},
	}

	doc, err := apitest.LoadDoc()
	assert.NilError(t, err)
	documented := map[string]map[string]bool{} // template -> methods
	var want []string
	for path, item := range doc.Paths.Map() {
		documented[path] = map[string]bool{}
		for m := range item.Operations() {
			documented[path][m] = true
			want = append(want, m+" "+path)
		}
	}
	var got []string
	for _, o := range ops {
		got = append(got, o.op)
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Assert(t, is.DeepEqual(got, want), "every documented operation needs its cases here, and only those")

	checked := e.Contract.Checked()
	sent := 0
	send := func(t *testing.T, method string, c call) response {
		t.Helper()
		sent++
		if c.stream {
			return rawStream(t, e.Socket, method, c.path, c.headers...)
		}
		return raw(t, e.Socket, method, c.path, c.body, c.headers...)
	}
	for _, o := range ops {
		method, template, _ := strings.Cut(o.op, " ")
		t.Run(o.op, func(t *testing.T) {
			var good, bad int
			for _, c := range o.calls {
				r := send(t, method, c)
				assert.Check(t, is.Equal(r.status, c.status), "%s %s: %s", method, c.path, r.body)
				if c.status < 300 {
					good++
				} else {
					bad++
				}
				if method == http.MethodGet && c.status == 200 {
					// HEAD: GET's status and headers, no body.
					h := send(t, http.MethodHead, call{path: c.path, headers: c.headers})
					assert.Check(t, is.Equal(h.status, r.status), "HEAD %s", c.path)
					assert.Check(t, is.Equal(h.body, ""), "HEAD %s", c.path)
					assert.Check(t, is.Equal(h.header.Get("Content-Type"), r.header.Get("Content-Type")), "HEAD %s", c.path)
					if n := r.header.Get("Content-Length"); n != "" && c.path != "/metrics" {
						assert.Check(t, is.Equal(h.header.Get("Content-Length"), n), "HEAD %s", c.path)
					}
				}
			}
			assert.Check(t, good > 0 && bad > 0, "want good and bad input for %s", o.op)

			path := strings.ReplaceAll(template, "{userId}", "alice")
			// A trailing slash is an unknown path, whatever the method.
			r := send(t, method, call{path: path + "/", body: `{}`})
			assert.Check(t, is.Equal(r.status, 404), "%s %s/: %s", method, path, r.body)
			assert.Check(t, is.Equal(r.errorCode(), socketapi.CodeNotFound))
			// A browser's request is refused before anything else.
			r = send(t, method, call{path: path, headers: []string{"Sec-Fetch-Site: cross-site"}})
			assert.Check(t, is.Equal(r.status, 403), "%s %s: %s", method, path, r.body)
		})
	}
	// Each path's other methods: 405 with Allow, the documented ones.
	for template, methods := range documented {
		path := strings.ReplaceAll(template, "{userId}", "alice")
		var allow []string
		for m := range methods {
			allow = append(allow, m)
		}
		if methods[http.MethodGet] {
			allow = append(allow, http.MethodHead)
		}
		sort.Strings(allow)
		for _, m := range []string{"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"} {
			if methods[m] || m == http.MethodHead && methods[http.MethodGet] {
				continue
			}
			r := send(t, m, call{path: path})
			assert.Check(t, is.Equal(r.status, 405), "%s %s", m, path)
			assert.Check(t, is.Equal(r.header.Get("Allow"), strings.Join(allow, ", ")), "%s %s", m, path)
		}
	}
	// Every answer went through the contract check, and passed it.
	assert.Check(t, is.Equal(e.Contract.Checked()-checked, sent))
	assert.Check(t, is.Len(e.Contract.Failures(), 0))
}

// rawStream sends a request whose answer streams without end: it returns
// the status and headers, then hangs up.
func rawStream(t testing.TB, socket, method, path string, headers ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, nil)
	assert.NilError(t, err)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	hc := &http.Client{Transport: socketapi.NewTransport(socket)}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header}
}

func jsonOf(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	return string(b)
}

// TestSchemaRulesAgree: for each rule the document states as a schema
// (patterns, lengths, counts of the spec's fields), a value the schema
// refuses is refused by the server (400) and one it accepts is accepted.
func TestSchemaRulesAgree(t *testing.T) {
	e := start(t)
	doc, err := apitest.LoadDoc()
	assert.NilError(t, err)
	specSchema := doc.Components.Schemas["InstanceSpec"].Value

	many := func(n int, key func(i int) string, val string) string {
		m := map[string]string{}
		for i := 0; i < n; i++ {
			m[key(i)] = val
		}
		return jsonOf(t, m)
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"image", `{"image":"` + testenv.StubImage + `"}`, true},
		{"empty image", `{"image":""}`, true},
		{"image with //", `{"image":"zaki//gateway-stub:latest"}`, false},
		{"image ending in :", `{"image":"zaki/gateway-stub:"}`, false},
		{"image ending in /", `{"image":"zaki/gateway-stub/"}`, false},
		{"image with a space", `{"image":"zaki/gateway stub"}`, false},
		{"image too long", `{"image":"` + long(256) + `"}`, false},
		{"memory", `{"resources":{"memory":"512m"}}`, true},
		{"memory GiB", `{"resources":{"memory":"1.5GiB"}}`, true},
		{"memory bytes", `{"resources":{"memory":"104857600"}}`, true},
		{"memory with a space", `{"resources":{"memory":"512 m"}}`, false},
		{"memory padded", `{"resources":{"memory":" 512m"}}`, false},
		{"memory unit unknown", `{"resources":{"memory":"1x"}}`, false},
		{"memory negative", `{"resources":{"memory":"-1g"}}`, false},
		{"memory exponent", `{"resources":{"memory":"1e3m"}}`, false},
		{"cpus over 1024", `{"resources":{"cpus":1025}}`, false},
		{"cpus negative", `{"resources":{"cpus":-1}}`, false},
		{"pids negative", `{"resources":{"pids":-1}}`, false},
		{"env name", `{"env":{"_A.b-1":"x"}}`, true},
		{"env name longest", `{"env":{"` + long(256) + `":"x"}}`, true},
		{"env name too long", `{"env":{"` + long(257) + `":"x"}}`, false},
		{"env name with a digit first", `{"env":{"1A":"x"}}`, false},
		{"env name with =", `{"env":{"A=B":"x"}}`, false},
		{"env name empty", `{"env":{"":"x"}}`, false},
		{"env value with a line break", `{"env":{"A":"x\ny"}}`, false},
		{"env value with a NUL", `{"env":{"A":"x\u0000y"}}`, false},
		{"env value longest", `{"env":{"A":"` + long(65533) + `"}}`, true},
		{"env value too long", `{"env":{"A":"` + long(65534) + `"}}`, false},
		{"256 env vars", `{"env":` + many(256, func(i int) string { return "V" + strconv.Itoa(i) }, "x") + `}`, true},
		{"257 env vars", `{"env":` + many(257, func(i int) string { return "V" + strconv.Itoa(i) }, "x") + `}`, false},
		{"file path", `{"files":{"workspace/.memory/a_b-c.md":"x"}}`, true},
		{"file path with ..x", `{"files":{"..x/y":"x"}}`, true},
		{"file path 8 deep", `{"files":{"a/b/c/d/e/f/g/h":"x"}}`, true},
		{"file path 9 deep", `{"files":{"a/b/c/d/e/f/g/h/i":"x"}}`, false},
		{"file path with ..", `{"files":{"a/../b":"x"}}`, false},
		{"file path with .", `{"seedFiles":{"./b":"x"}}`, false},
		{"file path absolute", `{"files":{"/etc/x":"x"}}`, false},
		{"file path with //", `{"files":{"a//b":"x"}}`, false},
		{"file path with a trailing /", `{"seedFiles":{"a/":"x"}}`, false},
		{"file path with a space", `{"files":{"a b":"x"}}`, false},
		{"file path element too long", `{"files":{"` + long(129) + `":"x"}}`, false},
		{"file path too long", `{"files":{"` + strings.Repeat(long(100)+"/", 2) + long(55) + `":"x"}}`, false},
		{"file path longest", `{"files":{"` + strings.Repeat(long(100)+"/", 2) + long(53) + `":"x"}}`, true},
		{"file too large", `{"files":{"a":"` + long(256<<10+1) + `"}}`, false},
		{"64 files", `{"files":` + many(64, func(i int) string { return "f" + strconv.Itoa(i) }, "x") + `}`, true},
		{"65 seed files", `{"seedFiles":` + many(65, func(i int) string { return "f" + strconv.Itoa(i) }, "x") + `}`, false},
		{"label", `{"labels":{"team.a/b_c-1":"x"}}`, true},
		{"label key with a space", `{"labels":{"a b":"x"}}`, false},
		{"label key too long", `{"labels":{"` + long(65) + `":"x"}}`, false},
		{"label value too long", `{"labels":{"a":"` + long(257) + `"}}`, false},
		{"label value with a line break", `{"labels":{"a":"x\ry"}}`, false},
		{"33 labels", `{"labels":` + many(33, func(i int) string { return "l" + strconv.Itoa(i) }, "x") + `}`, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			assert.NilError(t, json.Unmarshal([]byte(c.body), &v))
			serr := specSchema.VisitJSON(v, openapi3.EnableJSONSchema2020())
			assert.Check(t, is.Equal(serr == nil, c.ok), "schema: %v", serr)
			// Each case its own user: a create, so that every rule is applied.
			r := raw(t, e.Socket, http.MethodPut, "/v1/instances/rule"+strconv.Itoa(i), c.body)
			if c.ok {
				assert.Check(t, is.Equal(r.status, http.StatusCreated), r.body)
			} else {
				assert.Check(t, is.Equal(r.status, http.StatusBadRequest), r.body)
			}
		})
	}
	assert.Check(t, is.Len(e.Contract.Failures(), 0))
}

// TestSchemaPatternsAreTheParsers: the document's patterns for a memory
// size, an image reference and an environment variable name accept
// exactly what the runtime's parsers accept.
func TestSchemaPatternsAreTheParsers(t *testing.T) {
	doc, err := apitest.LoadDoc()
	assert.NilError(t, err)
	s := doc.Components.Schemas
	pattern := func(sc *openapi3.Schema) *regexp.Regexp { return regexp.MustCompile(sc.Pattern) }
	memory := pattern(s["Resources"].Value.Properties["memory"].Value)
	image := pattern(s["PullRequest"].Value.Properties["image"].Value)
	envName := pattern(s["InstanceSpec"].Value.Properties["env"].Value.PropertyNames.Value)

	for _, v := range []string{"512m", "2g", "2G", "1.5GiB", "1024kb", "7340032", "3pb", "2ib", "1t", "0",
		"", "2 g", " 2g", "2g ", "2gg", "-1g", "1e3m", "0x10", "2.m", ".5g", "2KiBb", "2\n", "１g"} {
		_, perr := runtime.ParseBytes(v)
		// The schema takes "" too: no memory, the default.
		assert.Check(t, is.Equal(memory.MatchString(v), perr == nil || v == ""), "memory %q: %v", v, perr)
	}
	for _, v := range []string{"alpine/openclaw:latest", "a", "127.0.0.1:5000/x/y:1", "x@sha256:abc", "a+b", "a_b.c-d",
		"", "/a", "a//b", "a/", "a:", "-a", "a b", "a\tb", strings.Repeat("a", 255), strings.Repeat("a", 256), "a/:b"} {
		verr := runtime.ValidateImage(v)
		assert.Check(t, is.Equal(image.MatchString(v) && len(v) <= 255, verr == nil), "image %q: %v", v, verr)
	}
	for _, v := range []string{"A", "_", "a.b-c_1", strings.Repeat("a", 256), "", "1A", ".A", "-A", "A=B", "A B", "Ä", strings.Repeat("a", 257)} {
		verr := runtime.ValidateEnvKey(v)
		assert.Check(t, is.Equal(envName.MatchString(v), verr == nil), "env name %q: %v", v, verr)
	}
}

// TestHeadOnStreams: HEAD on a stream answers what GET would (429 while
// every slot is held) and holds no slot itself: it starts no stream.
func TestHeadOnStreams(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Server = func(c *server.Config) {
			c.MaxEventStreams = 1
			c.MaxLogFollowersPerUser = 1
		}
	})
	c, ctx := e.Client, ctxT(t)
	_, err := c.Ensure(ctx, "alice", socketapi.InstanceSpec{})
	assert.NilError(t, err)
	for range 3 {
		r := raw(t, e.Socket, http.MethodHead, "/v1/events", "")
		assert.Check(t, is.Equal(r.status, 200))
		assert.Check(t, is.Equal(r.header.Get("Content-Type"), socketapi.NDJSON))
		r = raw(t, e.Socket, http.MethodHead, "/v1/instances/alice/logs?follow=true", "")
		assert.Check(t, is.Equal(r.status, 200))
		assert.Check(t, is.Equal(r.header.Get("Content-Type"), "text/plain; charset=utf-8"))
	}
	es, err := c.Events(ctx)
	assert.NilError(t, err)
	defer es.Close()
	r := raw(t, e.Socket, http.MethodHead, "/v1/events", "")
	assert.Check(t, is.Equal(r.status, 429))
	assert.Check(t, is.Equal(r.body, ""))
	r = raw(t, e.Socket, http.MethodHead, "/v1/instances/nobody/logs", "")
	assert.Check(t, is.Equal(r.status, 404))
}
