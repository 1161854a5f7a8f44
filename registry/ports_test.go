package registry

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestReservePort(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	for _, tc := range []struct {
		user string
		want int
	}{
		{"alice", 18790}, {"bob", 18791}, {"alice", 18790}, {"carol", 18792},
	} {
		got, err := r.ReservePort(tc.user, 18790, 18792)
		assert.NilError(t, err)
		assert.Equal(t, got, tc.want, "user %s", tc.user)
	}

	// The range is full: an error, and nothing reserved.
	_, err := r.ReservePort("dave", 18790, 18792)
	assert.ErrorIs(t, err, ErrNoFreePort)
	assert.ErrorContains(t, err, `reserve a port for "dave": all 3 ports of 18790-18792 are reserved`)
	_, ok := r.Port("dave")
	assert.Assert(t, !ok)

	// Deleting a record keeps its user's port: no one else ever gets it.
	assert.NilError(t, r.Put(rec("bob", 18791)))
	assert.NilError(t, r.Delete("bob"))
	p, ok := r.Port("bob")
	assert.Assert(t, ok && p == 18791)
	got, err := r.ReservePort("dave", 18790, 18793)
	assert.NilError(t, err)
	assert.Equal(t, got, 18793)

	// An existing port is returned even outside a new range.
	got, err = r.ReservePort("alice", 20000, 20010)
	assert.NilError(t, err)
	assert.Equal(t, got, 18790)

	for _, bad := range [][2]int{{0, 10}, {10, 9}, {65000, 65536}} {
		_, err := r.ReservePort("erin", bad[0], bad[1])
		assert.ErrorIs(t, err, ErrInvalid)
	}
	_, err = r.ReservePort("no/slash", 1, 2)
	assert.ErrorIs(t, err, ErrInvalid)

	// Reservations are durable.
	assert.NilError(t, r.Close())
	r = openT(t, dir, Options{})
	assert.DeepEqual(t, r.Ports(), map[string]int{"alice": 18790, "bob": 18791, "carol": 18792, "dave": 18793})
}

func TestPutChecksPorts(t *testing.T) {
	r := openT(t, "", Options{})
	_, err := r.ReservePort("alice", 18790, 18799)
	assert.NilError(t, err)

	for _, tc := range []struct {
		name    string
		recs    []Record
		wantErr string
	}{
		{name: "not the user's reservation", recs: []Record{rec("alice", 18795)},
			wantErr: `record "alice": port 18795, but the user's reserved port is 18790`},
		{name: "no port, but the user has one", recs: []Record{rec("alice", 0)},
			wantErr: `record "alice": port 0, but the user's reserved port is 18790`},
		{name: "adopting another user's port", recs: []Record{rec("bob", 18790)},
			wantErr: `record "bob": port 18790 is reserved by user "alice"`},
		{name: "two users claiming one port in one put", recs: []Record{rec("bob", 18800), rec("carol", 18800)},
			wantErr: `record "carol": port 18800 is reserved by user "bob"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Put(tc.recs...)
			assert.ErrorIs(t, err, ErrPortConflict)
			assert.Error(t, err, tc.wantErr)
			// Nothing of a failed put stays: not the records, not the ports.
			assert.Equal(t, r.Len(), 0)
			assert.DeepEqual(t, r.Ports(), map[string]int{"alice": 18790})
		})
	}

	// Adoption: a user without a reservation gets the record's port.
	assert.NilError(t, r.Put(rec("alice", 18790), rec("bob", 18800), rec("carol", 0)))
	assert.DeepEqual(t, r.Ports(), map[string]int{"alice": 18790, "bob": 18800})
	got, err := r.ReservePort("dave", 18800, 18801)
	assert.NilError(t, err)
	assert.Equal(t, got, 18801, "an adopted port is never handed out again")
}

func TestMovePort(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	a := rec("alice", 18790)
	a.Renew = true
	assert.NilError(t, r.Put(a, rec("bob", 18791)))
	_, err := r.ReservePort("carol", 18792, 18792)
	assert.NilError(t, err)

	assert.NilError(t, r.MovePort("alice", 18795))
	p, _ := r.Port("alice")
	assert.Equal(t, p, 18795)
	got, _ := r.Get("alice")
	assert.Equal(t, got.Port, 18795, "the record moves with the reservation")
	assert.Assert(t, got.Renew)
	// The old port is nobody's now.
	free, ok := r.FreePort(18790, 18799, nil)
	assert.Assert(t, ok && free == 18790)

	assert.ErrorIs(t, r.MovePort("alice", 18791), ErrPortConflict)
	assert.ErrorIs(t, r.MovePort("nobody", 18796), ErrInvalid)
	assert.ErrorIs(t, r.MovePort("alice", 0), ErrInvalid)
	assert.NilError(t, r.MovePort("carol", 18790)) // a reservation without a record

	// Durable, and the file holds together.
	assert.NilError(t, r.Close())
	r = openT(t, dir, Options{})
	assert.DeepEqual(t, r.Ports(), map[string]int{"alice": 18795, "bob": 18791, "carol": 18790})
	got, _ = r.Get("alice")
	assert.Equal(t, got.Port, 18795)
	assert.Assert(t, got.Renew, "renew lost in the file")
}
