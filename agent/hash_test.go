package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestHash(t *testing.T) {
	dir := t.TempDir()
	h, err := loadHashKey(dir)
	assert.NilError(t, err)
	fi, err := os.Stat(filepath.Join(dir, "hash.key"))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))

	cfg := DefaultConfig()
	a, err := cfg.resolve(InstanceSpec{Env: map[string]string{"A": "1", "B": "secret-token"}, Labels: map[string]string{"x": "1", "y": "2"}})
	assert.NilError(t, err)
	b, err := cfg.resolve(InstanceSpec{Labels: map[string]string{"y": "2", "x": "1"}, Env: map[string]string{"B": "secret-token", "A": "1"}})
	assert.NilError(t, err)
	assert.Equal(t, h.current(a), h.current(b), "map order changed the hash")
	assert.Assert(t, !strings.Contains(h.current(a), "secret"))

	c, _ := cfg.resolve(InstanceSpec{Env: map[string]string{"A": "1", "B": "other"}, Labels: map[string]string{"x": "1", "y": "2"}})
	assert.Assert(t, h.current(a) != h.current(c))
	assert.Assert(t, h.matches(h.current(a), h.current(b), b))
	assert.Assert(t, !h.matches(h.current(a), h.current(c), c))

	// The key persists: a second load gives the same hashes.
	h2, err := loadHashKey(dir)
	assert.NilError(t, err)
	assert.Equal(t, h2.current(a), h.current(a))
	// Another host's key gives another hash: the label reveals nothing
	// that can be checked without the key.
	h3, err := loadHashKey(t.TempDir())
	assert.NilError(t, err)
	assert.Assert(t, h3.current(a) != h.current(a))

	// Unknown versions (the legacy registry's) are kept, not recreated.
	assert.Assert(t, h.matches("0123abcd", h.current(c), c))
	assert.Assert(t, h.matches("v99-abcd", h.current(c), c))
	assert.Equal(t, parseHashVersion(h.current(a)), 2)

	// Version 2 covers what the image reference resolves to; version 1,
	// which did not, still matches a container labelled with it whatever
	// the ID (the agent compares the container's image itself).
	rebuilt := a
	a.ImageID, rebuilt.ImageID = "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	assert.Assert(t, h.current(a) != h.current(rebuilt))
	assert.Assert(t, !h.matches(h.current(a), h.current(rebuilt), rebuilt))
	v1 := h.sum(1, a)
	assert.Assert(t, strings.HasPrefix(v1, "v1-"))
	assert.Assert(t, h.matches(v1, h.current(rebuilt), rebuilt))
	assert.Assert(t, !h.matches(v1, h.current(c), c))
	assert.Equal(t, parseHashVersion("abc"), 0)
}

func TestHashKeyCorruptRefused(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "hash.key"), []byte("not hex\n"), 0o600))
	_, err := loadHashKey(dir)
	assert.ErrorContains(t, err, "corrupt")
}
