package registry

import (
	"maps"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// ReservePort returns userID's port, reserving one first when the user has
// none: the lowest port in [lo, hi] that was never reserved by anyone. The
// reservation is durable before ReservePort returns and lasts for the
// user's life: Delete keeps it, and no other user ever gets the port. A
// user's existing port is returned even when it lies outside [lo, hi].
// A full range is an error of class ErrNoFreePort.
func (r *Registry) ReservePort(userID string, lo, hi int) (int, error) {
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return 0, errdefs.Errorf(ErrInvalid, "invalid port range %d-%d", lo, hi)
	}
	if p, ok := r.Port(userID); ok {
		return p, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0, ErrClosed
	}
	cur := r.snap.Load()
	if p, ok := cur.ports[userID]; ok {
		return p, nil
	}
	port := 0
	for p := lo; p <= hi; p++ {
		if _, taken := cur.byPort[p]; !taken {
			port = p
			break
		}
	}
	if port == 0 {
		return 0, errdefs.Errorf(ErrNoFreePort, "reserve a port for %q: all %d ports of %d-%d are reserved", userID, hi-lo+1, lo, hi)
	}
	st := newStage(cur)
	st.reserve(userID, port)
	if err := r.commit(st.done()); err != nil {
		return 0, err
	}
	return port, nil
}

// Port returns userID's reserved port.
func (r *Registry) Port(userID string) (int, bool) {
	p, ok := r.snap.Load().ports[userID]
	return p, ok
}

// Ports returns every reservation, user ID to port.
func (r *Registry) Ports() map[string]int { return maps.Clone(r.snap.Load().ports) }

// claim checks that port is userID's reservation in the stage, reserving
// it when the user has none. port 0 is accepted only from a user without
// a reservation.
func (st *stage) claim(userID string, port int) error {
	if have, ok := st.next.ports[userID]; ok {
		if have != port {
			return errdefs.Errorf(ErrPortConflict, "record %q: port %d, but the user's reserved port is %d", userID, port, have)
		}
		return nil
	}
	if port == 0 {
		return nil
	}
	if other, taken := st.next.byPort[port]; taken {
		return errdefs.Errorf(ErrPortConflict, "record %q: port %d is reserved by user %q", userID, port, other)
	}
	st.reserve(userID, port)
	return nil
}

// MovePort gives userID port in place of its reservation, in one durable
// write: for a port another process holds on the host, which the user
// cannot start on. The old port is no longer anyone's. The user's record,
// if any, moves with it. The user must have a reservation (else
// ErrInvalid); a port another user has reserved is ErrPortConflict.
func (r *Registry) MovePort(userID string, port int) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	if port < 1 || port > 65535 {
		return errdefs.Errorf(ErrInvalid, "move port of %q: port %d out of range", userID, port)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	cur := r.snap.Load()
	old, ok := cur.ports[userID]
	switch {
	case !ok:
		return errdefs.Errorf(ErrInvalid, "move port of %q: the user has no port", userID)
	case old == port:
		return nil
	}
	if other, taken := cur.byPort[port]; taken {
		return errdefs.Errorf(ErrPortConflict, "move port of %q: port %d is reserved by user %q", userID, port, other)
	}
	st := newStage(cur)
	st.copyPorts()
	delete(st.next.byPort, old)
	st.next.ports[userID] = port
	st.next.byPort[port] = userID
	if e, ok := cur.recs[userID]; ok && e.rec.Port != 0 {
		rec := e.record()
		rec.Port = port
		st.put(newEntry(rec))
	}
	return r.commit(st.done())
}
