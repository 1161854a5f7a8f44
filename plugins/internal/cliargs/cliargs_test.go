package cliargs

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/runtime"
)

func TestPublish(t *testing.T) {
	for _, tc := range []struct {
		in   runtime.PortBinding
		want string
	}{
		{runtime.PortBinding{HostIP: "127.0.0.1", HostPort: 1, ContainerPort: 2}, "127.0.0.1:1:2/tcp"},
		{runtime.PortBinding{HostIP: "::1", HostPort: 1, ContainerPort: 2, Protocol: "udp"}, "[::1]:1:2/udp"},
	} {
		assert.Equal(t, Publish(tc.in), tc.want)
	}
}

func TestLabelFilters(t *testing.T) {
	got, err := LabelFilters(map[string]string{"b": "", "a": "1=2"})
	assert.NilError(t, err)
	assert.DeepEqual(t, got, []string{"--filter=label=a=1=2", "--filter=label=b"})
	for _, bad := range []map[string]string{{"": "x"}, {"a=b": "x"}, {"a": "x\ny"}} {
		_, err := LabelFilters(bad)
		assert.Equal(t, runtime.Class(err), runtime.ErrInvalidArgument, "%v", bad)
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[time.Duration]int{0: 0, -time.Second: 0, time.Millisecond: 1, time.Second: 1, 2500 * time.Millisecond: 3} {
		assert.Equal(t, Seconds(in), want, "%v", in)
	}
}

// TestCreateFlagsOptionsOnly: every element is one --option, whatever the
// caller's values hold, and the health flags land before --stop-timeout.
func TestCreateFlagsOptionsOnly(t *testing.T) {
	spec := runtime.ContainerSpec{
		Name: "n", Image: "i", Labels: map[string]string{"odd": "-v=/:/host"},
		Security:    runtime.Security{Tmpfs: []runtime.Tmpfs{{Path: "/tmp"}}},
		StopTimeout: time.Second,
	}
	got := CreateFlags(spec, []string{"--health-x"})
	assert.DeepEqual(t, got, []string{"--pull=never", "--name=n", "--label=odd=-v=/:/host", "--tmpfs=/tmp", "--health-x", "--stop-timeout=1"})
}
