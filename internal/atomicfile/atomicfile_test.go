package atomicfile_test

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
)

func TestWriteFile(t *testing.T) {
	dir := fs.NewDir(t, "atomicfile", fs.WithFile("f", "old"))
	p := dir.Join("f")
	assert.NilError(t, atomicfile.WriteFile(p, []byte("new"), atomicfile.Options{Perm: 0o640}))
	b, err := os.ReadFile(p)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "new"))
	fi, err := os.Stat(p)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o640)))
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"f"}))
}

// A failure at any step leaves the target as it was (but after the
// rename, which made it the new file) and no temp file behind.
func TestWriteFileFailure(t *testing.T) {
	steps := []atomicfile.Step{atomicfile.StepCreate, atomicfile.StepWrite, atomicfile.StepSync,
		atomicfile.StepClose, atomicfile.StepRename, atomicfile.StepSyncDir}
	for _, step := range steps {
		t.Run(string(step), func(t *testing.T) {
			dir := fs.NewDir(t, "atomicfile", fs.WithFile("f", "old"))
			p := dir.Join("f")
			err := atomicfile.WriteFile(p, []byte("new content"), atomicfile.Options{Fault: func(s atomicfile.Step) error {
				if s == step {
					return syscall.ENOSPC
				}
				return nil
			}})
			assert.Check(t, is.ErrorIs(err, syscall.ENOSPC))
			want, where := "old", p+atomicfile.TempInfix
			if step == atomicfile.StepSyncDir {
				want, where = "new content", dir.Path()
			}
			assert.Check(t, is.ErrorContains(err, string(step)+" "+where))
			b, rerr := os.ReadFile(p)
			assert.NilError(t, rerr)
			assert.Check(t, is.Equal(string(b), want))
			assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"f"}))
		})
	}
}

// A real failure (not an injected one): the directory is not writable.
func TestWriteFileUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	dir := fs.NewDir(t, "atomicfile", fs.WithFile("f", "old"), fs.WithMode(0o500))
	defer os.Chmod(dir.Path(), 0o700)
	err := atomicfile.WriteFile(dir.Join("f"), []byte("new"), atomicfile.Options{})
	assert.Check(t, is.ErrorIs(err, os.ErrPermission))
}

// A real failure of the rename (the target is a directory, which no
// file replaces): the error is the system's and the temp file is gone.
func TestWriteFileOverDirectory(t *testing.T) {
	dir := fs.NewDir(t, "atomicfile", fs.WithDir("d"))
	err := atomicfile.WriteFile(dir.Join("d"), []byte("new"), atomicfile.Options{})
	assert.Check(t, is.ErrorContains(err, "rename"))
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"d"}))
}

// Within a root, a symlink at the target is replaced, never followed, and
// a name cannot lead out of the root.
func TestWriteFileInRoot(t *testing.T) {
	outside := fs.NewDir(t, "outside", fs.WithFile("secret", "keep"))
	dir := fs.NewDir(t, "root",
		fs.WithSymlink("link", outside.Join("secret")),
		fs.WithSymlink("out", outside.Path()))
	root, err := os.OpenRoot(dir.Path())
	assert.NilError(t, err)
	defer root.Close()

	assert.NilError(t, atomicfile.WriteFileIn(root, "link", []byte("mine"), atomicfile.Options{}))
	fi, err := os.Lstat(dir.Join("link"))
	assert.NilError(t, err)
	assert.Check(t, fi.Mode().IsRegular())
	for _, name := range []string{"out/secret", "../secret", "out/new"} {
		err := atomicfile.WriteFileIn(root, name, []byte("evil"), atomicfile.Options{})
		assert.Check(t, err != nil, name)
	}
	b, err := os.ReadFile(outside.Join("secret"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "keep"))
	assert.Check(t, is.DeepEqual(names(t, outside.Path()), []string{"secret"}))
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"link", "out"}))
}

// A streamed write is invisible until Commit; Abort leaves nothing.
func TestCreateCommitAbort(t *testing.T) {
	dir := fs.NewDir(t, "atomicfile")
	f, err := atomicfile.Create(dir.Join("a"), atomicfile.Options{})
	assert.NilError(t, err)
	defer f.Abort()
	_, err = f.WriteString("streamed")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"a" + atomicfile.TempInfix + "*"}))
	assert.NilError(t, f.Commit())
	f.Abort() // a no-op once committed
	b, err := os.ReadFile(dir.Join("a"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "streamed"))

	g, err := atomicfile.Create(dir.Join("b"), atomicfile.Options{})
	assert.NilError(t, err)
	g.WriteString("dropped")
	g.Abort()
	assert.Check(t, g.Commit() != nil)
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"a"}))
}

func TestRemoveTemps(t *testing.T) {
	dir := fs.NewDir(t, "atomicfile",
		fs.WithFile("f", ""), fs.WithFile("f"+atomicfile.TempInfix+"x1", ""),
		fs.WithFile("f"+atomicfile.TempInfix+"x2", ""), fs.WithFile("g"+atomicfile.TempInfix+"x", ""))
	removed, err := atomicfile.RemoveTemps(dir.Join("f"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(removed, []string{dir.Join("f.tmp-x1"), dir.Join("f.tmp-x2")}))
	assert.Check(t, is.DeepEqual(names(t, dir.Path()), []string{"f", "g" + atomicfile.TempInfix + "*"}))
}

// names lists dir, with the random part of a temp file's name as "*".
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var out []string
	for _, de := range des {
		n := de.Name()
		if i := strings.Index(n, atomicfile.TempInfix); i >= 0 {
			n = n[:i] + atomicfile.TempInfix + "*"
		}
		out = append(out, n)
	}
	return out
}
