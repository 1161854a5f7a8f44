package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestExecMkdir(t *testing.T) {
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	dir := filepath.Join(t.TempDir(), "a", "b")
	assert.Equal(t, execTest([]string{"mkdir", dir, uid, gid}), 0)
	check := func() {
		t.Helper()
		fi, err := os.Stat(dir)
		assert.NilError(t, err)
		assert.Check(t, fi.IsDir())
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o700)))
		st := fi.Sys().(*syscall.Stat_t)
		assert.Check(t, is.Equal(strconv.Itoa(int(st.Uid)), uid))
		assert.Check(t, is.Equal(strconv.Itoa(int(st.Gid)), gid))
	}
	check()

	// An existing directory is re-moded; its content stays.
	assert.NilError(t, os.Chmod(dir, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600))
	assert.Equal(t, execTest([]string{"mkdir", dir, uid, gid}), 0)
	check()
	_, err := os.Stat(filepath.Join(dir, "keep"))
	assert.Check(t, err)

	for _, args := range [][]string{
		{"mkdir"},
		{"mkdir", "relative", uid, gid},
		{"mkdir", dir, "x", gid},
		{"mkdir", dir, uid, "-1"},
		{"mkdir", filepath.Join(dir, "keep", "sub"), uid, gid}, // a file in the way
	} {
		assert.Check(t, is.Equal(execTest(args), 1), "args %q", args)
	}
}
