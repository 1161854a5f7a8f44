package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// PluginName is the name under which a runtime plugin serves Runtime in
// go-plugin's plugin set.
const PluginName = "runtime"

// Handshake is the go-plugin handshake between the agent and a runtime
// plugin. The magic cookie only tells a plugin binary run by hand that it
// is a plugin; it is not a secret. Bump ProtocolVersion with any
// incompatible change to runtime.proto.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ZAKI_RUNTIME_PLUGIN",
	MagicCookieValue: "5f1d6c0e-zaki-runtime-v1",
}

// GRPCPlugin is the go-plugin plugin of a Runtime, gRPC only: on the
// plugin side it serves Impl, on the agent side it dispenses a Runtime that
// calls the plugin.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Runtime // plugin side only
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the Runtime service of p.Impl on s.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterRuntimeServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a Runtime that calls the plugin over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{conn: c, client: pb.NewRuntimeClient(c)}, nil
}

// PluginSet returns the go-plugin plugin set of a runtime plugin: impl on
// the plugin side, nil on the agent side.
func PluginSet(impl Runtime) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Serve serves impl as a runtime plugin over gRPC and never returns; it is
// what the main of a zaki-runtime-<name> binary calls last. Run by hand
// (without the agent's handshake) it says so and exits 1.
//
// It serves over mutual TLS only: with the keys the agent hands it on the
// fd that ZAKI_PLUGIN_TLS_FD names (plugin_tls.go), else with go-plugin's
// AutoMTLS when an older agent asks for it; never in the clear.
//
// The plugin's own logs belong on the original standard error in hclog's
// JSON line format (NewLogHandler(os.Stderr, ...), made before Serve): the
// agent reads them from there into its own logger. Serve ignores SIGINT, as
// go-plugin's server does, so that a Ctrl-C meant for the agent leaves the
// plugin to the agent, and exits when the agent that started it is gone.
func Serve(impl Runtime) {
	go exitWithParent(os.Getppid(), time.Second)
	tlsConfig, err := readLaunchKeys()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runtime plugin: %v\n", err)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
		TLSProvider:     func() (*tls.Config, error) { return serverTLS(tlsConfig) },
		// go-plugin's own logs: JSON on the original stderr, at debug and
		// above, which the agent files at debug level.
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclog.Debug,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
}

// exitWithParent ends the plugin process when its parent, the agent, is
// gone (the plugin is reparented): a plugin whose agent was killed must not
// linger. It checks every interval, for the life of the process.
func exitWithParent(ppid int, interval time.Duration) {
	if ppid <= 1 {
		return // started by init, or by a test harness: nothing to watch
	}
	for range time.Tick(interval) {
		if os.Getppid() != ppid {
			os.Exit(0)
		}
	}
}

// serverTLS is the plugin's TLS config for go-plugin: the launch keys'
// (cfg), else nil, which makes go-plugin answer an older agent's AutoMTLS
// (PLUGIN_CLIENT_CERT), else an error: no agent of ours launches a plugin
// without one or the other, and the plugin never serves in the clear.
func serverTLS(cfg *tls.Config) (*tls.Config, error) {
	switch {
	case cfg != nil:
		return cfg, nil
	case os.Getenv("PLUGIN_CLIENT_CERT") != "":
		return nil, nil
	}
	return nil, errors.New("no TLS keys from the agent (" + launchKeysEnv + " or go-plugin's AutoMTLS): not serving in the clear")
}
