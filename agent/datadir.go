package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// The modes of the agent's dirs, re-asserted at every start (New), create
// and ensure: a user's data dir is the instance's own (it can chmod it)
// and another mode would let others in.
const (
	dataDirPerm   fs.FileMode = 0o700 // <stateDir>/instances/<userId>
	instancesPerm fs.FileMode = 0o711 // <stateDir>/instances
)

// prepareDataDir makes <stateDir>/instances/<userId> (owned by uid:gid,
// the container user, mode 0700, both set again on an existing dir), the
// mounted sub-dirs and the dirs of the files in it (the same), and writes
// the files, each 0600 and atomically. A dir owned by another uid (made
// under a fixed instance.user, or before the user had a uid of its own)
// is handed over first, without following anything (reownTree). Files are written:
// the managed ones always, the seed files only where nothing is yet.
// Nothing is ever written outside the dir: paths are checked in resolve,
// every access goes through an os.Root, and a symlink (or a file) where a
// directory is expected is refused before anything is written, since the
// instance, which can write in the dir, may have planted it; a symlink
// named as a managed file is replaced, never followed.
func (a *Agent) prepareDataDir(userID string, e effectiveSpec, uid, gid int) (string, error) {
	dir := filepath.Join(a.dataDir, userID)
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create data dir of user %q: %w", userID, err)
		}
	case err != nil:
		return "", fmt.Errorf("data dir of user %q: %w", userID, err)
	case !fi.IsDir():
		return "", errdefs.Errorf(errdefs.ErrConflict, "data dir of user %q: %s is not a directory: move it away", userID, dir)
	default:
		if err := a.reownDataDir(userID, dir, fi, uid, gid); err != nil {
			return "", err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("open data dir of user %q: %w", userID, err)
	}
	defer root.Close()
	if err := root.Chown(".", uid, gid); err != nil {
		return "", fmt.Errorf("chown data dir of user %q: %w", userID, err)
	}
	if err := root.Chmod(".", dataDirPerm); err != nil {
		return "", fmt.Errorf("chmod data dir of user %q: %w", userID, err)
	}
	// Check everything first, so that a refusal writes nothing.
	dirs, err := checkDataDir(root, e)
	if err != nil {
		return "", errdefs.Errorf(errdefs.ErrConflict, "data dir of user %q: %v", userID, err)
	}
	for _, d := range dirs {
		if err := makeDirs(root, d, uid, gid); err != nil {
			return "", fmt.Errorf("data dir of user %q: %w", userID, err)
		}
	}
	for _, name := range sortedKeys(e.Files) {
		if err := writeRootFile(root, name, []byte(e.Files[name]), uid, gid); err != nil {
			return "", fmt.Errorf("write file %q for user %q: %w", name, userID, err)
		}
	}
	for _, name := range sortedKeys(e.SeedFiles) {
		if _, err := root.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			continue // there already (or unreadable): the instance's now
		}
		if err := writeRootFile(root, name, []byte(e.SeedFiles[name]), uid, gid); err != nil {
			return "", fmt.Errorf("write seed file %q for user %q: %w", name, userID, err)
		}
	}
	return dir, nil
}

// reownDataDir hands userID's data dir (fi its lstat) and what the old
// owner owns in it to uid:gid when another uid than root owns it: the
// instance ran as that uid before. Called before the container is made,
// with none running.
func (a *Agent) reownDataDir(userID, dir string, fi fs.FileInfo, uid, gid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == uid || st.Uid == 0 {
		return nil
	}
	res, err := reownTree(dir, int(st.Uid), uid, gid)
	if err != nil {
		return fmt.Errorf("hand the data dir of user %q from uid %d to %d: %w", userID, st.Uid, uid, err)
	}
	a.log.Info("data dir handed to the user's uid", "user", userID, "oldUid", st.Uid, "uid", uid, "entries", res.Changed, "left", len(res.Left))
	for i, l := range res.Left {
		if i == 20 {
			a.log.Warn("data dir: more entries left to their owner", "user", userID, "count", len(res.Left)-i)
			break
		}
		a.log.Warn("data dir: entry left to its owner", "user", userID, "entry", l)
	}
	return nil
}

// checkDataDir checks a user's data dir before an ensure with e changes
// anything: no symlink or file where e needs a directory (a mounted
// sub-dir, the dir of a file), no directory where it writes a file. It
// returns the dirs e needs.
func checkDataDir(root *os.Root, e effectiveSpec) (dirs []string, err error) {
	for _, m := range e.mountList() {
		if m.Dir != "." {
			dirs = append(dirs, m.Dir)
		}
	}
	for _, set := range []map[string]string{e.Files, e.SeedFiles} {
		for name := range set {
			if d := path.Dir(name); d != "." {
				dirs = append(dirs, d)
			}
		}
	}
	for _, d := range dirs {
		if err := checkDirs(root, d); err != nil {
			return nil, err
		}
	}
	for _, set := range []map[string]string{e.Files, e.SeedFiles} {
		for name := range set {
			if fi, err := root.Lstat(name); err == nil && fi.IsDir() {
				return nil, fmt.Errorf("file %q is a directory there", name)
			}
		}
	}
	return dirs, nil
}

// checkUserDataDir runs checkDataDir on userID's data dir, when it has
// one: an ensure that would be refused there is refused before it removes
// an outdated container.
func (a *Agent) checkUserDataDir(userID string, e effectiveSpec) error {
	root, err := os.OpenRoot(filepath.Join(a.dataDir, userID))
	if err != nil {
		return nil // none yet, or not a dir: prepareDataDir tells
	}
	defer root.Close()
	if _, err := checkDataDir(root, e); err != nil {
		return errdefs.Errorf(errdefs.ErrConflict, "data dir of user %q: %v", userID, err)
	}
	return nil
}

// checkDirs checks that each existing element of the relative dir p is a
// real directory: not a symlink, not a file.
func checkDirs(root *os.Root, p string) error {
	cur := ""
	for _, el := range strings.Split(p, "/") {
		cur = path.Join(cur, el)
		fi, err := root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%q is a symlink: refusing to follow it (move it away)", cur)
		case !fi.IsDir():
			return fmt.Errorf("%q is not a directory (move it away)", cur)
		}
	}
	return nil
}

// makeDirs makes the missing elements of the relative dir p, mode 0700,
// owned by uid:gid.
func makeDirs(root *os.Root, p string, uid, gid int) error {
	cur := ""
	for _, el := range strings.Split(p, "/") {
		cur = path.Join(cur, el)
		err := root.Mkdir(cur, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create %q: %w", cur, err)
		}
		if err := root.Chown(cur, uid, gid); err != nil {
			return fmt.Errorf("chown %q: %w", cur, err)
		}
	}
	return nil
}

// writeRootFile writes name in root atomically with mode 0600, owned by
// uid:gid. A symlink named name is replaced, never followed.
func writeRootFile(root *os.Root, name string, data []byte, uid, gid int) error {
	f, err := atomicfile.CreateIn(root, name, atomicfile.Options{Perm: 0o600})
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// fixDirMode gives the directory at path exactly the permission bits perm
// (no setuid, setgid or sticky bit) when it has others, and reports
// whether it changed them. It never follows a symlink: a symlink or a file
// at path is an error and is left alone. When the mode is right it costs
// one lstat; else the dir is opened with O_NOFOLLOW and fchmod'ed, so that
// no swap between the two can redirect the chmod.
func fixDirMode(path string, perm fs.FileMode) (bool, error) {
	var st unix.Stat_t // on the stack: the hot ensure calls this
	if err := unix.Lstat(path, &st); err != nil {
		return false, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, fmt.Errorf("%s is not a directory (a symlink is never followed)", path)
	}
	if st.Mode&0o7777 == uint32(perm) {
		return false, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm)); err != nil {
		return false, &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return true, nil
}

// fixUserDirMode re-asserts the mode of userID's data dir (dataDirPerm),
// logging what it changed or could not check. A missing dir is no
// concern here (create makes it); a symlink or file there is left alone
// and logged: the next create refuses it.
func (a *Agent) fixUserDirMode(userID string) {
	dir := filepath.Join(a.dataDir, userID)
	changed, err := fixDirMode(dir, dataDirPerm)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		a.log.Warn("data dir: mode not re-asserted", "user", userID, "err", err)
	case changed:
		a.log.Warn("data dir: mode reset to 0700", "user", userID)
	}
}

// fixModes re-asserts, at start, the modes of the state dir (at most 0750,
// group bits only when its group is the agent's own), of instances/
// (instancesPerm) and of every user's data dir in it. The state dir is
// the operator's and may be a symlink, which is followed; nothing under
// it is.
func (a *Agent) fixModes(stateDir string) error {
	fi, err := os.Stat(stateDir)
	if err != nil {
		return err
	}
	perm := fi.Mode().Perm() &^ 0o027
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Gid) != os.Getegid() {
		perm &^= 0o070
	}
	if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != perm {
		if err := os.Chmod(stateDir, perm); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		a.log.Warn("state dir: mode reset", "dir", stateDir, "mode", fmt.Sprintf("%04o", perm))
	}
	if changed, err := fixDirMode(a.dataDir, instancesPerm); err != nil {
		return fmt.Errorf("data dir: %w", err)
	} else if changed {
		a.log.Warn("data dir: mode reset", "dir", a.dataDir, "mode", fmt.Sprintf("%04o", instancesPerm))
	}
	ents, err := os.ReadDir(a.dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, e := range ents {
		a.fixUserDirMode(e.Name())
	}
	return nil
}

// purgeDataDir deletes a user's data dir. Only an explicit remove with
// purge calls it.
func (a *Agent) purgeDataDir(userID string) error {
	dir := filepath.Join(a.dataDir, userID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("purge data of user %q: %w", userID, err)
	}
	a.usage.drop(userID)
	return nil
}
