package runtimetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testEngine runs the checks that need a real engine, on one container of
// the full spec running the stand-in: it answers on its published port,
// its healthcheck turns healthy, its data mount is writable and receives
// the stand-in's files, its output reaches Logs (followed too), and an
// exit with code 3 is a die event with that code after which the restart
// policy brings it back.
func (s *suite) testEngine(t *testing.T) {
	if !s.cfg.Engine {
		t.Skip("needs a real engine (Config.Engine)")
	}
	name := s.name("engine")
	dir := s.dataDir(t)
	port := freePort(t, s.cfg.HostIP)
	spec := s.fullSpec(name, s.network(t), dir, port)
	id := s.create(t, spec)
	events := s.watch(t, map[string]string{LabelRun: s.run, "zaki.conformance.spec": name})
	s.start(t, name)

	h := s.httpClient(t, port)
	t.Run("HTTP", func(t *testing.T) {
		ctx := s.ctx(t)
		s.waitFor(t, func(poll.LogT) poll.Result {
			body, err := h.do(ctx, http.MethodGet, "/health", "")
			if err != nil {
				return poll.Continue("GET /health on %s: %v", h.base, err)
			}
			if strings.TrimSpace(body) != "ok" {
				return poll.Error(fmt.Errorf("GET /health: got %q, want \"ok\"", body))
			}
			return poll.Success()
		})
	})

	t.Run("Healthy", func(t *testing.T) {
		ctx := s.ctx(t)
		s.waitFor(t, func(poll.LogT) poll.Result {
			c, err := s.rt.Inspect(ctx, id)
			if err != nil {
				return poll.Error(err)
			}
			switch c.Health {
			case "healthy":
				return poll.Success()
			case "starting", "unhealthy":
				return poll.Continue("health of %s is %q", name, c.Health)
			}
			return poll.Error(fmt.Errorf("health of %s is %q, want starting, then healthy", name, c.Health))
		})
	})

	t.Run("DataMount", func(t *testing.T) {
		ctx := s.ctx(t)
		s.waitFor(t, func(poll.LogT) poll.Result {
			if _, err := os.Stat(filepath.Join(dir, "gateway-stub.started")); err != nil {
				return poll.Continue("the stand-in's start file in the data mount: %v", err)
			}
			return poll.Success()
		})
		const content = "written by the conformance suite\n"
		if _, err := h.do(ctx, http.MethodPost, "/files/conformance.txt", content); err != nil {
			t.Fatalf("POST /files/conformance.txt: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "conformance.txt"))
		if err != nil || string(b) != content {
			t.Errorf("the file the container wrote to its data mount: got %q (%v), want %q", b, err, content)
		}
	})

	t.Run("ReadOnlyRoot", func(t *testing.T) {
		// A write outside the data mount and the tmpfs meets a read-only
		// root (EROFS, whatever the file's permissions would say); the same
		// write into the data mount succeeds, so the stand-in can tell.
		ctx := s.ctx(t)
		for _, tc := range []struct{ path, want string }{
			{"/conformance-readonly", "error: EROFS"},
			{stubDataPath + "/conformance-write.txt", "written"},
		} {
			body, err := h.do(ctx, http.MethodPost, "/write?path="+tc.path, "x")
			if err != nil {
				t.Fatalf("POST /write?path=%s: %v", tc.path, err)
			}
			if s.cfg.ReadOnlyEACCES && strings.HasPrefix(body, "error: EACCES") && tc.want == "error: EROFS" {
				continue
			}
			if !strings.HasPrefix(body, tc.want) {
				t.Errorf("a write of %s in the container: got %q, want %q...", tc.path, strings.TrimSpace(body), tc.want)
			}
		}
	})

	t.Run("Logs", func(t *testing.T) {
		ctx := s.ctx(t)
		lines, err := s.readLogs(ctx, name, runtime.LogOptions{})
		if err != nil {
			t.Fatalf("logs %s: %v", name, err)
		}
		if !containsLine(lines, "listening") {
			t.Errorf("logs %s: no line with \"listening\" in %q", name, lines)
		}
		// A request the stand-in logs reaches a follower. The follower is
		// known to be attached once the tail's line has come through; the
		// request is sent again every few seconds, since one may be lost on
		// its way in (a busy sandbox) and nothing else would log it.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rc, err := s.rt.Logs(fctx, name, runtime.LogOptions{Follow: true, Tail: new(1)})
		if err != nil {
			t.Fatalf("logs %s follow: %v", name, err)
		}
		defer rc.Close()
		got, done := scanLines(rc)
		timeout := time.After(s.cfg.Timeout)
		select {
		case <-got:
		case err := <-done:
			t.Fatalf("logs %s follow: ended (%v) before its tail's line", name, err)
		case <-timeout:
			t.Fatalf("logs %s follow: not even the tail's line within %v", name, s.cfg.Timeout)
		}
		path := "/conformance-follow-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		var lastErr error
		send := func() {
			if _, err := h.do(ctx, http.MethodGet, path, ""); err != nil && !strings.Contains(err.Error(), "404") {
				lastErr = err // a 404 is the answer: it is logged all the same
			}
		}
		send()
		again := time.NewTicker(5 * time.Second)
		defer again.Stop()
		for {
			select {
			case l := <-got:
				if strings.Contains(l, path) {
					return
				}
			case <-again.C:
				send()
			case err := <-done:
				t.Fatalf("logs %s follow: ended (%v) before the line of GET %s", name, err, path)
			case <-timeout:
				t.Fatalf("logs %s follow: no line of GET %s within %v (last request error: %v)", name, path, s.cfg.Timeout, lastErr)
			}
		}
	})

	t.Run("ExitRestarts", func(t *testing.T) {
		ctx := s.ctx(t)
		before := s.inspect(t, id).RestartCount
		if _, err := h.do(ctx, http.MethodPost, "/exit?code=3", ""); err != nil {
			t.Fatalf("POST /exit?code=3: %v", err)
		}
		seen := events.until(t, s.cfg.Timeout, "die of "+name, func(ev runtime.Event) bool {
			return ev.ID == id && ev.Action == runtime.EventDie
		})
		if die := seen[len(seen)-1]; die.ExitCode != 3 {
			t.Errorf("die event of %s: exit code %d, want 3", name, die.ExitCode)
		}
		s.waitFor(t, func(poll.LogT) poll.Result {
			c, err := s.rt.Inspect(ctx, id)
			if err != nil {
				return poll.Error(err)
			}
			if c.RestartCount <= before || !c.Running() {
				return poll.Continue("%s: RestartCount %d (was %d), state %q", name, c.RestartCount, before, c.State)
			}
			return poll.Success()
		})
		s.waitFor(t, func(poll.LogT) poll.Result {
			if _, err := h.do(ctx, http.MethodGet, "/health", ""); err != nil {
				return poll.Continue("GET /health after the restart: %v", err)
			}
			return poll.Success()
		})
	})
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// stubClient talks HTTP to the stand-in on its published port.
type stubClient struct {
	base   string
	client *http.Client
}

func (s *suite) httpClient(t *testing.T, port int) *stubClient {
	dial := s.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &stubClient{
		base:   "http://" + net.JoinHostPort(s.cfg.HostIP, strconv.Itoa(port)),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
}

// do sends one request and returns the body of a 2xx answer.
func (c *stubClient) do(ctx context.Context, method, path, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return string(b), fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
