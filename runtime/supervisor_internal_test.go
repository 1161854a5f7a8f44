package runtime

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestPluginEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "LISTEN_PID=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=agent.sock:x",
		"NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=100", "WATCHDOG_PID=1",
		"INVOCATION_ID=0123abcd", "ZAKI_PLUGIN_TLS_FD=3", "PLUGIN_CLIENT_CERT=x", "LISTEN_FDS_EXTRA=kept", "HOME=/root", "EMPTY=",
	}
	got := pluginEnv(environ, []string{"ZAKI_X=1", "LISTEN_PID=9"})
	// The agent's own systemd variables go, and what says where a plugin's
	// TLS keys are (a launch sets it); Env is the caller's word.
	assert.DeepEqual(t, got, []string{"PATH=/usr/bin", "LISTEN_FDS_EXTRA=kept", "HOME=/root", "EMPTY=", "ZAKI_X=1", "LISTEN_PID=9"})
}
