package runtimetest

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Launch starts the real zaki-runtime-<name> binary (testenv.Binary)
// through the agent's supervisor, its warnings logged to t, with env added
// to its environment, and closes it when t ends.
func Launch(t testing.TB, name string, env ...string) *runtime.Plugin {
	t.Helper()
	bin := testenv.Binary(t, "zaki-runtime-"+name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := runtime.Launch(ctx, runtime.PluginConfig{
		Name:   name,
		Path:   bin,
		Env:    env,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("launch %s: %v", bin, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// LocalRegistry serves an in-process registry (go-containerregistry) on
// 127.0.0.1 until t ends, and returns its host:port, for Config.PullRef.
// It speaks plain HTTP: docker trusts 127.0.0.0/8 as an insecure registry
// by default, the podman plugin pulls from a loopback registry with
// --tls-verify=false.
func LocalRegistry(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}
