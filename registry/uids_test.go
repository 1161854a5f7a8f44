package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestReserveUID(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	hostAccount := func(u int) bool { return u == 200001 } // an account on the host
	for _, tc := range []struct {
		user string
		want int
	}{
		{"alice", 200000}, {"bob", 200002}, {"alice", 200000}, {"carol", 200003},
	} {
		got, err := r.ReserveUID(tc.user, 200000, 200003, hostAccount)
		assert.NilError(t, err)
		assert.Equal(t, got, tc.want, "user %s", tc.user)
	}
	// The range is full: an error, and nothing reserved.
	_, err := r.ReserveUID("dave", 200000, 200003, hostAccount)
	assert.ErrorIs(t, err, ErrNoFreeUID)
	_, ok := r.UID("dave")
	assert.Assert(t, !ok)

	// Deleting a record keeps its user's uid: no one else ever gets it.
	bob := rec("bob", 0)
	bob.UID = 200002
	assert.NilError(t, r.Put(bob))
	assert.NilError(t, r.Delete("bob"))
	u, ok := r.UID("bob")
	assert.Assert(t, ok && u == 200002)

	// An existing uid is returned even outside a new range.
	got, err := r.ReserveUID("alice", 300000, 300010, nil)
	assert.NilError(t, err)
	assert.Equal(t, got, 200000)

	for _, bad := range [][2]int{{0, 10}, {10, 9}, {1, MaxUID + 1}} {
		_, err := r.ReserveUID("erin", bad[0], bad[1], nil)
		assert.ErrorIs(t, err, ErrInvalid)
	}

	// A record's uid must be its user's reservation.
	a := rec("alice", 0)
	a.UID = 200002
	assert.ErrorIs(t, r.Put(a), ErrUIDConflict)
	e := rec("erin", 0)
	e.UID = 200003 // carol's
	assert.ErrorIs(t, r.Put(e), ErrUIDConflict)
	e.UID = 250000 // free: adopted as erin's
	assert.NilError(t, r.Put(e))

	// Reservations are durable, and in the file.
	assert.NilError(t, r.Close())
	data := string(readFile(t, filepath.Join(dir, FileName)))
	assert.Assert(t, strings.Contains(data, `"uids":{`+"\n"+`"alice":200000,`), data)
	r = openT(t, dir, Options{})
	assert.DeepEqual(t, r.UIDs(), map[string]int{"alice": 200000, "bob": 200002, "carol": 200003, "erin": 250000})
	got2, ok := r.Get("erin")
	assert.Assert(t, ok)
	assert.Equal(t, got2.UID, 250000)
}

func TestDecodeRefusesBadUIDs(t *testing.T) {
	for name, content := range map[string]string{
		"uid twice":        `{"version":1,"records":[],"ports":{},"uids":{"a":200000,"b":200000}}`,
		"uid zero":         `{"version":1,"records":[],"ports":{},"uids":{"a":0}}`,
		"bad id":           `{"version":1,"records":[],"ports":{},"uids":{"a/b":200000}}`,
		"record uid unres": `{"version":1,"records":[{"userId":"a","containerName":"x","image":"i","port":0,"uid":5,"hashVersion":2,"createdAtMs":1,"lastUsedAtMs":1}],"ports":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			assert.NilError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600))
			_, err := Open(dir, Options{})
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}
