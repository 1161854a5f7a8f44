package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// WriteStep names one step of an atomic file write, for Options.Fault.
type WriteStep string

// The steps of an atomic write, in order.
const (
	StepCreate  WriteStep = "create"  // create the temp file
	StepWrite   WriteStep = "write"   // write the content (a fault here writes half of it first)
	StepSync    WriteStep = "sync"    // fsync the temp file
	StepClose   WriteStep = "close"   // close it
	StepRename  WriteStep = "rename"  // rename it over the target
	StepSyncDir WriteStep = "syncdir" // fsync the directory
)

// tmpInfix sits between a target's name and the random suffix of its temp
// files; Open removes leftovers (from a crash) by it.
const tmpInfix = ".tmp-"

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old file or the new one: temp file in the same
// directory, write, fsync, close, rename, fsync the directory. The temp
// file is removed on every failure path. fault, when set, can fail any
// step (tests use it to simulate a full disk).
func writeFileAtomic(path string, data []byte, fault func(file string, step WriteStep) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	injected := func(step WriteStep, p string) error {
		if fault == nil {
			return nil
		}
		if ferr := fault(base, step); ferr != nil {
			return &os.PathError{Op: string(step), Path: p, Err: ferr}
		}
		return nil
	}
	if err := injected(StepCreate, filepath.Join(dir, base+tmpInfix+"*")); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, base+tmpInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp) // gone already when the rename succeeded
		}
	}()
	if err := injected(StepWrite, tmp); err != nil {
		f.Write(data[:len(data)/2]) // a full disk fails part way
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := injected(StepSync, tmp); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := injected(StepClose, tmp); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if err := injected(StepRename, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := injected(StepSyncDir, dir); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTemps removes the temp files a crash left behind for target and
// returns their names.
func removeTemps(target string) ([]string, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), base+tmpInfix) || de.IsDir() {
			continue
		}
		m := filepath.Join(dir, de.Name())
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}
