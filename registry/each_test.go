package registry

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestEach(t *testing.T) {
	r := openT(t, "", Options{})
	assert.NilError(t, r.Put(rec("carol", 0), rec("alice", 0), rec("bob", 0)))
	r.Touch("bob", 1_800_000_000_000)
	var seen []string
	r.Each(func(x Record) bool {
		seen = append(seen, x.UserID)
		if x.UserID == "bob" {
			assert.Equal(t, x.LastUsedAtMs, int64(1_800_000_000_000))
		}
		return true
	})
	assert.DeepEqual(t, seen, []string{"alice", "bob", "carol"})
	seen = nil
	r.Each(func(x Record) bool { seen = append(seen, x.UserID); return len(seen) < 2 })
	assert.DeepEqual(t, seen, []string{"alice", "bob"})
}

func TestFreePort(t *testing.T) {
	r := openT(t, "", Options{})
	_, err := r.ReservePort("alice", 18790, 18799)
	assert.NilError(t, err)
	p, ok := r.FreePort(18790, 18799, nil)
	assert.Assert(t, ok)
	assert.Equal(t, p, 18791)
	p, ok = r.FreePort(18790, 18799, func(p int) bool { return p < 18795 })
	assert.Assert(t, ok)
	assert.Equal(t, p, 18795)
	_, ok = r.FreePort(18790, 18790, nil)
	assert.Assert(t, !ok)

	// FreePort reserves nothing; the Put that carries the port does, and a
	// second user claiming it then fails.
	assert.NilError(t, r.Put(rec("bob", 18791)))
	err = r.Put(rec("carol", 18791))
	assert.ErrorIs(t, err, ErrPortConflict)
	p, _ = r.FreePort(18790, 18799, nil)
	assert.Equal(t, p, 18792)
}
