package registry

import (
	"maps"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// MaxUID is the highest uid the registry takes: uids are 32-bit, and
// 2^31-1 keeps clear of (uid_t)-1 and of signed conversions.
const MaxUID = 1<<31 - 1

// ReserveUID returns userID's uid, reserving one first when the user has
// none: the lowest uid in [lo, hi] that no user has and that skip (when
// set) does not refuse, such as a uid with an account on the host. Like a
// port, the reservation is durable before ReserveUID returns and lasts for
// the user's life: Delete keeps it, and no other user ever gets the uid. A
// user's existing uid is returned even when it lies outside [lo, hi]. A
// range with no uid left is an error of class ErrNoFreeUID. skip is
// called with the registry's write lock held.
func (r *Registry) ReserveUID(userID string, lo, hi int, skip func(uid int) bool) (int, error) {
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	if lo < 1 || hi > MaxUID || lo > hi {
		return 0, errdefs.Errorf(ErrInvalid, "invalid uid range %d-%d", lo, hi)
	}
	if u, ok := r.UID(userID); ok {
		return u, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0, ErrClosed
	}
	cur := r.snap.Load()
	if u, ok := cur.uids[userID]; ok {
		return u, nil
	}
	uid := 0
	for u := lo; u <= hi; u++ {
		if _, taken := cur.byUID[u]; !taken && (skip == nil || !skip(u)) {
			uid = u
			break
		}
	}
	if uid == 0 {
		return 0, errdefs.Errorf(ErrNoFreeUID, "reserve a uid for %q: every uid of %d-%d is reserved or has an account on the host", userID, lo, hi)
	}
	st := newStage(cur)
	st.reserveUID(userID, uid)
	if err := r.commit(st.done()); err != nil {
		return 0, err
	}
	return uid, nil
}

// UID returns userID's reserved uid.
func (r *Registry) UID(userID string) (int, bool) {
	u, ok := r.snap.Load().uids[userID]
	return u, ok
}

// UIDs returns every uid reservation, user ID to uid.
func (r *Registry) UIDs() map[string]int { return maps.Clone(r.snap.Load().uids) }

// claimUID checks that uid is userID's reservation in the stage,
// reserving it when the user has none (adoption). uid 0 (the fixed
// instance.user) is always accepted.
func (st *stage) claimUID(userID string, uid int) error {
	if uid == 0 {
		return nil
	}
	if have, ok := st.next.uids[userID]; ok {
		if have != uid {
			return errdefs.Errorf(ErrUIDConflict, "record %q: uid %d, but the user's reserved uid is %d", userID, uid, have)
		}
		return nil
	}
	if other, taken := st.next.byUID[uid]; taken {
		return errdefs.Errorf(ErrUIDConflict, "record %q: uid %d is reserved by user %q", userID, uid, other)
	}
	st.reserveUID(userID, uid)
	return nil
}
