package registry

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/fs"
)

var wantLegacy = []Record{
	{UserID: "u1", ContainerName: "zaki-user-u1", Image: "alpine/openclaw:latest", Port: 18790,
		ConfigHash: "3f2a", CreatedAtMs: 1690000000000, LastUsedAtMs: 1690000500000},
	{UserID: "u2", ContainerName: "zaki-user-u2", Image: "alpine/openclaw:2026.1", Port: 18795,
		ConfigHash: "9c1b", CreatedAtMs: 1690000100000, LastUsedAtMs: 1690000200000},
}

// The old registry found as registry.json is imported in place, and the
// original is kept beside it.
func TestImportLegacyInPlace(t *testing.T) {
	legacy := readFile(t, "testdata/decode/legacy.json")
	dir := fs.NewDir(t, "state", fs.WithFile(FileName, string(legacy)))
	r := openT(t, dir.Path(), Options{})
	assert.DeepEqual(t, r.List(), wantLegacy)
	assert.DeepEqual(t, r.Ports(), map[string]int{"u1": 18790, "u2": 18795})
	assert.Equal(t, string(readFile(t, dir.Join(LegacyCopyFile))), string(legacy))
	assert.Assert(t, decodeFile(t, dir.Path()) != nil, "registry.json is in the current format now")

	// A reserved legacy port is never handed to anyone else.
	p, err := r.ReservePort("u3", 18790, 18800)
	assert.NilError(t, err)
	assert.Equal(t, p, 18791)
	assert.NilError(t, r.Close())

	// Opening again loads the imported registry, without importing again.
	r = openT(t, dir.Path(), Options{})
	assert.Equal(t, r.Len(), 2)
	assert.DeepEqual(t, r.Ports(), map[string]int{"u1": 18790, "u2": 18795, "u3": 18791})
}

// Options.LegacyPath is imported when the state dir has no registry, and
// left alone when it has one.
func TestImportLegacyPath(t *testing.T) {
	legacy := readFile(t, "testdata/decode/legacy.json")
	src := fs.NewFile(t, "old-registry.json", fs.WithBytes(legacy))
	dir := t.TempDir()
	r := openT(t, dir, Options{LegacyPath: src.Path()})
	assert.DeepEqual(t, r.List(), wantLegacy)
	assert.Equal(t, string(readFile(t, filepath.Join(dir, LegacyCopyFile))), string(legacy))
	assert.Equal(t, string(readFile(t, src.Path())), string(legacy), "the original stays where it was")
	assert.NilError(t, r.Delete("u1"))
	assert.NilError(t, r.Close())

	r = openT(t, dir, Options{LegacyPath: src.Path()})
	assert.Equal(t, r.Len(), 1, "the legacy file must not be imported twice")

	// A missing legacy file is not an error.
	openT(t, t.TempDir(), Options{LegacyPath: filepath.Join(t.TempDir(), "absent.json")})
}

// A legacy file that double-books a port stops Open: the operator sees it,
// nothing is silently resolved, nothing is written.
func TestImportLegacyConflictFails(t *testing.T) {
	for _, name := range []string{"legacy-port-twice.json", "legacy-user-twice.json"} {
		t.Run(name, func(t *testing.T) {
			content := readFile(t, filepath.Join("testdata", "decode", name))
			dir := fs.NewDir(t, "state", fs.WithFile(FileName, string(content)))
			_, err := Open(dir.Path(), Options{Logger: quiet})
			assert.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorContains(t, err, dir.Join(FileName))
			assert.Equal(t, string(readFile(t, dir.Join(FileName))), string(content))
			_, err = os.Stat(dir.Join(LegacyCopyFile))
			assert.Assert(t, os.IsNotExist(err))
		})
	}
}

// A crash after the copy and before registry.json is replaced imports again.
func TestImportLegacyInterrupted(t *testing.T) {
	legacy := readFile(t, "testdata/decode/legacy.json")
	dir := fs.NewDir(t, "state", fs.WithFile(FileName, string(legacy)))
	_, err := Open(dir.Path(), Options{Logger: quiet, Fault: func(file string, step WriteStep) error {
		if file == FileName && step == StepRename {
			return os.ErrPermission
		}
		return nil
	}})
	assert.ErrorContains(t, err, "import legacy registry")
	assert.Equal(t, string(readFile(t, dir.Join(FileName))), string(legacy))
	r := openT(t, dir.Path(), Options{})
	assert.DeepEqual(t, r.List(), wantLegacy)
	assert.Equal(t, string(readFile(t, dir.Join(LegacyCopyFile))), string(legacy))
}
