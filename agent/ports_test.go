package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// freeRange returns a range of n ports on loopback, none in use now.
func freeRange(t *testing.T, n int) (lo int) {
	t.Helper()
	for range 50 {
		// Below the kernel's ephemeral ports (32768 on) and the other
		// tests' port windows (20000 on): no outgoing connection or
		// published port takes one between the check and the test.
		lo = 10000 + rand.IntN(9000)
		ok := true
		for p := lo; p < lo+n; p++ {
			if portInUse("127.0.0.1", p) {
				ok = false
				break
			}
		}
		if ok {
			return lo
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestPortsSkipReservedAndInUse(t *testing.T) {
	lo := freeRange(t, 10)
	e := newFakeEnv(t, func(c *Config) {
		c.Instance.PortRange = fmt.Sprintf("%d-%d", lo, lo+9)
		c.Instance.ReservedPorts = []string{fmt.Sprint(lo), fmt.Sprintf("%d-%d", lo+2, lo+3)}
	})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+1))
	assert.NilError(t, err)
	defer ln.Close()
	assert.Equal(t, e.ensure("u1", InstanceSpec{}).Port, lo+4)
	assert.Equal(t, e.ensure("u2", InstanceSpec{}).Port, lo+5)
}

func TestPortTakenAtStartMovesUser(t *testing.T) {
	lo := freeRange(t, 10)
	e := newFakeEnv(t, func(c *Config) { c.Instance.PortRange = fmt.Sprintf("%d-%d", lo, lo+9) })
	ctx := context.Background()
	first := e.ensure("dana", InstanceSpec{})
	assert.Equal(t, first.Port, lo)
	_, err := e.a.Stop(ctx, "dana")
	assert.NilError(t, err)

	sub := e.a.Subscribe(64)
	defer sub.Close()
	taken := errdefs.Errorf(errdefs.ErrUnavailable, "driver failed programming external connectivity on endpoint zaki-user-dana: Bind for 127.0.0.1:%d failed: port is already allocated", lo)
	e.fake.FailNext("Start", 1, errdefs.Errorf(errdefs.ErrInvalidArgument, "%v", taken))
	in := e.ensure("dana", InstanceSpec{})
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	assert.Equal(t, in.Port, lo+1)
	p, _ := e.reg.Port("dana")
	assert.Equal(t, p, lo+1)
	rec, _ := e.reg.Get("dana")
	assert.Equal(t, rec.Port, lo+1)
	for {
		select {
		case ev := <-sub.C:
			if ev.Type != EventPortChanged {
				continue
			}
			assert.Equal(t, ev.UserID, "dana")
			assert.Equal(t, ev.OldPort, lo)
			assert.Equal(t, ev.Port, lo+1)
			// The old port is nobody's: a new user may have it.
			assert.Equal(t, e.ensure("eve", InstanceSpec{}).Port, lo)
			return
		case <-time.After(5 * time.Second):
			t.Fatal("no port_changed event")
		}
	}
}

func TestPortTakenTwiceFails(t *testing.T) {
	lo := freeRange(t, 10)
	e := newFakeEnv(t, func(c *Config) { c.Instance.PortRange = fmt.Sprintf("%d-%d", lo, lo+9) })
	taken := errdefs.Errorf(errdefs.ErrInvalidArgument, "listen tcp4 127.0.0.1:%d: bind: address already in use", lo)
	e.fake.FailNext("Start", 2, taken)
	_, err := e.a.Ensure(context.Background(), "fay", InstanceSpec{}, EnsureOptions{})
	assert.ErrorContains(t, err, "address already in use")
	p, ok := e.reg.Port("fay")
	assert.Assert(t, ok)
	assert.Equal(t, p, lo+1, "moved once, then gave up")
}
