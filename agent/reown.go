package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// reownMaxDepth bounds how deep reownTree descends: each level holds a
// file descriptor, and a tenant can nest dirs without end. Deeper entries
// are left (and listed).
const reownMaxDepth = 256

// reownResult tells what reownTree did: the entries it gave to the new
// owner, and those it left (each with why).
type reownResult struct {
	Changed int
	Left    []string
}

func (r *reownResult) leave(name, why string) {
	r.Left = append(r.Left, name+": "+why)
}

// reownTree gives the entries of the tree at dir that are owned by
// oldUID to uid:gid. The tree is the tenant's to write, and the walk runs
// as root: so it never follows anything the tenant may have planted.
// Every entry is opened O_PATH|O_NOFOLLOW relative to its parent's
// descriptor (a dir swapped for a symlink mid-walk is then a symlink, not
// followed), everything is decided on what fstat says of that descriptor
// and done to it (fchownat with AT_EMPTY_PATH), so that no rename between
// the check and the change can redirect it. It leaves:
//
//   - anything on another mount than dir (a mount point: not descended);
//   - a file with more than one hard link (a link to /etc/shadow, or to
//     another tenant's file, would hand that file over);
//   - devices, fifos and sockets;
//   - what lies deeper than reownMaxDepth.
//
// Symlinks are chowned themselves, never followed; entries owned by
// anyone but oldUID are untouched (a dir of theirs is still descended).
// dir itself must be a directory, not a symlink; its parent is the
// agent's and trusted. The error is for dir itself; trouble below it is
// listed in Left and the walk goes on.
func reownTree(dir string, oldUID, uid, gid int) (reownResult, error) {
	var res reownResult
	parent, err := unix.Open(filepath.Dir(dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, &os.PathError{Op: "open", Path: filepath.Dir(dir), Err: err}
	}
	defer unix.Close(parent)
	top, err := unix.Openat(parent, filepath.Base(dir), unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(top)
	st, err := statFD(top)
	if err != nil {
		return res, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	w := reowner{oldUID: oldUID, uid: uid, gid: gid, mount: st.mount(), res: &res}
	w.dir(top, st, ".", 0)
	return res, nil
}

// reownOpened, when set (by tests), is called with each entry's name
// once it is open and examined: where a racing tenant would swap it.
var reownOpened func(name string)

type reowner struct {
	oldUID, uid, gid int
	mount            mountID
	res              *reownResult
}

// dir re-owns the entries of the dir open (O_PATH) at fd, then the dir
// itself: last, so that a walk cut short (a crash) leaves the data dir
// with its old owner, and the next one goes over it again.
func (w *reowner) dir(fd int, st fdStat, name string, depth int) {
	defer w.chown(fd, st, name)
	if depth >= reownMaxDepth {
		w.res.leave(name, fmt.Sprintf("deeper than %d levels: not descended", reownMaxDepth))
		return
	}
	rfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		w.res.leave(name, "not read: "+err.Error())
		return
	}
	f := os.NewFile(uintptr(rfd), name)
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			w.entry(fd, n, path.Join(name, n), depth)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.res.leave(name, "not read to the end: "+err.Error())
			}
			return
		}
	}
}

// entry re-owns the entry n of the dir open at parent.
func (w *reowner) entry(parent int, n, name string, depth int) {
	fd, err := unix.Openat(parent, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return // gone meanwhile
	}
	if err != nil {
		w.res.leave(name, "not opened: "+err.Error())
		return
	}
	defer unix.Close(fd)
	st, err := statFD(fd)
	if err != nil {
		w.res.leave(name, "not examined: "+err.Error())
		return
	}
	if reownOpened != nil {
		reownOpened(name)
	}
	if st.mount() != w.mount {
		w.res.leave(name, "on another mount: not followed")
		return
	}
	switch st.mode & unix.S_IFMT {
	case unix.S_IFDIR:
		w.dir(fd, st, name, depth+1)
	case unix.S_IFLNK:
		w.chown(fd, st, name) // the link itself, never its target
	case unix.S_IFREG:
		if st.uid == w.oldUID && st.nlink > 1 {
			w.res.leave(name, fmt.Sprintf("%d hard links: left to its owner (a link may be another's file)", st.nlink))
			return
		}
		w.chown(fd, st, name)
	default:
		if st.uid == w.oldUID {
			w.res.leave(name, "a device, fifo or socket: skipped")
		}
	}
}

// chown gives the entry open at fd to the new owner when the old one owns it.
func (w *reowner) chown(fd int, st fdStat, name string) {
	if st.uid != w.oldUID {
		return
	}
	if err := unix.Fchownat(fd, "", w.uid, w.gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		w.res.leave(name, "chown: "+err.Error())
		return
	}
	w.res.Changed++
}

// mountID tells mounts apart: the mount ID where statx gives one (Linux
// 5.8), else the device (a bind mount within one file system then looks
// the same: the hard link and type checks still hold).
type mountID struct {
	id  uint64
	dev uint64
}

// fdStat is what reownTree needs to know of an entry.
type fdStat struct {
	mode       uint32
	uid, nlink int
	dev, mnt   uint64
	hasMnt     bool
}

func (s fdStat) mount() mountID {
	if s.hasMnt {
		return mountID{id: s.mnt}
	}
	return mountID{dev: s.dev}
}

// statFD examines the file open at fd (O_PATH: a symlink is the link).
func statFD(fd int) (fdStat, error) {
	var sx unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT,
		unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_UID|unix.STATX_NLINK|unix.STATX_MNT_ID, &sx)
	if err == nil {
		return fdStat{
			mode: uint32(sx.Mode), uid: int(sx.Uid), nlink: int(sx.Nlink),
			dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), mnt: sx.Mnt_id, hasMnt: sx.Mask&unix.STATX_MNT_ID != 0,
		}, nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return fdStat{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fdStat{}, err
	}
	return fdStat{mode: st.Mode, uid: int(st.Uid), nlink: int(st.Nlink), dev: st.Dev}, nil
}
