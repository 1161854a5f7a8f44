package apitest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/server"
)

// Options tune Start.
type Options struct {
	// Runtime is the runtime the agent drives; a fresh runtimetest.Fake
	// when nil (then Env.Fake is it).
	Runtime runtime.Runtime
	// Config changes the config (the agent's and the API's settings) after
	// the test defaults are set.
	Config func(*daemon.Config)
	// Server changes the server's config (peer allow lists, limits).
	Server func(*server.Config)
	// SocketGroup is the socket's group ("" = the process's).
	SocketGroup string
	// Ports is how many host ports the agent may hand out (default 20).
	// With the fake runtime the test answers on them, so that the agent's
	// readiness probe finds a gateway.
	Ports int
	// PortRange, when set, is used as it is and no port is held open (a
	// real engine publishes them).
	PortRange string
}

// Env is an agent served on a temp socket.
type Env struct {
	Agent    *agent.Agent
	Fake     *runtimetest.Fake // nil with another runtime
	Registry *registry.Registry
	Server   *server.Server
	Contract *Contract
	Socket   string
	StateDir string
	Client   *socketapi.Client
	Logs     *SyncBuffer // the agent's and server's log, text
	Metrics  *agent.Metrics
}

// Start builds an agent over a fake runtime (or opts.Runtime), serves it on
// a fresh socket with the contract check on every response, and stops it
// all when t ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	e := &Env{Logs: &SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Short paths: a socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "zapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.Socket = filepath.Join(dir, "run", "agent.sock")
	e.StateDir = filepath.Join(dir, "state")

	cfg := daemon.DefaultConfig()
	cfg.Socket = e.Socket
	cfg.StateDir = e.StateDir
	cfg.Instance.AllowedImages = append(cfg.Instance.AllowedImages, testenv.StubImage)
	cfg.Instance.ReadinessTimeoutSeconds = 10
	cfg.CallTimeoutSeconds = 20
	rt := opts.Runtime
	if rt == nil {
		e.Fake = runtimetest.NewFake()
		rt = e.Fake
		cfg.Runtime = "fake"
	}
	if opts.PortRange != "" {
		cfg.Instance.PortRange = opts.PortRange
	} else {
		n := opts.Ports
		if n == 0 {
			n = 20
		}
		lo := ServePorts(t, n)
		cfg.Instance.PortRange = fmt.Sprintf("%d-%d", lo, lo+n-1)
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}

	e.Metrics = agent.NewMetrics()
	reg, err := registry.Open(cfg.StateDir, registry.Options{Logger: log, ObserveWrite: e.Metrics.ObserveRegistryWrite})
	if err != nil {
		t.Fatal(err)
	}
	e.Registry = reg
	aopts := agent.Options{StateDir: cfg.StateDir, RuntimeName: cfg.Runtime, Logger: log, Metrics: e.Metrics}
	if e.Fake != nil {
		// The stand-in gateways of ServePorts hold the ports: they are free
		// for the agent.
		aopts.PortInUse = func(string, int) bool { return false }
	}
	a, err := agent.New(cfg.Config, rt, reg, aopts)
	if err != nil {
		reg.Close()
		t.Fatal(err)
	}
	e.Agent = a
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-runDone
		reg.Close()
	})
	select {
	case <-a.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready within 30s")
	}

	e.Contract = NewContract(t)
	scfg := server.Config{
		Agent:        daemon.APIAgent(a),
		Logger:       log,
		MaxBodyBytes: cfg.API.MaxBodyBytes,
		AllowUIDs:    cfg.API.AllowUids,
		AllowGIDs:    cfg.API.AllowGids,
		Metrics:      e.Metrics.Gatherer(),
		Middleware:   e.Contract.Middleware,
	}
	if opts.Server != nil {
		opts.Server(&scfg)
	}
	e.Server = server.New(scfg)
	ln, err := server.Listen(e.Socket, opts.SocketGroup)
	if err != nil {
		t.Fatal(err)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- e.Server.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := e.Server.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-serveDone; err != nil {
			t.Errorf("serve: %v", err)
		}
		ln.Close()
	})
	e.Client = &socketapi.Client{Socket: e.Socket}
	return e
}

// ServePorts listens on n consecutive free ports of 127.0.0.1 in a random
// window of 20000-60000 and answers every connection with an HTTP 200, as
// a gateway would, until t ends; it returns the first port.
func ServePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		lo := 20000 + rand.IntN(40000-n)
		lns, ok := listenAll(lo, n)
		if !ok {
			continue
		}
		var wg sync.WaitGroup
		for _, ln := range lns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.SetDeadline(time.Now().Add(time.Second))
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
					c.Close()
				}
			}()
		}
		t.Cleanup(func() {
			for _, ln := range lns {
				ln.Close()
			}
			wg.Wait()
		})
		return lo
	}
	t.Fatalf("no %d free consecutive ports found", n)
	return 0
}

func listenAll(lo, n int) ([]net.Listener, bool) {
	var lns []net.Listener
	for p := lo; p < lo+n; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, false
		}
		lns = append(lns, ln)
	}
	return lns, true
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
