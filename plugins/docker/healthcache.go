package docker

import (
	"slices"
	"sync"
	"time"
)

// healthCacheTTL is how long Create trusts an image's HEALTHCHECK test
// read by an earlier Create, instead of running `docker image inspect`
// again: that is a whole CLI run on every cold create. An image changes
// under its tag only by a pull (which forgets it here) or a retag by hand,
// whose new HEALTHCHECK then shows within the TTL.
const healthCacheTTL = 30 * time.Second

// healthCache remembers the HEALTHCHECK test of images by reference. The
// zero value is ready.
type healthCache struct {
	mu sync.Mutex
	m  map[string]healthEntry
}

type healthEntry struct {
	test []string
	at   time.Time
}

func (c *healthCache) get(ref string, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[ref]
	if !ok || now.Sub(e.at) > healthCacheTTL {
		return nil, false
	}
	return slices.Clone(e.test), true
}

func (c *healthCache) put(ref string, test []string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]healthEntry)
	}
	c.m[ref] = healthEntry{test: slices.Clone(test), at: now}
}

func (c *healthCache) forget(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, ref)
}
