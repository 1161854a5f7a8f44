package socketapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// TestEnginePullProgress: on the real engine, with the stand-in image
// pushed to a registry on 127.0.0.1 under a tag this host does not have,
//
//   - an ensure asked for NDJSON streams the pull's progress, then the
//     instance;
//   - POST /v1/images/pull of the tag, now present, pulls it again,
//     streaming its progress, and answers 200 plain too;
//   - a tag the registry does not have is 502 pull_failed: plain, and
//     asked for NDJSON either 502 (nothing streamed yet) or an error line
//     with that status and code after progress;
//   - an image outside allowedImages is 403, nothing pulled;
//   - zakictl pull (not on a terminal: plain progress lines) exits 0, or 1
//     with the agent's message.
func TestEnginePullProgress(t *testing.T) {
	image := testenv.EnsureStubImage(t)
	host := runtimetest.LocalRegistry(t)
	tag := strings.ToLower(testenv.UniqueName("pull"))
	ref := host + "/zaki/gateway-stub:" + tag
	docker(t, "tag", image, ref)
	t.Cleanup(func() { exec.Command("docker", "rmi", ref).Run() })
	docker(t, "push", ref)
	docker(t, "rmi", ref) // the tag only: the stand-in keeps the image
	missing := host + "/zaki/gateway-stub:" + tag + "-missing"

	en := startEngineWith(t, 20, func(c *daemon.Config) {
		c.Instance.AllowedImages = append(c.Instance.AllowedImages, host+"/zaki/*")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := en.Client
	u := en.user("puller")
	t.Cleanup(func() { c.Remove(context.Background(), u, true) })

	// The ensure pulls the tag, and says so as it goes.
	var got []socketapi.PullProgress
	in, err := c.EnsureWithProgress(ctx, u, socketapi.InstanceSpec{Image: ref}, func(pp socketapi.PullProgress) { got = append(got, pp) })
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.Outcome, socketapi.OutcomeCreated))
	assert.Check(t, is.Equal(in.Image, ref))
	assert.Assert(t, len(got) >= 1, "no progress line")
	for _, pp := range got {
		assert.Check(t, is.Equal(pp.Image, ref))
	}
	t.Logf("ensure progress: %v", got)

	// Pulled again although present.
	status, lines := ndjsonCall(t, en, http.MethodPost, "/v1/images/pull", `{"image": "`+ref+`"}`)
	assert.Assert(t, is.Equal(status, http.StatusOK))
	assert.Assert(t, len(lines) >= 2, "%v", lines)
	upToDate := false
	for _, l := range lines[:len(lines)-1] {
		assert.Assert(t, l.Progress != nil && l.Progress.Image == ref, "%+v", l)
		upToDate = upToDate || strings.Contains(l.Progress.Status, "Image is up to date")
	}
	assert.Check(t, upToDate, "%v", lines)
	last := lines[len(lines)-1]
	assert.Assert(t, last.Pull != nil, "%+v", last)
	assert.Check(t, is.Equal(last.Pull.Image, ref))
	res, err := c.PullImage(ctx, ref, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Image, ref))

	// A tag the registry does not have.
	_, err = c.PullImage(ctx, missing, nil)
	wantAPIError(t, err, http.StatusBadGateway, socketapi.CodePullFailed, socketapi.ErrPullFailed)
	assert.Check(t, is.ErrorContains(err, missing))
	status, lines = ndjsonCall(t, en, http.MethodPost, "/v1/images/pull", `{"image": "`+missing+`"}`)
	if status == http.StatusOK {
		last := lines[len(lines)-1]
		assert.Assert(t, last.Error != nil, "%+v", last)
		assert.Check(t, is.Equal(last.Error.Status, http.StatusBadGateway))
		assert.Check(t, is.Equal(last.Error.Code, socketapi.CodePullFailed))
	} else {
		assert.Check(t, is.Equal(status, http.StatusBadGateway))
	}
	_, err = c.PullImage(ctx, missing, func(socketapi.PullProgress) {})
	wantAPIError(t, err, http.StatusBadGateway, socketapi.CodePullFailed, socketapi.ErrPullFailed)

	// Not allowed: refused before anything is pulled.
	_, err = c.PullImage(ctx, "evil/miner:latest", nil)
	wantAPIError(t, err, http.StatusForbidden, socketapi.CodeForbidden, socketapi.ErrForbidden)
	assert.Check(t, !strings.Contains(en.Logs.String(), "image=evil/miner"), "nothing pulled")

	// zakictl, its output not a terminal.
	cli := apitest.NewCLI(t, en.Env)
	r := cli.Run("pull", ref)
	r.Assert(t, icmd.Expected{ExitCode: 0, Out: ref + " pulled\n"})
	assert.Check(t, is.Contains(r.Stderr(), "pull "+ref+": "))
	assert.Check(t, !strings.Contains(r.Stderr(), "\r"), "no redrawn line off a terminal")
	r = cli.Run("pull", missing)
	r.Assert(t, icmd.Expected{ExitCode: 1})
	assert.Check(t, is.Contains(r.Stderr(), "zakictl: pull image \""+missing+"\""))
	cli.Run("pull", "evil/miner:latest").Assert(t, icmd.Expected{ExitCode: 1, Err: "is not allowed"})
	cli.Run("pull").Assert(t, icmd.Expected{ExitCode: 1, Err: "pull needs IMAGE"})
	assert.Check(t, is.Len(en.Contract.Failures(), 0))
}

// docker runs a docker command that must succeed.
func docker(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	assert.NilError(t, err, "docker %s: %s", strings.Join(args, " "), out)
}

// ndjsonCall sends a request asking for NDJSON; it returns the status and,
// for a 200, the lines (checked to be NDJSON).
func ndjsonCall(t *testing.T, en *engine, method, path, body string) (int, []socketapi.StreamLine) {
	t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	hc := &http.Client{Transport: socketapi.NewTransport(en.Socket), Timeout: 5 * time.Minute}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	assert.NilError(t, err)
	if resp.StatusCode != http.StatusOK {
		assert.Check(t, is.Equal(resp.Header.Get("Content-Type"), "application/json"), b.String())
		return resp.StatusCode, nil
	}
	assert.Check(t, is.Equal(resp.Header.Get("Content-Type"), "application/x-ndjson"))
	var lines []socketapi.StreamLine
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		var l socketapi.StreamLine
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		lines = append(lines, l)
	}
	assert.Assert(t, len(lines) >= 1)
	return resp.StatusCode, lines
}
