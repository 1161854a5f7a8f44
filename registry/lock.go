package registry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// LockFile is the file in the state dir that Open locks (flock, exclusive)
// for as long as the Registry is open. It holds the holder's PID, for the
// error a second holder gets. It is never removed: removing a lock file
// lets two processes lock two different files.
const LockFile = "agent.lock"

// lockDir takes the state dir's lock, or fails with ErrLocked naming the
// process that holds it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errdefs.Errorf(ErrLocked, "state dir %s is in use by %s", dir, lockHolder(f))
		}
		return nil, fmt.Errorf("lock state dir %s: flock %s: %w", dir, path, err)
	}
	pid := strconv.AppendInt(nil, int64(os.Getpid()), 10)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(pid, '\n'), 0) // best effort: only for the message above
	}
	return f, nil
}

// unlockDir clears the PID and releases the lock.
func unlockDir(f *os.File) error {
	f.Truncate(0)
	return f.Close() // closing the last descriptor releases the flock
}

// lockHolder names the process that holds the lock on f: the kernel's
// record in /proc/locks first (exact even when the holder has not yet
// written its PID), then the PID in the file.
func lockHolder(f *os.File) string {
	pid := 0
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			pid = flockPID(st.Ino)
		}
	}
	if pid <= 0 {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		pid, _ = strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	}
	if pid <= 0 {
		return "another process"
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && len(bytes.TrimSpace(comm)) > 0 {
		return fmt.Sprintf("pid %d (%s)", pid, bytes.TrimSpace(comm))
	}
	return fmt.Sprintf("pid %d", pid)
}

// flockPID returns the PID holding an flock on inode ino, from /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"), or 0.
func flockPID(ino uint64) int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" { // "->" in fields[1] marks a waiter
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}
