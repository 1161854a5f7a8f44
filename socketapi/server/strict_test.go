package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestStrictInput: every kind of sloppy request is a 400 (or 413, 404,
// 405) that names the problem, and none reaches the engine.
func TestStrictInput(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "kate", struct0())
	assert.NilError(t, err)
	before := e.Fake.CallCounts()

	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		contains                 string
	}{
		{"unknown field", "PUT", "/v1/instances/kate", `{"image":"x","cpu":2}`, nil, 400, `unknown field "cpu"`},
		{"mis-cased field", "PUT", "/v1/instances/kate", `{"Image":"zaki/gateway-stub:latest"}`, nil, 400, `unknown field "Image" (did you mean "image"?)`},
		{"nested unknown field", "PUT", "/v1/instances/kate", `{"resources":{"cpus":1,"swap":"1g"}}`, nil, 400, `unknown field "resources.swap"`},
		{"duplicate field", "PUT", "/v1/instances/kate", `{"image":"a","image":"b"}`, nil, 400, `duplicate field "image"`},
		{"duplicate env key", "PUT", "/v1/instances/kate", `{"env":{"A":"1","A":"2"}}`, nil, 400, `duplicate field "env.A"`},
		{"trailing garbage", "PUT", "/v1/instances/kate", `{} {}`, nil, 400, "unexpected data after the JSON object"},
		{"trailing text", "PUT", "/v1/instances/kate", `{}x`, nil, 400, "after the JSON object"},
		{"truncated JSON", "PUT", "/v1/instances/kate", `{"image":"zaki`, nil, 400, "unexpected end of JSON"},
		{"not an object", "PUT", "/v1/instances/kate", `["image"]`, nil, 400, "want an object, got an array"},
		{"wrong type", "PUT", "/v1/instances/kate", `{"resources":{"cpus":"two"}}`, nil, 400, `field "resources.cpus": want a number, got a string`},
		{"fractional integer", "PUT", "/v1/instances/kate", `{"resources":{"pids":1.5}}`, nil, 400, `want an integer`},
		{"null string", "PUT", "/v1/instances/kate", `{"image":null}`, nil, 400, `field "image": want a string, got null`},
		{"null map", "PUT", "/v1/instances/kate", `{"env":null}`, nil, 400, `field "env": want an object of string values, got null`},
		{"null object", "PUT", "/v1/instances/kate", `{"resources":null}`, nil, 400, `field "resources": want an object, got null`},
		{"null number", "POST", "/v1/prune", `{"idleHours":null}`, nil, 400, `field "idleHours": want a number, got null`},
		{"null list", "POST", "/v1/instances/kate/exec", `{"cmd":null}`, nil, 400, `field "cmd": want an array, got null`},
		{"env value not a string", "PUT", "/v1/instances/kate", `{"env":{"A":1}}`, nil, 400, `field "env.A": want a string, got a number`},
		{"invalid UTF-8", "PUT", "/v1/instances/kate", "{\"image\":\"\xff\"}", nil, 400, "not valid UTF-8"},
		{"form content type", "PUT", "/v1/instances/kate", `{}`, []string{"Content-Type: application/x-www-form-urlencoded"}, 400, "Content-Type: application/json"},
		{"env key with =", "PUT", "/v1/instances/kate", `{"env":{"A=B":"1"}}`, nil, 400, "A=B"},
		{"env value with newline", "PUT", "/v1/instances/kate", `{"env":{"A":"1\n2"}}`, nil, 400, "line break"},
		// Over the engine clients' env-file line (64 KiB): named by its key,
		// the value not echoed (checked below).
		{"env value over the env-file line", "PUT", "/v1/instances/kate", `{"env":{"BIG_KEY":"` + strings.Repeat("v", 70<<10) + `"}}`, nil, 400, `environment variable "BIG_KEY": 71688 bytes with its name, at most 65535`},
		{"file path with ..", "PUT", "/v1/instances/kate", `{"files":{"../x":"y"}}`, nil, 400, "invalid path"},
		{"absolute file path", "PUT", "/v1/instances/kate", `{"files":{"/etc/passwd":"y"}}`, nil, 400, "not an absolute one"},
		{"seed file path with ..", "PUT", "/v1/instances/kate", `{"seedFiles":{"a/../../x":"y"}}`, nil, 400, "seedFiles: invalid path"},
		{"cpus over ceiling", "PUT", "/v1/instances/kate", `{"resources":{"cpus":64}}`, nil, 400, "exceeds the ceiling"},
		{"label under agent prefix", "PUT", "/v1/instances/kate", `{"labels":{"zaki.userId":"x"}}`, nil, 400, "prefix"},
		{"body on touch", "POST", "/v1/instances/kate/touch", `{"x":1}`, nil, 400, "takes no body"},
		{"long body on stop", "POST", "/v1/instances/kate/stop", strings.Repeat(" ", 100) + "{}" + strings.Repeat("x", 100), nil, 400, "takes no body"},
		{"body on get", "GET", "/v1/instances/kate", `{"a":1}`, nil, 400, "takes no body"},
		{"bad user id", "PUT", "/v1/instances/kate;rm", ``, nil, 400, "invalid user id"},
		{"user id too long", "GET", "/v1/instances/" + strings.Repeat("a", 64), ``, nil, 400, "invalid user id"},
		{"encoded slash in id", "GET", "/v1/instances/a%2Fb", ``, nil, 400, "invalid user id"},
		{"dot dot id", "DELETE", "/v1/instances/..", ``, nil, 400, "invalid user id"},
		{"unknown query", "GET", "/v1/instances?stat=running", ``, nil, 400, `unknown query parameter "stat"`},
		{"query on a call without", "GET", "/v1/health?verbose=1", ``, nil, 400, "takes none"},
		{"repeated query", "GET", "/v1/instances?state=running&state=stopped", ``, nil, 400, "given 2 times"},
		{"empty query value", "GET", "/v1/instances?state=", ``, nil, 400, "is empty"},
		{"bad state", "GET", "/v1/instances?state=RUNNING", ``, nil, 400, "invalid state"},
		{"bad purge", "DELETE", "/v1/instances/kate?purge=yes", ``, nil, 400, `invalid purge "yes"`},
		{"bad follow", "GET", "/v1/instances/kate/logs?follow=1", ``, nil, 400, `invalid follow "1"`},
		{"minus zero tail", "GET", "/v1/instances/kate/logs?tail=-0", ``, nil, 400, "invalid tail"},
		{"bad since", "GET", "/v1/instances/kate/logs?since=soon", ``, nil, 400, "invalid since"},
		{"negative tail", "GET", "/v1/instances/kate/logs?tail=-5", ``, nil, 400, "invalid tail"},
		{"huge tail", "GET", "/v1/instances/kate/logs?tail=99999999", ``, nil, 400, "invalid tail"},
		{"padded tail", "GET", "/v1/instances/kate/logs?tail=010", ``, nil, 400, "invalid tail"},
		{"bad query escape", "GET", "/v1/instances?state=%zz", ``, nil, 400, "invalid query"},
		{"negative prune threshold", "POST", "/v1/prune", `{"idleHours":-1}`, nil, 400, "idleHours"},
		{"prune age past ten years", "POST", "/v1/prune", `{"maxAgeDays":200000,"dryRun":true}`, nil, 400, "maxAgeDays 200000: must be at most 3650"},
		{"prune idle past ten years", "POST", "/v1/prune", `{"idleHours":1e7,"dryRun":true}`, nil, 400, "idleHours 1e+07: must be at most 87600"},
		{"prune idle stop past ten years", "POST", "/v1/prune", `{"idleStopMinutes":1e12,"dryRun":true}`, nil, 400, "idleStopMinutes 1e+12: must be at most"},
		{"prune unknown field", "POST", "/v1/prune", `{"dryrun":true}`, nil, 400, `unknown field "dryrun" (did you mean "dryRun"?)`},
		{"trailing slash", "GET", "/v1/instances/", ``, nil, 404, "no such path"},
		{"unknown action", "POST", "/v1/instances/kate/explode", ``, nil, 404, "no such path"},
		{"extra segment", "GET", "/v1/instances/kate/logs/x", ``, nil, 404, "no such path"},
		{"trailing slash on an instance", "PUT", "/v1/instances/kate/", `{}`, nil, 404, "no such path"},
		{"HEAD where no GET", "HEAD", "/v1/prune", ``, nil, 405, ""},
		{"POST on list", "POST", "/v1/instances", `{}`, nil, 405, "allowed: GET"},
		{"GET on prune", "GET", "/v1/prune", ``, nil, 405, "allowed: POST"},
		{"DELETE on touch", "DELETE", "/v1/instances/kate/touch", ``, nil, 405, "allowed: POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := raw(t, e.Socket, c.method, c.path, c.body, c.headers...)
			assert.Equal(t, r.status, c.status, r.body)
			if c.method != "HEAD" {
				assert.Check(t, is.Contains(r.message(), c.contains))
				assert.Check(t, !strings.Contains(r.message(), "vvvvvvvv"), "value echoed")
			}
			if c.status == http.StatusMethodNotAllowed {
				assert.Check(t, r.header.Get("Allow") != "")
			}
		})
	}
	// Nothing of it reached the engine beyond reads.
	after := e.Fake.CallCounts()
	for _, m := range []string{"Create", "Start", "Stop", "Restart", "Remove", "PullImage", "EnsureNetwork"} {
		assert.Check(t, is.Equal(after[m], before[m]), "%s called", m)
	}
}

// TestRefusedBodyKeepsConnection: a body read whole but refused (bad JSON,
// wrong Content-Type, a body where none is taken) leaves the connection
// open for the next request; one not read whole (too large) closes it.
func TestRefusedBodyKeepsConnection(t *testing.T) {
	e := start(t)
	conn, err := net.Dial("unix", e.Socket)
	assert.NilError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	send := func(method, path, ctype, body string) *http.Response {
		t.Helper()
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: zaki\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", method, path, ctype, len(body), body)
		resp, err := http.ReadResponse(br, nil)
		assert.NilError(t, err)
		_, err = io.ReadAll(resp.Body)
		assert.NilError(t, err)
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct{ method, path, ctype, body string }{
		{"PUT", "/v1/instances/kate", "application/json", `{"image":`},
		{"PUT", "/v1/instances/kate", "text/plain", `{}`},
		{"POST", "/v1/instances/kate/touch", "application/json", `{"x":1}`},
		{"PUT", "/v1/instances/kate", "application/json", `{"env":null}`},
	} {
		resp := send(c.method, c.path, c.ctype, c.body)
		assert.Check(t, is.Equal(resp.StatusCode, 400), "%s %s", c.path, c.body)
		assert.Check(t, !resp.Close, "connection closed after %q", c.body)
	}
	resp := send("GET", "/v1/health", "application/json", "")
	assert.Check(t, is.Equal(resp.StatusCode, 200))

	big := strings.Repeat(" ", 2<<20)
	fmt.Fprintf(conn, "PUT /v1/instances/kate HTTP/1.1\r\nHost: zaki\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(big))
	resp, err = http.ReadResponse(br, nil)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 413))
	assert.Check(t, resp.Close, "a body not read whole closes the connection")
}
