// Command zaki-runtime-fake is a runtime plugin serving the in-memory fake
// (runtimetest.NewFake) through runtime.Serve: the real go-plugin process
// boundary with no engine behind it, for the tests of the plugin glue and
// of the agent. Run by hand it only says that it is a plugin.
//
// Knobs, from the environment:
//
//	ZAKI_FAKE_DELAY=Method=duration,...  every call of Method waits that long
//	                                     first (giving up when its ctx ends)
//	ZAKI_FAKE_IMAGES=ref,...             images the fake holds, instead of its defaults
//	ZAKI_FAKE_PULLABLE=ref,...           images it can pull, instead of its defaults
//	ZAKI_FAKE_LOG_LEVEL=debug|info|...   its log level (default debug)
//	ZAKI_FAKE_NODES=name=addr,...        cluster mode (runtimetest.NewFakeCluster):
//	                                     these nodes, ready; it then serves
//	                                     runtime.Cluster (Unimplemented without)
//	ZAKI_FAKE_NODES_DOWN=name,...        nodes of ZAKI_FAKE_NODES that start down
//	ZAKI_FAKE_UNENFORCED=key,...         Info.Unenforced, instead of the default
//	                                     (none; in cluster mode, the swarm's)
//
// At start it logs "fake runtime serving" (info) with the sorted names
// (never the values) of its environment variables and their count, so that
// a test can see what environment the agent gave it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "zaki-runtime-fake: %v\n", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("no arguments expected, got %q", args)
	}
	var level slog.Level
	if s := os.Getenv("ZAKI_FAKE_LOG_LEVEL"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("ZAKI_FAKE_LOG_LEVEL: %w", err)
		}
	} else {
		level = slog.LevelDebug
	}
	// The log handler holds the stderr the process started with: go-plugin
	// replaces os.Stderr once it serves.
	log := slog.New(runtime.NewLogHandler(os.Stderr, level))

	var opts []runtimetest.FakeOption
	if refs := list(os.Getenv("ZAKI_FAKE_IMAGES")); len(refs) > 0 {
		opts = append(opts, runtimetest.WithImages(refs...))
	}
	if refs := list(os.Getenv("ZAKI_FAKE_PULLABLE")); len(refs) > 0 {
		opts = append(opts, runtimetest.WithPullable(refs...))
	}
	if keys := list(os.Getenv("ZAKI_FAKE_UNENFORCED")); len(keys) > 0 {
		opts = append(opts, runtimetest.WithUnenforced(keys...))
	}
	var (
		fake  *runtimetest.Fake
		serve runtime.Runtime
	)
	if kvs := list(os.Getenv("ZAKI_FAKE_NODES")); len(kvs) == 0 {
		fake = runtimetest.NewFake(opts...)
		serve = fake
	} else {
		down := list(os.Getenv("ZAKI_FAKE_NODES_DOWN"))
		var nodes []runtime.Node
		for _, kv := range kvs {
			name, addr, ok := strings.Cut(kv, "=")
			if !ok || name == "" || addr == "" {
				return fmt.Errorf("ZAKI_FAKE_NODES: want name=addr, got %q", kv)
			}
			nodes = append(nodes, runtime.Node{Name: name, Addr: addr, Ready: !slices.Contains(down, name)})
		}
		cluster := runtimetest.NewFakeCluster(nodes, opts...)
		fake, serve = cluster.Fake, cluster
	}
	for _, kv := range list(os.Getenv("ZAKI_FAKE_DELAY")) {
		method, ds, _ := strings.Cut(kv, "=")
		d, err := time.ParseDuration(ds)
		if err != nil || !(slices.Contains(runtimetest.Methods, method) || slices.Contains(runtimetest.ClusterMethods, method)) {
			return fmt.Errorf("ZAKI_FAKE_DELAY: want Method=duration, got %q", kv)
		}
		fake.Delay(method, d)
		log.Debug("fake runtime: calls delayed", "method", method, "delay", d)
	}

	names := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	slices.Sort(names)
	log.Info("fake runtime serving", "env_names", strings.Join(names, ","), "env_count", len(names))

	runtime.Serve(serve)
	return nil
}

// list splits a comma-separated list, dropping empty items.
func list(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
