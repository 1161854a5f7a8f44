package runtime

import (
	"crypto/tls"
	"net"
)

// WithAutoMTLS returns cfg with go-plugin's AutoMTLS instead of the launch
// keys: the old path, for the launch benchmark and the fallback's test.
func WithAutoMTLS(cfg PluginConfig) PluginConfig {
	cfg.autoMTLS = true
	return cfg
}

// NewLaunchKeysPayload is what a plugin would read on its fd from a launch
// of its own: keys no agent holds.
func NewLaunchKeysPayload() ([]byte, error) {
	k, err := newLaunchKeys()
	if err != nil {
		return nil, err
	}
	return k.payload, nil
}

// LaunchTLS returns, for the current plugin process, the agent's TLS
// config, the inode of the pipe that took the plugin its keys, and the
// address of the plugin's socket.
func (p *Plugin) LaunchTLS() (*tls.Config, uint64, net.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.cur
	if g == nil {
		return nil, 0, nil
	}
	var addr net.Addr
	if rc := g.client.ReattachConfig(); rc != nil {
		addr = rc.Addr
	}
	return g.clientTLS, g.keysPipe, addr
}
