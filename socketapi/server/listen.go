package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// SocketMode is the mode of the socket Listen creates.
const SocketMode fs.FileMode = 0o660

// Listen creates the API's Unix socket at path and listens on it. It
// refuses when another process answers on path (another agent), removes a
// stale socket file otherwise (but never a file that is not a socket), and
// creates path's parent dir (mode 0750) when missing. The socket is made
// in a private dir beside path, given SocketMode and group (by name or
// number; "" keeps the process's group) there, and only then renamed into
// place: no one can connect before its mode and group are final. Closing
// the listener removes the socket file (unless another one replaced it).
func Listen(path, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("socket group: %w", err)
		}
		gid = g
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".sock-")
	if err != nil {
		return nil, fmt.Errorf("create socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, SocketMode); err != nil {
		return fail(fmt.Errorf("chmod socket: %w", err))
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("chown socket to group %s: %w", group, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("place socket at %s: %w", path, err))
	}
	var ino uint64
	if fi, err := os.Lstat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
	}
	return &unixListener{UnixListener: ln, path: path, ino: ino}, nil
}

// clearStale removes a socket at path that no one answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("socket %s: exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket %s: another process (another zaki-agent?) is listening on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err == nil {
		return strconv.Atoi(g.Gid)
	}
	if n, nerr := strconv.Atoi(name); nerr == nil && n >= 0 {
		return n, nil
	}
	return 0, err
}

// unixListener removes its socket file on Close, unless the file is no
// longer the one it made.
type unixListener struct {
	*net.UnixListener
	path string
	ino  uint64
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		fi, serr := os.Lstat(l.path)
		if serr != nil {
			return
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && l.ino != 0 && st.Ino == l.ino {
			os.Remove(l.path)
		}
	})
	return err
}
