package server

import (
	"github.com/zaki-platform/zaki-agent/internal/slots"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// streamSlots bounds the streams callers hold at once (event subscribers,
// log followers): in all, and per user when perUser > 0. A stream past a
// bound is refused with 429, never queued: each one held costs the agent
// a subscription or a whole `docker logs -f` process.
type streamSlots struct {
	what           string // "event streams", "log followers"
	total, perUser int
	held           slots.Counter
}

func newStreamSlots(what string, total, perUser int) *streamSlots {
	return &streamSlots{what: what, total: total, perUser: perUser}
}

// acquire takes a slot for user ("" when the stream is no user's), or
// answers ErrTooManyRequests naming the bound that was hit.
func (s *streamSlots) acquire(user string) (release func(), err error) {
	release, full, n := s.held.Take(user, s.total, s.perUser)
	switch full {
	case slots.PerKey:
		return nil, socketapi.Errorf(socketapi.ErrTooManyRequests, "%d %s of user %q are open, the most one user may have: close one", n, s.what, user)
	case slots.Total:
		return nil, socketapi.Errorf(socketapi.ErrTooManyRequests, "%d %s are open, the most the agent serves at once: close one, or try again later", n, s.what)
	}
	return release, nil
}
