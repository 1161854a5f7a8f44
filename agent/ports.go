package agent

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

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
// then a no-op), else the lowest port of [lo, hi] that no user has, that
// usable accepts (not reserved by the config, not held by another
// process), held until release is called (after the record that reserves
// it was written, or the create failed).
func (h *portHolds) pick(reg *registry.Registry, userID string, lo, hi int, usable func(int) bool) (port int, release func(), err error) {
	if p, ok := reg.Port(userID); ok {
		return p, func() {}, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.free(reg, lo, hi, usable)
	if !ok {
		return 0, nil, fmt.Errorf("reserve a port for user %q: %w: every port of %d-%d is reserved, each for its user's life, or in use on the host (widen instance.portRange, or place the user on another host)", userID, registry.ErrNoFreePort, lo, hi)
	}
	if h.held == nil {
		h.held = make(map[int]string)
	}
	h.held[p] = userID
	return p, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.held, p)
	}, nil
}

// free returns the lowest port of [lo, hi] that no user has, none holds
// and usable accepts. Called with h.mu held.
func (h *portHolds) free(reg *registry.Registry, lo, hi int, usable func(int) bool) (int, bool) {
	return reg.FreePort(lo, hi, func(p int) bool {
		_, held := h.held[p]
		return held || !usable(p)
	})
}

// move gives userID a new port in place of its reservation old, durably
// (the registry write is done when it returns): the lowest that free
// would pick, old excluded.
func (h *portHolds) move(reg *registry.Registry, userID string, old, lo, hi int, usable func(int) bool) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.free(reg, lo, hi, func(p int) bool { return p != old && usable(p) })
	if !ok {
		return 0, fmt.Errorf("move user %q off port %d: %w: every other port of %d-%d is reserved or in use on the host", userID, old, registry.ErrNoFreePort, lo, hi)
	}
	if err := reg.MovePort(userID, p); err != nil {
		return 0, fmt.Errorf("move user %q off port %d: %w", userID, old, err)
	}
	return p, nil
}

// usablePort returns the test a port must pass to be handed out now: not
// in instance.reservedPorts, and free on the host (see portInUse).
func (a *Agent) usablePort(ic *InstanceConfig) func(int) bool {
	reserved, _ := parsePortList(ic.ReservedPorts) // validated with the config
	addr, inUse := ic.BindAddress, a.portInUse
	if a.cluster != nil {
		// The ports of this host say nothing of the nodes': the engine has
		// the last word when the container starts (see movePort).
		return func(p int) bool { return !reserved.has(p) }
	}
	return func(p int) bool { return !reserved.has(p) && !inUse(addr, p) }
}

// portInUse reports whether another process holds TCP port p on addr:
// binding it fails with EADDRINUSE. Any other failure (an address that is
// not the host's, say) is no evidence either way: the port counts as free,
// and the engine has the last word when the container starts.
func portInUse(addr string, p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	ln.Close()
	return false
}

// portRanges is a list of inclusive port ranges.
type portRanges [][2]int

func (r portRanges) has(p int) bool {
	for _, x := range r {
		if p >= x[0] && p <= x[1] {
			return true
		}
	}
	return false
}

// parsePortList parses ports and ranges: ["18790", "19001-19100"].
func parsePortList(list []string) (portRanges, error) {
	var out portRanges
	for _, s := range list {
		a, b, isRange := strings.Cut(s, "-")
		if !isRange {
			b = a
		}
		lo, err1 := strconv.Atoi(strings.TrimSpace(a))
		hi, err2 := strconv.Atoi(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
			return nil, fmt.Errorf("%q: want a port or lo-hi within 1-65535", s)
		}
		out = append(out, [2]int{lo, hi})
	}
	return out, nil
}

// portTakenRE is what the engines say when a container's host port is
// held by someone else at start: docker's "port is already allocated"
// (another container) and "address already in use" (another process,
// through docker's proxy or podman's). The runtime contract has no class
// for it, so the agent reads the engine's words, which cross the plugin
// boundary in the error's text.
var portTakenRE = regexp.MustCompile(`(?i)port is already allocated|address already in use`)

// portTaken reports whether a start failed because its host port is taken.
func portTaken(err error) bool { return err != nil && portTakenRE.MatchString(err.Error()) }

// claimFor reserves a port for userID, which has none yet, by writing rec
// (the user's record, with no container) carrying it: want when it is
// free (no user has it, none holds it, usable accepts it), else the
// lowest free port of [lo, hi]. It returns the port, durably the user's.
func (h *portHolds) claimFor(reg *registry.Registry, rec registry.Record, want, lo, hi int, usable func(int) bool) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.choose(reg, want, lo, hi, usable)
	if !ok {
		return 0, fmt.Errorf("reserve a port for user %q: %w: every port of %d-%d is reserved or in use on the host (widen instance.portRange)", rec.UserID, registry.ErrNoFreePort, lo, hi)
	}
	rec.Port = p
	if err := reg.Put(rec); err != nil {
		return 0, fmt.Errorf("record user %q on port %d: %w", rec.UserID, p, err)
	}
	return p, nil
}

// preview returns the port claimFor would give now, reserving nothing.
func (h *portHolds) preview(reg *registry.Registry, want, lo, hi int, usable func(int) bool) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.choose(reg, want, lo, hi, usable)
}

// choose is want when it is a free port (outside [lo, hi] too: a user
// keeps the port it had), else the lowest free port of [lo, hi]. Called
// with h.mu held.
func (h *portHolds) choose(reg *registry.Registry, want, lo, hi int, usable func(int) bool) (int, bool) {
	if want >= 1025 && want <= 65535 {
		if p, ok := h.free(reg, want, want, usable); ok {
			return p, true
		}
	}
	return h.free(reg, lo, hi, usable)
}
