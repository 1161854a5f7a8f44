package atomicfile

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Step names one step of an atomic write, for Options.Fault.
type Step string

// The steps of an atomic write, in order.
const (
	StepCreate  Step = "create"  // create the temp file
	StepWrite   Step = "write"   // write the content (WriteFile writes half of it first, as a full disk would)
	StepSync    Step = "sync"    // fsync the temp file
	StepClose   Step = "close"   // close it
	StepRename  Step = "rename"  // rename it over the target
	StepSyncDir Step = "syncdir" // fsync the directory
)

// TempInfix sits between a target's name and the random suffix of its
// temp files, so that RemoveTemps finds what a crash left behind.
const TempInfix = ".tmp-"

// Options tune a write. The zero value writes a file of mode 0600.
type Options struct {
	// Perm is the mode of the new file (0600 when zero).
	Perm fs.FileMode
	// Fault, when set, is called before each step; an error it returns
	// fails that step as the system would (tests simulate a full disk).
	Fault func(Step) error
}

// WriteFile replaces path with data atomically and durably.
func WriteFile(path string, data []byte, opts Options) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteFileIn(root, filepath.Base(path), data, opts)
}

// WriteFileIn replaces name, relative to root, with data atomically and
// durably.
func WriteFileIn(root *os.Root, name string, data []byte, opts Options) error {
	f, err := CreateIn(root, name, opts)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := f.fault(StepWrite); err != nil {
		f.File.Write(data[:len(data)/2])
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// File is the temp file of an atomic write: write to it (it is an
// *os.File), then Commit puts it in place of its target. Abort, deferred
// right after Create, removes it on any path where Commit was not reached
// or failed.
type File struct {
	*os.File
	root     *os.Root
	ownRoot  bool // opened by Create, closed with the File
	name     string
	tmp      string
	fault    func(Step) error
	finished bool
}

// Create starts an atomic write of path.
func Create(path string, opts Options) (*File, error) {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	f, err := CreateIn(root, filepath.Base(path), opts)
	if err != nil {
		root.Close()
		return nil, err
	}
	f.ownRoot = true
	return f, nil
}

// CreateIn starts an atomic write of name, relative to root. The temp
// file is created exclusively, so it never reuses a file that is there.
func CreateIn(root *os.Root, name string, opts Options) (*File, error) {
	perm := opts.Perm
	if perm == 0 {
		perm = 0o600
	}
	fault := opts.Fault
	if fault == nil {
		fault = func(Step) error { return nil }
	}
	f := &File{root: root, name: name}
	f.fault = func(s Step) error {
		if err := fault(s); err != nil {
			return &os.PathError{Op: string(s), Path: f.pathOf(f.tmp), Err: err}
		}
		return nil
	}
	f.tmp = name + TempInfix + "*"
	if err := f.fault(StepCreate); err != nil {
		return nil, err
	}
	for range 100 {
		f.tmp = name + TempInfix + strconv.FormatUint(rand.Uint64(), 36)
		file, err := root.OpenFile(f.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f.File = file
		return f, nil
	}
	return nil, &os.PathError{Op: "create", Path: f.pathOf(name + TempInfix + "*"), Err: fs.ErrExist}
}

// pathOf names a file of the root in errors.
func (f *File) pathOf(name string) string { return filepath.Join(f.root.Name(), name) }

// Commit fsyncs and closes the temp file, renames it over the target and
// fsyncs the directory. On failure the temp file is gone (but for a
// failure of the last step: then the target is already the new file).
func (f *File) Commit() (err error) {
	if f.finished {
		return errors.New("atomicfile: commit of a finished write")
	}
	defer func() {
		if err != nil {
			f.Abort()
		} else {
			f.finish()
		}
	}()
	if err := f.fault(StepSync); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.fault(StepClose); err != nil {
		return err
	}
	err = f.Close()
	f.File = nil
	if err != nil {
		return err
	}
	if err := f.fault(StepRename); err != nil {
		return err
	}
	if err := f.root.Rename(f.tmp, f.name); err != nil {
		return err
	}
	f.tmp = ""
	if err := f.fault(StepSyncDir); err != nil {
		return err
	}
	return syncDir(f.root, filepath.Dir(f.name))
}

// Abort ends a write that was not committed: it closes and removes the
// temp file. After Commit it does nothing.
func (f *File) Abort() {
	if f.finished {
		return
	}
	if f.File != nil {
		f.File.Close()
		f.File = nil
	}
	if f.tmp != "" {
		f.root.Remove(f.tmp)
	}
	f.finish()
}

func (f *File) finish() {
	f.finished = true
	if f.ownRoot {
		f.root.Close()
	}
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// RemoveTemps removes the temp files that interrupted writes of path left
// behind, and returns their paths.
func RemoveTemps(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), base+TempInfix) || de.IsDir() {
			continue
		}
		m := filepath.Join(dir, de.Name())
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}
