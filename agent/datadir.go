package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
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
		return "", fmt.Errorf("data dir of user %q: %s is not a directory", userID, dir)
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

// writeRootFile writes name in root atomically (temp file, fsync, rename)
// with mode 0600, owned by uid:gid. A symlink named name is replaced, never
// followed.
func writeRootFile(root *os.Root, name string, data []byte, uid, gid int) error {
	tmp := "." + name + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			root.Remove(tmp)
		}
	}()
	if err := f.Chown(uid, gid); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		return err
	}
	ok = true
	return nil
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
