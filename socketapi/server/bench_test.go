package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// The API's hot paths over a real Unix socket, the agent over the
// in-memory runtime: what the socket, HTTP and JSON add to the agent's
// own work (see BenchmarkEnsureHot in package agent). Compare runs with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./socketapi/server/ > new.txt

// benchEnv is an agent served without the contract check and with a quiet
// log, as the daemon serves it.
func benchEnv(b *testing.B, portRange string) *apitest.Env {
	return apitest.Start(b, apitest.Options{PortRange: portRange, Server: func(c *server.Config) {
		c.Middleware = nil
		c.Logger = slog.New(slog.DiscardHandler)
	}})
}

var benchSpec = socketapi.InstanceSpec{Env: map[string]string{"OPENCLAW_GATEWAY_TOKEN": "bench-token-not-a-secret"}}

// BenchmarkAPIEnsureHot is PUT /v1/instances/{userId} of a running instance
// with an unchanged config, through socketapi.Client (keep-alive).
func BenchmarkAPIEnsureHot(b *testing.B) {
	e := benchEnv(b, "")
	ctx := context.Background()
	if _, err := e.Client.Ensure(ctx, "hot", benchSpec); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		in, err := e.Client.Ensure(ctx, "hot", benchSpec)
		if err != nil || in.Outcome != socketapi.OutcomeReused {
			b.Fatalf("ensure: %v (outcome %q)", err, in.Outcome)
		}
	}
}

// BenchmarkAPIList is GET /v1/instances of 200 and 10,000 registered
// instances (entries without containers), the body read whole but not
// decoded.
func BenchmarkAPIList(b *testing.B) {
	for _, n := range []int{200, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e := benchEnv(b, "20000-29999") // the records' ports: in the agent's range
			now := time.Now().UnixMilli()
			recs := make([]registry.Record, n)
			for i := range recs {
				u := fmt.Sprintf("r%05d", i)
				recs[i] = registry.Record{UserID: u, ContainerName: "zaki-user-" + u, ContainerID: fmt.Sprintf("%064x", i),
					Image: testenv.StubImage, Port: 20000 + i, ConfigHash: fmt.Sprintf("v1:%032x", i), HashVersion: 1,
					State: socketapi.StateMissing, Labels: map[string]string{"plan": "pro"}, CreatedAtMs: now, LastUsedAtMs: now}
			}
			if err := e.Registry.Put(recs...); err != nil {
				b.Fatal(err)
			}
			hc := &http.Client{Transport: socketapi.NewTransport(e.Socket)}
			defer hc.CloseIdleConnections()
			for b.Loop() {
				resp, err := hc.Get("http://zaki-agent/v1/instances")
				if err != nil {
					b.Fatal(err)
				}
				size, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || size < int64(n)*100 {
					b.Fatalf("list: %s, %d bytes, %v", resp.Status, size, err)
				}
			}
		})
	}
}
