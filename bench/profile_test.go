package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Profiles of the agents, for a scenario that misses its target (the
// issue asks for the profile that shows where the time goes). With
// ZAKI_BENCH_PROFILE_DIR set, every agent of a scenario runs with
// ZAKI_AGENT_PROFILE_DIR (see agent/cmd/zaki-agent/profile.go), and the
// scenario keeps a CPU profile and an execution trace of the agent for
// each of its timed phases as <dir>/<Benchmark>-<phase>.pprof and .trace
// (and a CPU profile of each start-up). scripts/bench.sh re-runs each
// scenario that missed a target this way, after the measured run (a
// profiler's interrupts would be in the figures), and prints the top of
// each profile.
func profileDir() string { return os.Getenv("ZAKI_BENCH_PROFILE_DIR") }

func (w *world) agentProfDir() string { return filepath.Join(w.profDir, ".agent-"+w.benchName()) }

func (w *world) benchName() string {
	name, _, _ := strings.Cut(strings.TrimPrefix(w.b.Name(), "Benchmark"), "/")
	return name
}

// profile starts a CPU profile and a trace of the agent (SIGUSR1) and
// returns what ends them and keeps them as <Benchmark>-<phase>.pprof and
// .trace. A no-op without ZAKI_BENCH_PROFILE_DIR.
func (w *world) profile(phase string) (stop func()) {
	if w.profDir == "" {
		return func() {}
	}
	pid := w.agent.Pid()
	w.profN[pid]++
	n := w.profN[pid]
	w.agent.Signal(syscall.SIGUSR1)
	return func() {
		w.agent.Signal(syscall.SIGUSR1)
		w.keepProfile(fmt.Sprintf("cpu-%d-%d.pprof", pid, n), phase+".pprof")
		w.keepProfile(fmt.Sprintf("trace-%d-%d.out", pid, n), phase+".trace")
	}
}

// keepStartup keeps the profile of the running agent's start-up as
// <Benchmark>-<phase>.pprof.
func (w *world) keepStartup(phase string) {
	if w.profDir != "" {
		w.keepProfile(fmt.Sprintf("startup-%d.pprof", w.agent.Pid()), phase+".pprof")
	}
}

// keepProfile waits for the agent to write name, then moves it to
// <Benchmark>-<as>.
func (w *world) keepProfile(name, as string) {
	from := filepath.Join(w.agentProfDir(), name)
	to := filepath.Join(w.profDir, w.benchName()+"-"+as)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := os.Rename(from, to)
		if err == nil {
			w.b.Logf("agent profile: %s", to)
			return
		}
		if time.Now().After(deadline) {
			w.b.Fatalf("agent profile %s: %v\n%s", name, err, w.agent.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
