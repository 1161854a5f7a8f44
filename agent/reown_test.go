package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The ids of the re-own tests: the old owner (a fixed instance.user) and
// the tenant's new uid.
const (
	oldTestUID = 1000
	newTestUID = 234567
)

// requireRoot skips a test that needs to chown, mknod and mount.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, mount)")
	}
}

// ownerOf returns the owner of path, not following a symlink.
func ownerOf(t *testing.T, path string) (uid, gid int) {
	t.Helper()
	var st unix.Stat_t
	assert.NilError(t, unix.Lstat(path, &st), path)
	return int(st.Uid), int(st.Gid)
}

// plantedTree is a tenant's data dir as a hostile tenant leaves it, beside
// files outside it that a careless walk as root would hand over.
type plantedTree struct {
	dir     string // the data dir
	outside string // the host's files
	mounted string // a tmpfs bind-mounted into the tree ("" when mount is refused)
}

func writeOwned(t *testing.T, path string, uid int) {
	t.Helper()
	assert.NilError(t, os.WriteFile(path, []byte("x"), 0o600))
	assert.NilError(t, os.Lchown(path, uid, uid))
}

func mkdirOwned(t *testing.T, path string, uid int) {
	t.Helper()
	assert.NilError(t, os.Mkdir(path, 0o700))
	assert.NilError(t, os.Lchown(path, uid, uid))
}

func plantTree(t *testing.T) plantedTree {
	t.Helper()
	base := t.TempDir()
	p := plantedTree{dir: filepath.Join(base, "instances", "alice"), outside: filepath.Join(base, "host")}
	assert.NilError(t, os.MkdirAll(filepath.Dir(p.dir), 0o711))
	assert.NilError(t, os.Mkdir(p.outside, 0o755))
	// The host's files: one of root's, one of the old uid's (another
	// tenant's, or the login account's), a dir of the old uid's.
	writeOwned(t, filepath.Join(p.outside, "shadow"), 0)
	writeOwned(t, filepath.Join(p.outside, "theirs"), oldTestUID)
	writeOwned(t, filepath.Join(p.outside, "linked-theirs"), oldTestUID)
	mkdirOwned(t, filepath.Join(p.outside, "dir"), oldTestUID)
	writeOwned(t, filepath.Join(p.outside, "dir", "inner"), oldTestUID)

	// The tenant's own tree, made under the old uid.
	mkdirOwned(t, p.dir, oldTestUID)
	writeOwned(t, filepath.Join(p.dir, "openclaw.json"), oldTestUID)
	mkdirOwned(t, filepath.Join(p.dir, "workspace"), oldTestUID)
	mkdirOwned(t, filepath.Join(p.dir, "workspace", "memory"), oldTestUID)
	writeOwned(t, filepath.Join(p.dir, "workspace", "memory", "today.md"), oldTestUID)
	writeOwned(t, filepath.Join(p.dir, "workspace", "root-owned"), 0) // not the old uid's: untouched
	// What the tenant planted.
	assert.NilError(t, os.Symlink(filepath.Join(p.outside, "theirs"), filepath.Join(p.dir, "link-to-file")))
	assert.NilError(t, os.Lchown(filepath.Join(p.dir, "link-to-file"), oldTestUID, oldTestUID))
	assert.NilError(t, os.Symlink(filepath.Join(p.outside, "dir"), filepath.Join(p.dir, "workspace", "link-to-dir")))
	assert.NilError(t, os.Lchown(filepath.Join(p.dir, "workspace", "link-to-dir"), oldTestUID, oldTestUID))
	assert.NilError(t, os.Link(filepath.Join(p.outside, "shadow"), filepath.Join(p.dir, "hardlink-root")))
	assert.NilError(t, os.Link(filepath.Join(p.outside, "linked-theirs"), filepath.Join(p.dir, "workspace", "hardlink-theirs")))
	dev := filepath.Join(p.dir, "dev-null")
	if err := unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Logf("mknod refused (%v): a fifo instead", err)
		assert.NilError(t, unix.Mkfifo(dev, 0o600))
	}
	assert.NilError(t, os.Lchown(dev, oldTestUID, oldTestUID))
	assert.NilError(t, unix.Mkfifo(filepath.Join(p.dir, "fifo"), 0o600))
	assert.NilError(t, os.Lchown(filepath.Join(p.dir, "fifo"), oldTestUID, oldTestUID))

	// A tmpfs of the host's, bind-mounted into the tree.
	tmpfs := filepath.Join(base, "tmpfs")
	mnt := filepath.Join(p.dir, "workspace", "mnt")
	assert.NilError(t, os.Mkdir(tmpfs, 0o755))
	mkdirOwned(t, mnt, oldTestUID)
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs (the test needs root with CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(tmpfs, unix.MNT_DETACH) })
	writeOwned(t, filepath.Join(tmpfs, "on-tmpfs"), oldTestUID)
	assert.NilError(t, os.Chown(tmpfs, oldTestUID, oldTestUID))
	assert.NilError(t, unix.Mount(tmpfs, mnt, "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	p.mounted = tmpfs
	return p
}

// checkHostUntouched checks that nothing outside the tree changed owner.
func (p plantedTree) checkHostUntouched(t *testing.T) {
	t.Helper()
	for name, want := range map[string]int{
		"shadow": 0, "theirs": oldTestUID, "linked-theirs": oldTestUID, "dir": oldTestUID, "dir/inner": oldTestUID,
	} {
		uid, gid := ownerOf(t, filepath.Join(p.outside, name))
		assert.Check(t, uid == want && gid == want, "host file %s: owned by %d:%d, want %d", name, uid, gid, want)
	}
	for _, name := range []string{".", "on-tmpfs"} {
		uid, _ := ownerOf(t, filepath.Join(p.mounted, name))
		assert.Check(t, is.Equal(uid, oldTestUID), "the mounted tmpfs's %s was changed", name)
	}
}

func TestReownTreeFollowsNothing(t *testing.T) {
	requireRoot(t)
	p := plantTree(t)

	res, err := reownTree(p.dir, oldTestUID, newTestUID, newTestUID)
	assert.NilError(t, err)
	t.Logf("left: %q", res.Left)

	// The tenant's own entries (and its symlinks themselves) are the new uid's.
	for _, name := range []string{".", "openclaw.json", "workspace", "workspace/memory", "workspace/memory/today.md",
		"link-to-file", "workspace/link-to-dir"} {
		uid, gid := ownerOf(t, filepath.Join(p.dir, name))
		assert.Check(t, uid == newTestUID && gid == newTestUID, "%s: owned by %d:%d", name, uid, gid)
	}
	assert.Check(t, is.Equal(res.Changed, 7))
	// What is not the old uid's is untouched.
	uid, _ := ownerOf(t, filepath.Join(p.dir, "workspace", "root-owned"))
	assert.Check(t, is.Equal(uid, 0))
	// Nothing outside changed: not through the symlinks, the hard links
	// (the tree's names of them included), nor the mount.
	p.checkHostUntouched(t)
	for _, name := range []string{"dev-null", "fifo", "workspace/hardlink-theirs"} {
		uid, _ := ownerOf(t, filepath.Join(p.dir, name))
		assert.Check(t, is.Equal(uid, oldTestUID), "%s was changed", name)
	}
	// Each of them is listed as left.
	left := strings.Join(res.Left, "\n")
	for _, want := range []string{"workspace/hardlink-theirs: 2 hard links", "dev-null: a device", "fifo: a device",
		"workspace/mnt: on another mount"} {
		assert.Check(t, is.Contains(left, want))
	}

	// A second walk finds nothing more to do.
	res, err = reownTree(p.dir, oldTestUID, newTestUID, newTestUID)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Changed, 0))
	p.checkHostUntouched(t)
}

// The data dir itself may not be a symlink: refused, nothing changed.
func TestReownTreeRefusesSymlinkedDir(t *testing.T) {
	requireRoot(t)
	p := plantTree(t)
	link := filepath.Join(filepath.Dir(p.dir), "bob")
	assert.NilError(t, os.Symlink(filepath.Join(p.outside, "dir"), link))
	_, err := reownTree(link, oldTestUID, newTestUID, newTestUID)
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	p.checkHostUntouched(t)
}

// A tree deeper than reownMaxDepth is handed over down to the bound; what
// lies deeper is listed, not an error.
func TestReownTreeDepthBound(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "deep")
	mkdirOwned(t, dir, oldTestUID)
	// mkdir -p through a relative path: the full one exceeds PATH_MAX.
	rel := strings.Repeat("d/", reownMaxDepth+2)
	cmd := exec.Command("sh", "-c", fmt.Sprintf("mkdir -p %s && chown -R %d:%d .", rel, oldTestUID, oldTestUID))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	res, err := reownTree(dir, oldTestUID, newTestUID, newTestUID)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Changed, reownMaxDepth+1))
	assert.Check(t, is.Len(res.Left, 1))
	assert.Check(t, is.Contains(strings.Join(res.Left, ""), "deeper than"))
}

// A tenant racing the walk (a dir renamed away and replaced by a symlink
// to the host's files, between its check and its descent) redirects
// nothing: the walk goes on through the dir it opened.
func TestReownTreeRaceSwapsDirForSymlink(t *testing.T) {
	requireRoot(t)
	p := plantTree(t)
	mem := filepath.Join(p.dir, "workspace", "memory")
	reownOpened = func(name string) {
		if name != "workspace/memory" {
			return
		}
		assert.NilError(t, os.Rename(mem, filepath.Join(p.dir, "moved")))
		assert.NilError(t, os.Symlink(filepath.Join(p.outside, "dir"), mem))
	}
	t.Cleanup(func() { reownOpened = nil })
	_, err := reownTree(p.dir, oldTestUID, newTestUID, newTestUID)
	assert.NilError(t, err)
	p.checkHostUntouched(t)
	// The dir it had opened was handed over, wherever it went.
	for _, name := range []string{"moved", "moved/today.md"} {
		uid, _ := ownerOf(t, filepath.Join(p.dir, name))
		assert.Check(t, is.Equal(uid, newTestUID), name)
	}
}
