package faults

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// The unit's MemoryMax= and TasksMax= must hold under the fault suite:
// every agent the suite starts runs, with its plugin and the engine CLI
// commands they start, in cgroups with those limits (as systemd would put
// them), and the suite fails if the kernel ever had to enforce them (an
// OOM kill, a refused fork). The peaks are printed with the table.

// unitFile is the shipped unit, relative to this package.
const unitFile = "../systemd/zaki-agent.service"

// unitLimits holds the cgroups the agents run in and the limits set there.
type unitLimits struct {
	memDir, pidsDir string // cgroup directories (v1 hierarchies or one v2 dir)
	v2              bool
	memoryMax       int64
	tasksMax        int64
}

// setupUnitLimits reads MemoryMax= and TasksMax= from the unit and makes
// cgroups with them for the suite's agents. It fails when the unit sets
// neither, or the cgroups cannot be made (the suite needs root).
func setupUnitLimits() (*unitLimits, error) {
	mem, tasks, err := readUnitLimits(unitFile)
	if err != nil {
		return nil, err
	}
	u := &unitLimits{memoryMax: mem, tasksMax: tasks}
	name := fmt.Sprintf("zaki-faults-%d", os.Getpid())
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		// cgroup v2: one dir; its parent must delegate memory and pids.
		u.v2 = true
		dir := filepath.Join("/sys/fs/cgroup", name)
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory +pids"), 0o644)
		u.memDir, u.pidsDir = dir, dir
	} else {
		u.memDir = filepath.Join("/sys/fs/cgroup/memory", name)
		u.pidsDir = filepath.Join("/sys/fs/cgroup/pids", name)
	}
	for _, d := range []string{u.memDir, u.pidsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make cgroup %s: %w", d, err)
		}
	}
	memFile, tasksFile := "memory.limit_in_bytes", "pids.max"
	if u.v2 {
		memFile = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(u.memDir, memFile), []byte(strconv.FormatInt(mem, 10)), 0o644); err != nil {
		return nil, fmt.Errorf("set %s: %w", memFile, err)
	}
	if err := os.WriteFile(filepath.Join(u.pidsDir, tasksFile), []byte(strconv.FormatInt(tasks, 10)), 0o644); err != nil {
		return nil, fmt.Errorf("set %s: %w", tasksFile, err)
	}
	testenv.AgentCgroups = []string{u.memDir}
	if u.pidsDir != u.memDir {
		testenv.AgentCgroups = append(testenv.AgentCgroups, u.pidsDir)
	}
	return u, nil
}

// readUnitLimits returns the unit's MemoryMax= and TasksMax= in bytes and
// tasks.
func readUnitLimits(path string) (memoryMax, tasksMax int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch k {
		case "MemoryMax":
			memoryMax, err = parseUnitBytes(v)
		case "TasksMax":
			tasksMax, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s=%s: %w", path, k, v, err)
		}
	}
	if memoryMax <= 0 || tasksMax <= 0 {
		return 0, 0, fmt.Errorf("%s: want MemoryMax= and TasksMax= as numbers (got %d, %d)", path, memoryMax, tasksMax)
	}
	return memoryMax, tasksMax, sc.Err()
}

// parseUnitBytes parses systemd's byte sizes: a number with an optional
// K, M, G or T suffix (powers of 1024).
func parseUnitBytes(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", s[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v * mult, err
}

// report returns what the limits saw and the violations: an OOM kill or a
// refused fork in the agents' cgroups.
func (u *unitLimits) report() (summary string, violations []string) {
	read := func(dir, file string) string {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		return strings.TrimSpace(string(b))
	}
	field := func(text, key string) int64 {
		for _, line := range strings.Split(text, "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == key {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	var peak, ooms int64
	if u.v2 {
		peak, _ = strconv.ParseInt(read(u.memDir, "memory.peak"), 10, 64)
		ooms = field(read(u.memDir, "memory.events"), "oom_kill")
	} else {
		peak, _ = strconv.ParseInt(read(u.memDir, "memory.max_usage_in_bytes"), 10, 64)
		ooms = field(read(u.memDir, "memory.oom_control"), "oom_kill")
	}
	pidsPeak := read(u.pidsDir, "pids.peak")
	refused := field(read(u.pidsDir, "pids.events"), "max")
	summary = fmt.Sprintf("unit limits over every agent of the suite: MemoryMax=%d MiB, peak %d MiB; TasksMax=%d, peak %s; OOM kills %d, refused forks %d",
		u.memoryMax>>20, peak>>20, u.tasksMax, pidsPeak, ooms, refused)
	if peak == 0 {
		violations = append(violations, "the agents' memory cgroup saw no use: the limits proved nothing")
	}
	if ooms > 0 {
		violations = append(violations, fmt.Sprintf("MemoryMax=%d was hit: %d OOM kills", u.memoryMax, ooms))
	}
	if refused > 0 {
		violations = append(violations, fmt.Sprintf("TasksMax=%d was hit: %d forks refused", u.tasksMax, refused))
	}
	return summary, violations
}

// remove deletes the cgroups (once every agent has ended).
func (u *unitLimits) remove() {
	testenv.AgentCgroups = nil
	for _, d := range []string{u.memDir, u.pidsDir} {
		_ = os.Remove(d)
	}
}
