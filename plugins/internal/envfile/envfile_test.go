package envfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path, remove, err := Write(dir, map[string]string{"B": "two words = x", "A": "#not a comment"})
	assert.NilError(t, err)
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "A=#not a comment\nB=two words = x\n")
	fi, err := os.Stat(path)
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))
	di, err := os.Stat(filepath.Dir(path))
	assert.NilError(t, err)
	assert.Equal(t, di.Mode().Perm(), os.FileMode(0o700))
	remove()
	_, err = os.Stat(filepath.Dir(path))
	assert.Assert(t, os.IsNotExist(err))
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "zaki-env-old")
	fresh := filepath.Join(dir, "zaki-env-fresh")
	other := filepath.Join(dir, "not-ours")
	for _, p := range []string{old, fresh, other} {
		assert.NilError(t, os.Mkdir(p, 0o700))
		assert.NilError(t, os.WriteFile(filepath.Join(p, "env"), []byte("K=secret\n"), 0o600))
	}
	past := time.Now().Add(-time.Hour)
	assert.NilError(t, os.Chtimes(old, past, past))
	assert.NilError(t, os.Chtimes(other, past, past))
	assert.Equal(t, Sweep(dir, 10*time.Minute), 1)
	_, err := os.Stat(old)
	assert.Assert(t, os.IsNotExist(err))
	_, err = os.Stat(fresh)
	assert.NilError(t, err)
	_, err = os.Stat(other)
	assert.NilError(t, err)
}
