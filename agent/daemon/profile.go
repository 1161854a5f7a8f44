package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
)

// profileDirEnv names a directory for CPU profiles of the agent; a tool for
// benchmarks and for chasing a slow agent, not a setting. When it is set:
//
//   - the start-up (from the start of serve to READY=1) is profiled into
//     startup-<pid>.pprof;
//   - each SIGUSR1 starts a CPU profile and an execution trace, the next
//     one ends them and writes cpu-<pid>-<n>.pprof and trace-<pid>-<n>.out
//     (n counts from 1); ones still running at exit are written then. A
//     CPU profile shows where the agent spends CPU; the trace shows where
//     a call waits (`go tool trace -pprof=sched` makes a pprof profile of
//     the time goroutines waited for a CPU).
//
// The directory is made if need be. Each file appears whole (written
// aside, then renamed), so that a reader waiting for it never sees half of
// it. Unset, SIGUSR1 is not handled (its default action, like any
// unexpected signal's, ends the process).
const profileDirEnv = "ZAKI_AGENT_PROFILE_DIR"

type profiler struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	n       int        // profiles started by SIGUSR1
	running []*pending // the files being written, none when idle
}

// pending is a file being written (atomically: it appears at its final
// path on Commit) and what ends what writes it.
type pending struct {
	f    *atomicfile.File
	name string
	stop func()
}

// newProfiler returns nil when profileDirEnv is not set.
func newProfiler(log *slog.Logger) *profiler {
	dir := os.Getenv(profileDirEnv)
	if dir == "" {
		return nil
	}
	return &profiler{dir: dir, log: log}
}

// start starts a CPU profile to be written as cpuName and, when
// traceName is not "", an execution trace to be written as traceName.
func (p *profiler) start(cpuName, traceName string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.running) > 0 {
		return
	}
	cpu, err := p.begin(cpuName, func(f *os.File) (func(), error) {
		return pprof.StopCPUProfile, pprof.StartCPUProfile(f)
	})
	if err != nil {
		p.log.Warn("cannot start a CPU profile", "dir", p.dir, "err", err)
		return
	}
	p.running = append(p.running, cpu)
	if traceName != "" {
		tr, err := p.begin(traceName, func(f *os.File) (func(), error) { return trace.Stop, trace.Start(f) })
		if err != nil {
			p.log.Warn("cannot start an execution trace", "dir", p.dir, "err", err)
		} else {
			p.running = append(p.running, tr)
		}
	}
	// Said, so that whoever sent SIGUSR1 knows when to send the next one:
	// a second signal sent before the first is handled is merged into it.
	names := make([]string, len(p.running))
	for i, r := range p.running {
		names[i] = r.name
	}
	p.log.Info("profile started", "dir", p.dir, "files", strings.Join(names, " "))
}

// begin makes a temporary file in the directory and starts writing to it.
func (p *profiler) begin(name string, start func(*os.File) (stop func(), err error)) (*pending, error) {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := atomicfile.Create(filepath.Join(p.dir, name), atomicfile.Options{})
	if err != nil {
		return nil, err
	}
	stop, err := start(f.File)
	if err != nil {
		f.Abort()
		return nil, err
	}
	return &pending{f: f, name: name, stop: stop}, nil
}

// stop ends what is running, if anything, and puts the files in place.
func (p *profiler) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var written []string
	for _, r := range p.running {
		r.stop()
		path := filepath.Join(p.dir, r.name)
		if err := r.f.Commit(); err != nil {
			p.log.Warn("cannot write a profile", "path", path, "err", err)
			continue
		}
		written = append(written, path)
	}
	p.running = nil
	if len(written) > 0 {
		p.log.Info("profile written", "files", strings.Join(written, " "))
	}
}

// toggle starts the next SIGUSR1 profile, or ends the running one.
func (p *profiler) toggle() {
	if p == nil {
		return
	}
	p.mu.Lock()
	running := len(p.running) > 0
	if !running {
		p.n++
	}
	n := p.n
	p.mu.Unlock()
	if running {
		p.stop()
		return
	}
	pid := os.Getpid()
	p.start(fmt.Sprintf("cpu-%d-%d.pprof", pid, n), fmt.Sprintf("trace-%d-%d.out", pid, n))
}
