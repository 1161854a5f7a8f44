package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// FuzzDecodeRequest fuzzes the decoding of request bodies (seed corpus in
// testdata/fuzz/FuzzDecodeRequest). Whatever the input: no panic; what is
// accepted is valid JSON (or empty), is accepted by encoding/json with
// unknown fields disallowed and decodes to the same value, and survives a
// round trip; what encoding/json refuses is refused.
//
//	go test ./socketapi/server -run '^$' -fuzz FuzzDecodeRequest -fuzztime 30s
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"image":"zaki/gateway-stub:latest","env":{"A":"1"},"resources":{"cpus":1.5,"pids":10}}`))
	f.Add([]byte(`{"dryRun":true,"idleHours":0.5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode[socketapi.InstanceSpec](t, body)
		checkDecode[socketapi.PruneRequest](t, body)
	})
}

func checkDecode[T any](t *testing.T, body []byte) {
	var got T
	err := decodeJSON(body, &got)
	var std T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	stdErr := dec.Decode(&std)
	if err != nil {
		if socketapi.ClassOfCode(socketapi.CodeInvalidArgument, 0) != socketapi.ErrInvalidArgument {
			t.Fatal("class table broken")
		}
		if _, body := socketapi.HTTPError(err); body.Error.Code != socketapi.CodeInvalidArgument {
			t.Fatalf("decode error %v is %s, want invalid_argument", err, body.Error.Code)
		}
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		var zero T
		if !reflect.DeepEqual(got, zero) {
			t.Fatalf("empty body decoded to %+v", got)
		}
		return
	}
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	if stdErr != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", body, stdErr)
	}
	if !reflect.DeepEqual(got, std) {
		t.Fatalf("decoded %q to %+v, encoding/json to %+v", body, got, std)
	}
	again, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var round T
	if err := decodeJSON(again, &round); err != nil {
		t.Fatalf("re-encoded %s refused: %v", again, err)
	}
	if !reflect.DeepEqual(round, got) {
		t.Fatalf("round trip of %q: %+v, want %+v", body, round, got)
	}
}

// FuzzParseLogsQuery fuzzes the query of GET .../logs: no panic, and what
// is accepted is in range.
func FuzzParseLogsQuery(f *testing.F) {
	for _, s := range []string{"", "tail=10", "tail=all&follow=true", "follow=false", "tail=0", "tail=1000000", "x=1", "tail=1&tail=2", "%zz",
		"since=10m&timestamps=true", "since=2026-12-05T08:00:00.5%2B01:00", "since=1764921600.123", "since=-1h", "since=99999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, "tail", "since", "follow", "timestamps")
		if err != nil {
			return
		}
		for k := range q {
			if k != "tail" && k != "since" && k != "follow" && k != "timestamps" {
				t.Fatalf("accepted unknown key %q", k)
			}
		}
		if n, err := parseTail(q["tail"]); err == nil && n != nil && (*n < 0 || *n > maxTail) {
			t.Fatalf("tail %d out of range", *n)
		}
		if _, err := parseBool("follow", q["follow"]); err == nil && q["follow"] != "" && q["follow"] != "true" && q["follow"] != "false" {
			t.Fatalf("accepted follow %q", q["follow"])
		}
		since, err := socketapi.ParseSince(q["since"], now)
		if err == nil && q["since"] != "" && (since.Before(time.Unix(0, 0)) || since.After(now.AddDate(11, 0, 0))) {
			t.Fatalf("since %q accepted as %v, out of range", q["since"], since)
		}
		if err != nil && !errors.Is(err, socketapi.ErrInvalidArgument) {
			t.Fatalf("since %q: %v, want an invalid_argument", q["since"], err)
		}
	})
}
