package server

import (
	"sync"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// streamSlots bounds the streams callers hold at once (event subscribers,
// log followers): in all, and per user when perUser > 0. A stream past a
// bound is refused with 429, never queued: each one held costs the agent
// a subscription or a whole `docker logs -f` process.
type streamSlots struct {
	what           string // "event streams", "log followers"
	total, perUser int

	mu     sync.Mutex
	held   int
	byUser map[string]int
}

func newStreamSlots(what string, total, perUser int) *streamSlots {
	return &streamSlots{what: what, total: total, perUser: perUser, byUser: map[string]int{}}
}

// acquire takes a slot for user ("" when the stream is no user's), or
// answers ErrTooManyRequests naming the bound that was hit.
func (s *streamSlots) acquire(user string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held >= s.total {
		return nil, socketapi.Errorf(socketapi.ErrTooManyRequests, "%d %s are open, the most the agent serves at once: close one, or try again later", s.held, s.what)
	}
	if user != "" && s.perUser > 0 && s.byUser[user] >= s.perUser {
		return nil, socketapi.Errorf(socketapi.ErrTooManyRequests, "%d %s of user %q are open, the most one user may have: close one", s.byUser[user], s.what, user)
	}
	s.held++
	if user != "" {
		s.byUser[user]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.held--
			if user != "" {
				if s.byUser[user]--; s.byUser[user] <= 0 {
					delete(s.byUser, user)
				}
			}
		})
	}, nil
}
