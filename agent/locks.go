package agent

import "sync"

// userLocks serialises the calls for one user while different users
// proceed in parallel. Entries live only while someone holds or waits for
// them, so the map stays as small as the work in flight.
type userLocks struct {
	mu sync.Mutex
	m  map[string]*userLock
}

type userLock struct {
	mu   sync.Mutex
	refs int
}

func (l *userLocks) ref(id string) *userLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*userLock)
	}
	ul := l.m[id]
	if ul == nil {
		ul = &userLock{}
		l.m[id] = ul
	}
	ul.refs++
	return ul
}

func (l *userLocks) unref(id string, ul *userLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ul.refs--
	if ul.refs == 0 {
		delete(l.m, id)
	}
}

// lock blocks until id's lock is held and returns its unlock.
func (l *userLocks) lock(id string) (unlock func()) {
	ul := l.ref(id)
	ul.mu.Lock()
	return func() {
		ul.mu.Unlock()
		l.unref(id, ul)
	}
}

// tryLock takes id's lock when it is free.
func (l *userLocks) tryLock(id string) (unlock func(), ok bool) {
	ul := l.ref(id)
	if !ul.mu.TryLock() {
		l.unref(id, ul)
		return nil, false
	}
	return func() {
		ul.mu.Unlock()
		l.unref(id, ul)
	}, true
}

// heldLocks are the user locks a pass over many users (a resync, a
// prune) took without waiting, released together when it ends.
type heldLocks struct {
	locks   *userLocks
	unlocks []func()
}

// try takes userID's lock unless another call holds it.
func (h *heldLocks) try(userID string) bool {
	u, ok := h.locks.tryLock(userID)
	if ok {
		h.unlocks = append(h.unlocks, u)
	}
	return ok
}

func (h *heldLocks) release() {
	for _, u := range h.unlocks {
		u()
	}
}
