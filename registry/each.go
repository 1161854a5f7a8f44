package registry

// Each calls fn with every record, sorted by user ID, from one snapshot,
// until fn returns false. It is List without the copies, for readers of
// every record on a hot path (the agent's list of 10,000 instances): the
// records' Labels maps are the registry's own, so fn and whatever it hands
// them to must only read them, never change them.
func (r *Registry) Each(fn func(Record) bool) {
	for _, e := range r.snap.Load().list {
		rec := e.rec
		rec.LastUsedAtMs = e.lastUsed.Load()
		if !fn(rec) {
			return
		}
	}
}

// FreePort returns the lowest port in [lo, hi] that no user has reserved
// and that skip (when not nil) does not refuse; ok is false when there is
// none. It reserves nothing: a Put of a record carrying the port reserves
// it for the record's user in that same durable write (ErrPortConflict if
// another user took it meanwhile), which spares a cold create the write of
// ReservePort.
func (r *Registry) FreePort(lo, hi int, skip func(port int) bool) (port int, ok bool) {
	byPort := r.snap.Load().byPort
	for p := max(lo, 1); p <= min(hi, 65535); p++ {
		if _, taken := byPort[p]; !taken && (skip == nil || !skip(p)) {
			return p, true
		}
	}
	return 0, false
}
