package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// fewest picks the node with the fewest pins among nodes (ties by order).
func fewest(nodes ...string) func(map[string]int) (string, error) {
	return func(pinned map[string]int) (string, error) {
		best := nodes[0]
		for _, n := range nodes[1:] {
			if pinned[n] < pinned[best] {
				best = n
			}
		}
		return best, nil
	}
}

func TestPinNode(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	for _, tc := range []struct{ user, want string }{
		{"alice", "n1"}, {"bob", "n2"}, {"carol", "n1"}, {"alice", "n1"}, {"dave", "n2"},
	} {
		got, err := r.PinNode(tc.user, fewest("n1", "n2"))
		assert.NilError(t, err)
		assert.Equal(t, got, tc.want, "user %s", tc.user)
	}
	assert.DeepEqual(t, r.PinnedPerNode(), map[string]int{"n1": 2, "n2": 2})

	// A pinned user is never asked about again; pick's error is returned
	// and pins nothing.
	boom := errors.New("no node is ready")
	_, err := r.PinNode("erin", func(map[string]int) (string, error) { return "", boom })
	assert.ErrorIs(t, err, boom)
	_, ok := r.Node("erin")
	assert.Assert(t, !ok)
	_, err = r.PinNode("erin", func(map[string]int) (string, error) { return "bad node", nil })
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = r.PinNode("alice", func(map[string]int) (string, error) { return "", boom })
	assert.NilError(t, err)

	// Deleting a record keeps its user's pin.
	assert.NilError(t, r.Put(rec("bob", 0)))
	assert.NilError(t, r.Delete("bob"))
	n, ok := r.Node("bob")
	assert.Assert(t, ok && n == "n2")

	// PinNodes fills in the users without a pin, in one write; the others
	// keep theirs.
	assert.NilError(t, r.PinNodes(map[string]string{"alice": "n2", "erin": "n3"}))
	assert.ErrorIs(t, r.PinNodes(map[string]string{"frank": "-x"}), ErrInvalid)

	// Pins are durable, and in the file.
	assert.NilError(t, r.Close())
	data := string(readFile(t, filepath.Join(dir, FileName)))
	assert.Assert(t, strings.Contains(data, `"nodes":{`+"\n"+`"alice":"n1",`), data)
	r = openT(t, dir, Options{})
	assert.DeepEqual(t, r.Nodes(), map[string]string{"alice": "n1", "bob": "n2", "carol": "n1", "dave": "n2", "erin": "n3"})
	assert.DeepEqual(t, r.PinnedPerNode(), map[string]int{"n1": 2, "n2": 2, "n3": 1})
}

// A registry without pins (a local runtime's, or an older agent's) loads,
// and is written without a "nodes" field.
func TestNoPins(t *testing.T) {
	dir := t.TempDir()
	content := `{"version":1,"records":[],"ports":{"a":18790},"uids":{"a":200000}}`
	assert.NilError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600))
	r := openT(t, dir, Options{})
	assert.Equal(t, len(r.Nodes()), 0)
	_, err := r.ReservePort("b", 18790, 18799)
	assert.NilError(t, err)
	assert.NilError(t, r.Close())
	data := string(readFile(t, filepath.Join(dir, FileName)))
	assert.Assert(t, !strings.Contains(data, `"nodes"`), data)
}

func TestDecodeRefusesBadNodes(t *testing.T) {
	for name, content := range map[string]string{
		"bad node": `{"version":1,"records":[],"ports":{},"nodes":{"a":"n 1"}}`,
		"no node":  `{"version":1,"records":[],"ports":{},"nodes":{"a":""}}`,
		"bad id":   `{"version":1,"records":[],"ports":{},"nodes":{"a/b":"n1"}}`,
		"legacy":   `{"entries":[],"nodes":{"a":"n1"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			assert.NilError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600))
			_, err := Open(dir, Options{Logger: quiet})
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}
