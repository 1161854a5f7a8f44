package registry

import (
	"path/filepath"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
)

// WriteStep names one step of an atomic file write, for Options.Fault.
type WriteStep = atomicfile.Step

// The steps of an atomic write, in order.
const (
	StepCreate  = atomicfile.StepCreate  // create the temp file
	StepWrite   = atomicfile.StepWrite   // write the content (a fault here writes half of it first)
	StepSync    = atomicfile.StepSync    // fsync the temp file
	StepClose   = atomicfile.StepClose   // close it
	StepRename  = atomicfile.StepRename  // rename it over the target
	StepSyncDir = atomicfile.StepSyncDir // fsync the directory
)

// tmpInfix sits between a target's name and the random suffix of its temp
// files; Open removes leftovers (from a crash) by it.
const tmpInfix = atomicfile.TempInfix

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old file or the new one. fault, when set, can fail any
// step (tests use it to simulate a full disk).
func writeFileAtomic(path string, data []byte, fault func(file string, step WriteStep) error) error {
	var opts atomicfile.Options
	if fault != nil {
		base := filepath.Base(path)
		opts.Fault = func(s atomicfile.Step) error { return fault(base, s) }
	}
	return atomicfile.WriteFile(path, data, opts)
}
