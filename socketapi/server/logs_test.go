package server_test

import (
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestLogsOptions: tail (0 is none, all or absent is every line), since
// (docker's three forms) and timestamps reach the runtime and shape the
// answer; the Go client sends them as the server reads them.
func TestLogsOptions(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "lena", struct0())
	assert.NilError(t, err)
	ref := "zaki-user-lena"
	assert.NilError(t, e.Fake.WriteLog(ref, "line one", "line two", "line three"))

	get := func(query string) string {
		t.Helper()
		r := raw(t, e.Socket, "GET", "/v1/instances/lena/logs?"+query, "")
		assert.Equal(t, r.status, 200, "logs?%s: %s", query, r.body)
		return r.body
	}
	all := get("")
	assert.Check(t, strings.HasSuffix(all, "line one\nline two\nline three\n"), all)
	assert.Check(t, is.Equal(get("tail=all"), all))
	assert.Check(t, is.Equal(get("tail=0"), ""))
	assert.Check(t, is.Equal(get("tail=0&timestamps=true"), ""))
	assert.Check(t, is.Equal(get("tail=2"), "line two\nline three\n"))

	// Timestamps: RFC 3339 with nanoseconds, a space, the line.
	stamped := strings.Split(strings.TrimSuffix(get("tail=1&timestamps=true"), "\n"), "\n")
	assert.Assert(t, is.Len(stamped, 1))
	ts, text, _ := strings.Cut(stamped[0], " ")
	assert.Check(t, is.Equal(text, "line three"))
	t3, err := time.Parse(time.RFC3339Nano, ts)
	assert.NilError(t, err)

	// A line written strictly later than the first three.
	for !time.Now().After(t3) {
	}
	assert.NilError(t, e.Fake.WriteLog(ref, "line four"))
	stamped = strings.Split(strings.TrimSuffix(get("tail=1&timestamps=true"), "\n"), "\n")
	ts4, _, _ := strings.Cut(stamped[0], " ")
	t4, err := time.Parse(time.RFC3339Nano, ts4)
	assert.NilError(t, err)
	assert.Assert(t, t4.After(t3))

	for _, since := range []string{
		ts4, // RFC 3339, UTC
		t4.In(time.FixedZone("", 3600)).Format(time.RFC3339Nano),                         // with an offset
		strconv.FormatInt(t4.Unix(), 10) + "." + strconv.Itoa(t4.Nanosecond() + 1e9)[1:], // Unix seconds
	} {
		assert.Check(t, is.Equal(get("since="+url.QueryEscape(since)), "line four\n"), "since=%s", since)
	}
	assert.Check(t, is.Equal(get("since="+url.QueryEscape(ts)), "line three\nline four\n")) // inclusive
	assert.Check(t, is.Equal(get("since="+url.QueryEscape(ts)+"&tail=1"), "line four\n"))
	assert.Check(t, is.Equal(get("since="+url.QueryEscape(ts)+"&tail=0"), ""))
	assert.Check(t, is.Equal(get("since=87600h"), get("")))
	assert.Check(t, is.Equal(get("since="+strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)), ""))

	// The Go client.
	read := func(opts socketapi.LogOptions) string {
		t.Helper()
		rc, err := e.Client.Logs(ctx, "lena", opts)
		assert.NilError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		assert.NilError(t, err)
		return string(b)
	}
	assert.Check(t, is.Equal(read(socketapi.LogOptions{Tail: new(0)}), ""))
	assert.Check(t, is.Equal(read(socketapi.LogOptions{}), all+"line four\n"))
	assert.Check(t, is.Equal(read(socketapi.LogOptions{Since: t4, Timestamps: true}), ts4+" line four\n"))
	assert.Check(t, is.Equal(read(socketapi.LogOptions{Since: t4.Add(time.Nanosecond)}), ""))
}

// TestLogsOptionsRefused: garbage and absurd values are a 400 that names
// them, and reach no engine.
func TestLogsOptionsRefused(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	_, err := e.Client.Ensure(ctx, "mona", struct0())
	assert.NilError(t, err)
	before := e.Fake.CallCounts()
	for _, tc := range []struct{ query, contains string }{
		{"tail=-1", `invalid tail "-1": want a number of lines from 0 to 1000000, or all`},
		{"tail=-0", `invalid tail "-0"`},
		{"tail=1000001", `invalid tail "1000001"`},
		{"since=yesterday", `invalid since "yesterday": want an RFC 3339 time`},
		{"since=-10m", `invalid since "-10m": a duration back from now must be from 0 to ten years`},
		{"since=87601h", `invalid since "87601h"`},
		{"since=99999999999", `invalid since "99999999999": want a time from 1970-01-01T00:00:00Z to ten years from now`},
		{"since=1969-12-31T23:59:59Z", `invalid since "1969-12-31T23:59:59Z": want a time from 1970`},
		{"since=2026-12-05", `invalid since "2026-12-05"`},
		{"since=1.2.3", `invalid since "1.2.3"`},
		{"since=1764921600.1234567891", `invalid since`},
		{"timestamps=yes", `invalid timestamps "yes": want true or false`},
		{"since=", `query parameter "since" is empty`},
	} {
		r := raw(t, e.Socket, "GET", "/v1/instances/mona/logs?"+tc.query, "")
		assert.Check(t, is.Equal(r.status, 400), tc.query)
		var body struct {
			Error struct{ Code, Message string }
		}
		assert.NilError(t, json.Unmarshal([]byte(r.body), &body), tc.query)
		assert.Check(t, is.Equal(body.Error.Code, "invalid_argument"), tc.query)
		assert.Check(t, is.Contains(body.Error.Message, tc.contains), tc.query)
	}
	assert.Check(t, is.DeepEqual(e.Fake.CallCounts(), before))
}
