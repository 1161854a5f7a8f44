package agent

import (
	"fmt"
	"sync"

	"github.com/zaki-platform/zaki-agent/registry"
)

// portHolds are the ports picked for new users whose records are not
// written yet. A new user's port is reserved by the Put of its first
// record, in the same durable write, after the container was created: so
// a cold create makes one registry write instead of two, and an engine
// that is down (the create fails) leaves the registry untouched. Until
// then the port is held here, so that two creates never pick the same one.
type portHolds struct {
	mu   sync.Mutex
	held map[int]string // port -> user
}

// pick returns userID's port: its reservation when it has one (release is
// then a no-op), else the lowest free port of [lo, hi], held until
// release is called (after the record that reserves it was written, or
// the create failed).
func (h *portHolds) pick(reg *registry.Registry, userID string, lo, hi int) (port int, release func(), err error) {
	if p, ok := reg.Port(userID); ok {
		return p, func() {}, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = make(map[int]string)
	}
	p, ok := reg.FreePort(lo, hi, func(p int) bool { _, held := h.held[p]; return held })
	if !ok {
		return 0, nil, fmt.Errorf("reserve a port for user %q: %w: all ports of %d-%d are reserved, each for its user's life (widen instance.portRange, or place the user on another host)", userID, registry.ErrNoFreePort, lo, hi)
	}
	h.held[p] = userID
	return p, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.held, p)
	}, nil
}
