package server_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// malformedCount is how many malformed requests TestMalformedRequests
// sends.
const malformedCount = 10000

// TestMalformedRequests sends 10,000 malformed requests over the socket,
// eight connections at a time: fuzzed JSON, oversize bodies, bad user IDs,
// wrong verbs, bad queries, browser headers, broken HTTP and truncated
// connections. Each complete one is answered 4xx (truncated ones need no
// answer); the server survives; the registry, the containers and the data
// dirs are unchanged; and the contract check saw every answer the API gave.
func TestMalformedRequests(t *testing.T) {
	e := start(t, func(o *apitest.Options) {
		o.Config = func(c *daemonConfig) { c.API.MaxBodyBytes = 4096 }
	})
	ctx := ctxT(t)
	for _, u := range []string{"m1", "m2"} {
		_, err := e.Client.Ensure(ctx, u, struct0())
		assert.NilError(t, err)
	}
	_, err := e.Client.Stop(ctx, "m2")
	assert.NilError(t, err)
	assert.NilError(t, e.Registry.Flush())

	regBefore := e.Registry.List()
	containersBefore := e.Fake.Containers()
	callsBefore := e.Fake.CallCounts()
	dirsBefore := listDir(t, filepath.Join(e.StateDir, "instances"))
	checkedBefore := e.Contract.Checked()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var (
		mu       sync.Mutex
		answered = map[string]int{} // kind -> count
		failures []string
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				m := newMalformed(rng)
				status, err := m.send(e.Socket)
				mu.Lock()
				switch {
				case m.truncated:
					answered["truncated"]++
				case err != nil:
					failures = append(failures, fmt.Sprintf("#%d %s: %v\n%q", i, m.kind, err, m.request))
				case status/100 != 4:
					failures = append(failures, fmt.Sprintf("#%d %s: status %d\n%q", i, m.kind, status, m.request))
				default:
					answered[m.kind]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < malformedCount; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	for i, f := range failures {
		if i == 20 {
			t.Errorf("... and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
	t.Logf("answered 4xx by kind: %v", answered)
	total := 0
	for _, n := range answered {
		total += n
	}
	assert.Check(t, is.Equal(total+len(failures), malformedCount))
	assert.Check(t, len(answered) >= 10, "every kind was tried: %v", answered)

	// The server survived, and nothing changed.
	h, err := e.Client.Health(ctxT(t))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(h.Status, socketapi.HealthOK))
	assert.NilError(t, e.Registry.Flush())
	assert.Check(t, is.DeepEqual(e.Registry.List(), regBefore))
	assert.Check(t, is.DeepEqual(e.Fake.Containers(), containersBefore))
	calls := e.Fake.CallCounts()
	for _, m := range []string{"Create", "Start", "Stop", "Restart", "Remove", "PullImage", "EnsureNetwork", "RemoveNetwork"} {
		assert.Check(t, is.Equal(calls[m], callsBefore[m]), "engine call %s", m)
	}
	assert.Check(t, is.DeepEqual(listDir(t, filepath.Join(e.StateDir, "instances")), dirsBefore))
	// Every request the API itself answered went through the contract
	// check (broken HTTP is answered by net/http before it).
	assert.Check(t, e.Contract.Checked()-checkedBefore >= malformedCount-answered["truncated"]-answered["broken http"],
		"contract checked %d", e.Contract.Checked()-checkedBefore)
}

func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// malformed is one bad request.
type malformed struct {
	kind      string
	request   string // the bytes sent
	truncated bool   // sent in part, then the connection closed
}

var validSpec = `{"image":"zaki/gateway-stub:latest","env":{"TOKEN":"abc","MODE":"x"},"files":{"openclaw.json":"{\"a\":1}"},"resources":{"cpus":1,"memory":"256m","pids":50},"labels":{"plan":"pro"}}`

func newMalformed(rng *rand.Rand) *malformed {
	users := []string{"m1", "m2", "m3"}
	user := users[rng.IntN(len(users))]
	switch k := rng.IntN(12); k {
	case 0, 1:
		return req("fuzzed json", "PUT", "/v1/instances/"+user, fuzzJSON(rng, validSpec), "")
	case 2:
		return req("fuzzed prune json", "POST", "/v1/prune", fuzzJSON(rng, `{"dryRun":false,"idleStopMinutes":0.5,"idleHours":0.0001,"maxAgeDays":0}`), "")
	case 3:
		return req("invalid spec", "PUT", "/v1/instances/"+user, invalidSpec(rng), "")
	case 4:
		big := `{"env":{"A":"` + strings.Repeat("x", 4096+rng.IntN(20000)) + `"}}`
		m := req("oversize body", "PUT", "/v1/instances/"+user, big, "")
		if rng.IntN(2) == 0 { // no Content-Length: chunked
			m.request = chunked("PUT", "/v1/instances/"+user, big)
		}
		return m
	case 5:
		paths := []string{"/v1/instances/%s", "/v1/instances/%s/touch", "/v1/instances/%s/stop", "/v1/instances/%s/restart", "/v1/instances/%s/logs"}
		methods := []string{"GET", "PUT", "POST", "POST", "GET"}
		i := rng.IntN(len(paths))
		if i == 0 {
			methods[0] = []string{"GET", "PUT", "DELETE"}[rng.IntN(3)]
		}
		body := ""
		if methods[i] == "PUT" {
			body = "{}"
		}
		return req("bad user id", methods[i], fmt.Sprintf(paths[i], badID(rng)), body, "")
	case 6:
		type route struct {
			path    string
			allowed string
		}
		// HEAD is served wherever GET is.
		routes := []route{{"/v1/health", "GET HEAD"}, {"/v1/instances", "GET HEAD"}, {"/v1/instances/" + user, "GET HEAD PUT DELETE"},
			{"/v1/instances/" + user + "/touch", "POST"}, {"/v1/instances/" + user + "/stop", "POST"},
			{"/v1/instances/" + user + "/logs", "GET HEAD"}, {"/v1/prune", "POST"}, {"/v1/events", "GET HEAD"}, {"/metrics", "GET HEAD"}}
		r := routes[rng.IntN(len(routes))]
		for {
			m := []string{"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO", "PROPFIND"}[rng.IntN(9)]
			if !strings.Contains(r.allowed, m) {
				return req("wrong verb", m, r.path, "", "")
			}
		}
	case 7:
		qs := []string{"/v1/instances?state=" + url.QueryEscape(junk(rng, 8)) + "x", "/v1/instances?foo=bar",
			"/v1/instances/" + user + "/logs?tail=" + []string{"-0", "-1", "abc", "1e3", "2000000"}[rng.IntN(5)],
			"/v1/instances/" + user + "/logs?since=" + []string{"-1s", "1e9", "87601h", "tomorrow", "0x10"}[rng.IntN(5)],
			"/v1/instances/" + user + "/logs?follow=" + []string{"yes", "1", "TRUE", "on"}[rng.IntN(4)],
			"/v1/instances/" + user + "?purge=" + []string{"1", "no", "True"}[rng.IntN(3)],
			"/v1/health?x=1", "/v1/events?since=0", "/v1/instances?state=running&state=running"}
		q := qs[rng.IntN(len(qs))]
		method := "GET"
		if strings.Contains(q, "purge") {
			method = "DELETE"
		}
		return req("bad query", method, q, "", "")
	case 8:
		h := []string{"Origin: http://evil.example", "Referer: http://evil.example/page", "Origin: null"}[rng.IntN(3)]
		return req("browser header", "PUT", "/v1/instances/"+user, validSpec, h)
	case 9:
		paths := []string{"/v2/health", "/v1/instance", "/v1/instances/" + user + "/x", "/", "/v1/instances//stop", "/v1/instances/" + user + "/logs/extra",
			"/v1/instances/" + user + "/", "/v1/health/", "/v1/instances/" + user + "/stop/"}
		return req("unknown path", "GET", paths[rng.IntN(len(paths))], "", "")
	case 10:
		lines := []string{
			"GARBAGE\r\n\r\n",
			"GET /v1/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
			"GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
			"PUT /v1/instances/m1 HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
			"PUT /v1/instances/m1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
			"GET /v1/health HTTP/1.1\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 80) + "\r\n",
			"GET /v1/health\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		}
		return &malformed{kind: "broken http", request: lines[rng.IntN(len(lines))]}
	default:
		full := req("", "PUT", "/v1/instances/"+user, validSpec, "").request
		cut := 1 + rng.IntN(len(full)-2)
		return &malformed{kind: "truncated", request: full[:cut], truncated: true}
	}
}

// req builds a request ("Connection: close", a Content-Length when there
// is a body).
func req(kind, method, path, body, header string) *malformed {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, path)
	if header != "" {
		b.WriteString(header + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return &malformed{kind: kind, request: b.String()}
}

func chunked(method, path, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", method, path)
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// send writes the request and reads the answer (none for a truncated one).
func (m *malformed) send(socket string) (int, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(m.request)); err != nil && !m.truncated {
		return 0, err
	}
	if m.truncated {
		return 0, nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// fuzzJSON breaks a valid JSON object in a way that can never make it
// acceptable: it cuts it short, or adds an unknown field (then flips
// bytes, which leaves it invalid JSON or still unknown-keyed), or adds
// data after it, or nests it wrongly.
func fuzzJSON(rng *rand.Rand, valid string) string {
	switch rng.IntN(5) {
	case 0:
		return valid[:1+rng.IntN(len(valid)-1)]
	case 1, 2:
		prefix := `{"` + junkKey(rng) + `":` + []string{"1", `"x"`, "null", "[]", "{}", "true"}[rng.IntN(6)] + ","
		rest := []byte(valid[1:])
		for n := rng.IntN(4); n > 0; n-- {
			rest[rng.IntN(len(rest))] = byte(rng.IntN(256))
		}
		return prefix + string(rest)
	case 3:
		return valid + []string{"x", " {}", "]", "\x00", ",", `"`}[rng.IntN(6)]
	default:
		return "[" + valid + "]"
	}
}

// junkKey is a key no request type has (it starts with "zz").
func junkKey(rng *rand.Rand) string { return "zz" + junk(rng, 1+rng.IntN(6)) }

func junk(rng *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABC0123456789_-"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.IntN(len(chars))]
	}
	return string(b)
}

// invalidSpec is well-formed JSON with a value the agent refuses.
func invalidSpec(rng *rand.Rand) string {
	specs := []string{
		`{"image":"evil/miner:latest"}`,
		`{"image":"Not A Ref"}`,
		`{"resources":{"cpus":64}}`,
		`{"resources":{"cpus":-1}}`,
		`{"resources":{"memory":"64g"}}`,
		`{"resources":{"memory":"lots"}}`,
		`{"resources":{"pids":100000}}`,
		`{"resources":{"cpus":"1"}}`,
		`{"env":{"BAD KEY":"x"}}`,
		`{"env":{"A=B":"x"}}`,
		`{"env":{"":"x"}}`,
		`{"env":{"A":"line\nbreak"}}`,
		`{"files":{"../../etc/passwd":"x"}}`,
		`{"files":{".hidden/../x":"x"}}`,
		`{"labels":{"zaki.port":"1"}}`,
		`{"labels":{"":"x"}}`,
		`{"env":[]}`,
		`{"image":null}`,
		`{"resources":[]}`,
		`{"image":"zaki/gateway-stub:latest","image":"zaki/gateway-stub:latest"}`,
	}
	return specs[rng.IntN(len(specs))]
}

// badID returns a path segment that is not a valid user ID.
func badID(rng *rand.Rand) string {
	for {
		var id string
		switch rng.IntN(6) {
		case 0:
			id = "-" + junk(rng, 1+rng.IntN(10))
		case 1:
			id = junk(rng, 64+rng.IntN(40))
		case 2:
			const bad = "!@$*()+,;=~ \"'<>|\\`^{}"
			id = junk(rng, 3) + string(bad[rng.IntN(len(bad))]) + junk(rng, 2)
		case 3:
			id = []string{"..", ".", "_x", ".x", "a%00b", "%2e%2e", "ü", "a%2Fb", "%20"}[rng.IntN(9)]
			return id // already escaped, or plainly bad
		case 4:
			id = junk(rng, 2) + "\u00e9" + junk(rng, 2)
		default:
			id = "." + junk(rng, 1+rng.IntN(5))
		}
		if registry.ValidateUserID(id) != nil {
			return url.PathEscape(id)
		}
	}
}
