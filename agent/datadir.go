package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// prepareDataDir makes <stateDir>/instances/<userId> (owned by the
// container user, mode 0700) and writes files into it, each 0600 and
// atomically. Nothing is ever written outside the dir: names are plain
// (validated in resolve) and every access goes through an os.Root, which
// refuses symlinks that lead out.
func (a *Agent) prepareDataDir(userID string, files map[string]string) (string, error) {
	uid, gid, _ := a.conf().Instance.UIDGID()
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
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("open data dir of user %q: %w", userID, err)
	}
	defer root.Close()
	if err := root.Chown(".", uid, gid); err != nil {
		return "", fmt.Errorf("chown data dir of user %q: %w", userID, err)
	}
	for _, name := range sortedKeys(files) {
		if err := writeRootFile(root, name, []byte(files[name]), uid, gid); err != nil {
			return "", fmt.Errorf("write file %q for user %q: %w", name, userID, err)
		}
	}
	return dir, nil
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

// purgeDataDir deletes a user's data dir. Only an explicit remove with
// purge calls it.
func (a *Agent) purgeDataDir(userID string) error {
	dir := filepath.Join(a.dataDir, userID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("purge data of user %q: %w", userID, err)
	}
	return nil
}
