// Package slots counts what callers hold at once, in all and per key (a
// user), for the bounds that answer 429 rather than queue: execs in the
// agent, event streams and log followers in the API server.
package slots

import "sync"

// Full tells which bound refused a Take.
type Full int

const (
	// None: the slot was taken.
	None Full = iota
	// PerKey: the key holds its most already.
	PerKey
	// Total: all keys together hold the most already.
	Total
)

// Counter counts the slots held, in all and per key. The zero value is
// ready.
type Counter struct {
	mu    sync.Mutex
	held  int
	byKey map[string]int
}

// Take holds a slot for key unless key holds perKey already (perKey 0 or
// key "": no bound per key) or all hold total; release gives it back (once,
// however often it is called).
func (c *Counter) Take(key string, total, perKey int) (release func(), full Full, heldNow int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]int{}
	}
	if key != "" && perKey > 0 && c.byKey[key] >= perKey {
		return nil, PerKey, c.byKey[key]
	}
	if c.held >= total {
		return nil, Total, c.held
	}
	c.held++
	if key != "" {
		c.byKey[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.held--
			if key != "" {
				if c.byKey[key]--; c.byKey[key] <= 0 {
					delete(c.byKey, key)
				}
			}
		})
	}, None, 0
}

// Held returns the slots held and the keys holding some.
func (c *Counter) Held() (n, keys int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held, len(c.byKey)
}
