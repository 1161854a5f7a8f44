package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

const acceptNDJSON = "Accept: application/x-ndjson"

// streamLines decodes an NDJSON answer strictly: one StreamLine a line,
// exactly one field set in each.
func streamLines(t *testing.T, r response) []socketapi.StreamLine {
	t.Helper()
	assert.Check(t, is.Equal(r.header.Get("Content-Type"), "application/x-ndjson"), r.body)
	var lines []socketapi.StreamLine
	sc := bufio.NewScanner(strings.NewReader(r.body))
	for sc.Scan() {
		var l socketapi.StreamLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		assert.NilError(t, dec.Decode(&l), sc.Text())
		n := 0
		for _, set := range []bool{l.Progress != nil, l.Instance != nil, l.Pull != nil, l.Error != nil} {
			if set {
				n++
			}
		}
		assert.Check(t, is.Equal(n, 1), sc.Text())
		lines = append(lines, l)
	}
	return lines
}

// TestEnsureNDJSON: an ensure asked for NDJSON streams the pull's
// progress, then the instance (200 even when created); without a pull,
// the instance line alone; errors found before any line keep their
// status and JSON body; an error after progress is the last line.
func TestEnsureNDJSON(t *testing.T) {
	e := start(t)

	r := raw(t, e.Socket, http.MethodPut, "/v1/instances/nora", "", acceptNDJSON)
	assert.Assert(t, is.Equal(r.status, http.StatusOK), r.body)
	lines := streamLines(t, r)
	assert.Assert(t, len(lines) >= 3, r.body)
	for _, l := range lines[:len(lines)-1] {
		assert.Assert(t, l.Progress != nil, r.body)
		assert.Check(t, is.Equal(l.Progress.Image, "alpine/openclaw:latest"))
	}
	assert.Check(t, is.Equal(lines[0].Progress.Status, "latest: Pulling from alpine/openclaw"))
	last := lines[len(lines)-1]
	assert.Assert(t, last.Instance != nil, r.body)
	assert.Check(t, is.Equal(last.Instance.UserID, "nora"))
	assert.Check(t, is.Equal(last.Instance.Outcome, socketapi.OutcomeCreated))

	// Nothing to pull: the instance line alone.
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/nora", "", acceptNDJSON)
	assert.Assert(t, is.Equal(r.status, http.StatusOK), r.body)
	lines = streamLines(t, r)
	assert.Assert(t, is.Len(lines, 1), r.body)
	assert.Assert(t, lines[0].Instance != nil)
	assert.Check(t, is.Equal(lines[0].Instance.Outcome, socketapi.OutcomeReused))

	// Accept lists NDJSON among others.
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/nora", "", "Accept: application/json;q=0.5, application/x-ndjson")
	assert.Check(t, is.Len(streamLines(t, r), 1), r.body)

	// Errors before any line: their own status, a JSON error body.
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/nora", `{"imag": "x"}`, acceptNDJSON)
	assert.Check(t, is.Equal(r.status, http.StatusBadRequest), r.body)
	assert.Check(t, is.Equal(r.errorCode(), socketapi.CodeInvalidArgument))
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/nora", `{"image": "evil/image:1"}`, acceptNDJSON)
	assert.Check(t, is.Equal(r.status, http.StatusForbidden), r.body)
	assert.Check(t, is.Equal(r.errorCode(), socketapi.CodeForbidden))

	// An error after progress lines: the last line, with the status the
	// call would have answered.
	e.Fake.AddPullable("alpine/openclaw:2")
	e.Fake.Fail("Create", runtime.Errorf(runtime.ErrConflict, "engine refuses"))
	r = raw(t, e.Socket, http.MethodPut, "/v1/instances/otto", `{"image": "alpine/openclaw:2"}`, acceptNDJSON)
	assert.Assert(t, is.Equal(r.status, http.StatusOK), r.body)
	lines = streamLines(t, r)
	assert.Assert(t, len(lines) >= 2, r.body)
	assert.Check(t, lines[0].Progress != nil, r.body)
	last = lines[len(lines)-1]
	assert.Assert(t, last.Error != nil, r.body)
	assert.Check(t, is.Equal(last.Error.Status, http.StatusConflict))
	assert.Check(t, is.Equal(last.Error.Code, socketapi.CodeConflict))
	assert.Check(t, is.Contains(last.Error.Message, "engine refuses"))
	assert.Check(t, is.Contains(e.Logs.String(), "streamed=true"))
	m := raw(t, e.Socket, http.MethodGet, "/metrics", "")
	assert.Check(t, is.Contains(m.body, `zaki_api_requests_total{code="409",method="PUT",route="/v1/instances/{userId}"} 1`))

	// The client reads the same error line into the same typed error.
	e.Fake.AddPullable("alpine/openclaw:3")
	var got []socketapi.PullProgress
	_, err := e.Client.EnsureWithProgress(ctxT(t), "otto", socketapi.InstanceSpec{Image: "alpine/openclaw:3"}, func(pp socketapi.PullProgress) { got = append(got, pp) })
	assert.Check(t, errors.Is(err, socketapi.ErrConflict), "%v", err)
	var ae *socketapi.Error
	assert.Assert(t, errors.As(err, &ae))
	assert.Check(t, is.Equal(ae.Status, http.StatusConflict))
	assert.Check(t, len(got) >= 2, "%v", got)
	assert.Check(t, is.Len(e.Contract.Failures(), 0))
}

// TestPullImage: POST /v1/images/pull pulls a present image again, plain
// or streamed; a tag the engine cannot pull is 502 pull_failed; bad
// bodies 400; an image not allowed 403.
func TestPullImage(t *testing.T) {
	e := start(t)
	const img = "alpine/openclaw:latest"
	before := e.Fake.CallCounts()["PullImage"]

	r := raw(t, e.Socket, http.MethodPost, "/v1/images/pull", `{"image": "`+img+`"}`)
	assert.Assert(t, is.Equal(r.status, http.StatusOK), r.body)
	var res socketapi.PullResult
	assert.NilError(t, json.Unmarshal([]byte(r.body), &res))
	assert.Check(t, is.Equal(res.Image, img))
	assert.Check(t, strings.HasPrefix(res.ImageID, "sha256:"), r.body)

	// Present now: pulled again all the same.
	r = raw(t, e.Socket, http.MethodPost, "/v1/images/pull", `{"image": "`+img+`"}`, acceptNDJSON)
	assert.Assert(t, is.Equal(r.status, http.StatusOK), r.body)
	lines := streamLines(t, r)
	assert.Assert(t, len(lines) >= 2, r.body)
	assert.Check(t, lines[0].Progress != nil)
	assert.Check(t, is.Contains(lines[len(lines)-2].Progress.Status, "Image is up to date"))
	last := lines[len(lines)-1]
	assert.Assert(t, last.Pull != nil, r.body)
	assert.Check(t, is.Equal(last.Pull.Image, img))
	assert.Check(t, is.Equal(e.Fake.CallCounts()["PullImage"], before+2))

	// The client, both ways.
	var got []socketapi.PullProgress
	res, err := e.Client.PullImage(ctxT(t), img, func(pp socketapi.PullProgress) { got = append(got, pp) })
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Image, img))
	assert.Check(t, len(got) >= 2, "%v", got)
	res, err = e.Client.PullImage(ctxT(t), img, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Image, img))

	// A tag the engine cannot pull (it fails before any progress): 502,
	// plain or asked for NDJSON.
	for _, h := range []string{"X-None: 1", acceptNDJSON} {
		r = raw(t, e.Socket, http.MethodPost, "/v1/images/pull", `{"image": "alpine/openclaw:nope"}`, h)
		assert.Check(t, is.Equal(r.status, http.StatusBadGateway), r.body)
		assert.Check(t, is.Equal(r.errorCode(), socketapi.CodePullFailed))
		assert.Check(t, is.Contains(r.message(), "not found"))
	}
	_, err = e.Client.PullImage(ctxT(t), "alpine/openclaw:nope", func(socketapi.PullProgress) {})
	assert.Check(t, errors.Is(err, socketapi.ErrPullFailed), "%v", err)

	for body, code := range map[string]string{
		``:                            socketapi.CodeInvalidArgument,
		`{}`:                          socketapi.CodeInvalidArgument,
		`{"image": ""}`:               socketapi.CodeInvalidArgument,
		`{"image": "UPPER//case"}`:    socketapi.CodeInvalidArgument,
		`{"Image": "` + img + `"}`:    socketapi.CodeInvalidArgument,
		`{"image": 1}`:                socketapi.CodeInvalidArgument,
		`{"image": "evil/image:1"}`:   socketapi.CodeForbidden,
		`{"image": "` + img + `"} {}`: socketapi.CodeInvalidArgument,
	} {
		r = raw(t, e.Socket, http.MethodPost, "/v1/images/pull", body, acceptNDJSON)
		assert.Check(t, is.Equal(r.errorCode(), code), "%s: %s", body, r.body)
		assert.Check(t, is.Equal(r.header.Get("Content-Type"), "application/json"), body)
	}
	_, err = e.Client.PullImage(ctxT(t), "evil/image:1", nil)
	assert.Check(t, errors.Is(err, socketapi.ErrForbidden), "%v", err)
	assert.Check(t, is.Len(e.Contract.Failures(), 0))
}
