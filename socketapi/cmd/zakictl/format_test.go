package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	ins := []socketapi.Instance{
		{UserID: "alice", State: "running", Port: 18790, Image: "alpine/openclaw:latest", CreatedAtMs: ago(3*24*time.Hour + time.Hour), LastUsedAtMs: ago(42 * time.Second), Stale: true, DataBytes: 1536 << 20},
		{UserID: "bob.smith_2", State: "stopped", Port: 18791, Image: "zaki/gateway-stub:latest", CreatedAtMs: ago(5 * time.Hour), LastUsedAtMs: ago(59 * time.Minute), DataBytes: 4096},
		{UserID: "c", State: "missing", Port: 28789, Image: "alpine/openclaw:2026.1", CreatedAtMs: ago(47 * time.Hour), LastUsedAtMs: 0},
	}
	var b bytes.Buffer
	assert.NilError(t, writeTable(&b, ins, now))
	golden.Assert(t, b.String(), "table.golden")
}

func TestWritePrune(t *testing.T) {
	var b bytes.Buffer
	writePrune(&b, socketapi.PruneResult{DryRun: true,
		Stopped: []socketapi.PruneItem{{UserID: "alice", Reason: "idle-stop", IdleMinutes: 95.5, AgeDays: 0.5}},
		Removed: []socketapi.PruneItem{{UserID: "bob", Reason: "max-age", IdleMinutes: 30, AgeDays: 8.25}},
		Staled:  []socketapi.PruneItem{{UserID: "dora", Reason: "max-age", IdleMinutes: 2, AgeDays: 9}},
	})
	writePrune(&b, socketapi.PruneResult{
		Failed: []socketapi.PruneItem{{UserID: "carol", Reason: "idle", IdleMinutes: 1500, AgeDays: 2, Error: "engine gone"}},
	})
	golden.Assert(t, b.String(), "prune-table.golden")
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 512: "512B", 1024: "1.0K", 4096: "4.0K", 340 << 20: "340M", 1536 << 20: "1.5G", 12 << 40: "12T"} {
		assert.Check(t, is.Equal(sizeText(n), want), "%d", n)
	}
}

func TestSince(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "0s"}, {59 * time.Second, "59s"}, {time.Minute, "1m"}, {59 * time.Minute, "59m"}, {time.Hour, "1h"},
		{47 * time.Hour, "47h"}, {48 * time.Hour, "2d"}, {-time.Second, "0s"}} {
		assert.Check(t, is.Equal(since(now, now.Add(-c.d).UnixMilli()), c.want), "%v", c.d)
	}
	assert.Check(t, is.Equal(since(now, 0), "-"))
}

func TestReadEnvFile(t *testing.T) {
	t.Setenv("ZAKICTL_TEST_FROM_ENV", "inherited")
	file := filepath.Join(t.TempDir(), "env")
	assert.NilError(t, os.WriteFile(file, []byte("# comment\n\nA=1\n  B=two words \nC=with=equals\nEMPTY=\nZAKICTL_TEST_FROM_ENV\nZAKICTL_TEST_UNSET\nWIN=crlf\r\n"), 0o600))
	env := map[string]string{}
	assert.NilError(t, readEnvFile(file, env))
	assert.Check(t, is.DeepEqual(env, map[string]string{
		"A": "1", "B": "two words ", "C": "with=equals", "EMPTY": "", "ZAKICTL_TEST_FROM_ENV": "inherited", "WIN": "crlf",
	}))

	assert.NilError(t, os.WriteFile(file, []byte("GOOD=1\nBAD KEY=secret-value\n"), 0o600))
	err := readEnvFile(file, map[string]string{})
	assert.ErrorContains(t, err, ":2: want NAME=VALUE or NAME")
	assert.Check(t, !bytes.Contains([]byte(err.Error()), []byte("secret-value")), "the error shows no value: %v", err)

	err = readEnvFile(filepath.Join(t.TempDir(), "missing"), map[string]string{})
	assert.ErrorContains(t, err, "--env-file")
}
