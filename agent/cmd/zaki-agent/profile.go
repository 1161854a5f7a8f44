package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
)

// profileDirEnv names a directory for CPU profiles of the agent; a tool for
// benchmarks and for chasing a slow agent, not a setting. When it is set:
//
//   - the start-up (from the start of serve to READY=1) is profiled into
//     startup-<pid>.pprof;
//   - each SIGUSR1 starts a CPU profile, the next one ends it and writes
//     cpu-<pid>-<n>.pprof (n counts from 1); one still running at exit is
//     written then.
//
// Each file appears whole (written aside, then renamed), so that a reader
// waiting for it never sees half of it. Unset, SIGUSR1 is not handled
// (its default action, like any unexpected signal's, ends the process).
const profileDirEnv = "ZAKI_AGENT_PROFILE_DIR"

type profiler struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	n    int      // profiles started by SIGUSR1
	tmp  *os.File // the profile being written, nil when none
	name string   // its final name
}

// newProfiler returns nil when profileDirEnv is not set.
func newProfiler(log *slog.Logger) *profiler {
	dir := os.Getenv(profileDirEnv)
	if dir == "" {
		return nil
	}
	return &profiler{dir: dir, log: log}
}

// start starts a CPU profile to be written as name.
func (p *profiler) start(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tmp != nil {
		return
	}
	f, err := os.CreateTemp(p.dir, ".profile-*")
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		p.log.Warn("cannot start a CPU profile", "dir", p.dir, "err", err)
		return
	}
	p.tmp, p.name = f, name
}

// stop ends the running profile, if any, and puts it in place.
func (p *profiler) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tmp == nil {
		return
	}
	pprof.StopCPUProfile()
	f := p.tmp
	p.tmp = nil
	path := filepath.Join(p.dir, p.name)
	err := f.Close()
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		p.log.Warn("cannot write a CPU profile", "path", path, "err", err)
		return
	}
	p.log.Info("CPU profile written", "path", path)
}

// toggle starts the next SIGUSR1 profile, or ends the running one.
func (p *profiler) toggle() {
	if p == nil {
		return
	}
	p.mu.Lock()
	running := p.tmp != nil
	if !running {
		p.n++
	}
	n := p.n
	p.mu.Unlock()
	if running {
		p.stop()
		return
	}
	p.start(fmt.Sprintf("cpu-%d-%d.pprof", os.Getpid(), n))
}
