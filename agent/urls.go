package agent

import (
	"strconv"
	"sync/atomic"
)

// urlCache keeps the URL of each port of the range, built once: a list of
// 10,000 instances built each one anew, two allocations an instance and
// most of the list's garbage. It is replaced whole when the bind address
// or the range changes (a reload); readers need no lock.
type urlCache struct {
	bind, portRange string // the configuration it was built for
	host            string
	lo              int
	urls            []atomic.Pointer[string] // port lo+i at i, nil until asked
}

// urlCache returns the cache of the current configuration.
func (a *Agent) urlCache() *urlCache {
	inst := &a.conf().Instance
	if c := a.urls.Load(); c != nil && c.bind == inst.BindAddress && c.portRange == inst.PortRange {
		return c
	}
	c := &urlCache{bind: inst.BindAddress, portRange: inst.PortRange, host: urlHost(inst.BindAddress)}
	if lo, hi, err := inst.Ports(); err == nil {
		c.lo, c.urls = lo, make([]atomic.Pointer[string], hi-lo+1)
	}
	a.urls.Store(c) // two at once each build one: either will do
	return c
}

// url returns the URL of port (one outside the range is built, not kept).
func (c *urlCache) url(port int) string {
	i := port - c.lo
	if i < 0 || i >= len(c.urls) {
		return buildURL(c.host, port)
	}
	if p := c.urls[i].Load(); p != nil {
		return *p
	}
	s := buildURL(c.host, port)
	c.urls[i].Store(&s)
	return s
}

func buildURL(host string, port int) string {
	return "http://" + host + ":" + strconv.Itoa(port)
}

// urlHost is addr as the host of a URL (an IPv6 address in brackets).
func urlHost(addr string) string {
	for _, r := range addr {
		if r == ':' {
			return "[" + addr + "]"
		}
	}
	return addr
}
