package registry

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"
)

func TestSecondOpenInProcessFails(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	_, err := Open(dir, Options{Logger: quiet})
	assert.ErrorIs(t, err, ErrLocked)
	assert.ErrorContains(t, err, fmt.Sprintf("state dir %s is in use by pid %d", dir, os.Getpid()))
	assert.NilError(t, r.Close())
	openT(t, dir, Options{}) // free again
}

// Two agent processes on one state dir: the second exits non-zero with a
// message naming the first's PID; the first carries on.
func TestTwoProcessesOneStateDir(t *testing.T) {
	dir := t.TempDir()
	first := exec.Command(os.Args[0], "-test.run=^$")
	first.Env = append(os.Environ(), childEnv+"=hold", "ZAKI_REGISTRY_DIR="+dir)
	stdin, err := first.StdinPipe()
	assert.NilError(t, err)
	stdout, err := first.StdoutPipe()
	assert.NilError(t, err)
	var stderr strings.Builder
	first.Stderr = &stderr
	assert.NilError(t, first.Start())
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	lines := bufio.NewScanner(stdout)
	assert.Assert(t, lines.Scan(), "first agent: %s", stderr.String())
	assert.Equal(t, lines.Text(), fmt.Sprintf("locked %d", first.Process.Pid))

	second := icmd.RunCmd(icmd.Command(os.Args[0], "-test.run=^$"),
		icmd.WithEnv(append(os.Environ(), childEnv+"=open", "ZAKI_REGISTRY_DIR="+dir)...))
	second.Assert(t, icmd.Expected{
		ExitCode: 1,
		Err:      fmt.Sprintf("zaki-agent: state dir %s is in use by pid %d (%s)", dir, first.Process.Pid, comm(os.Args[0])),
	})

	// The first is unaffected: it still writes, and exits cleanly.
	fmt.Fprintln(stdin, "put alice")
	assert.Assert(t, lines.Scan())
	assert.Equal(t, lines.Text(), "ok")
	assert.NilError(t, stdin.Close())
	assert.NilError(t, first.Wait(), "first agent: %s", stderr.String())
	r := openT(t, dir, Options{})
	_, ok := r.Get("alice")
	assert.Assert(t, ok)
}

// comm is the kernel's name for a process running binary path.
func comm(path string) string {
	name := filepath.Base(path)
	return name[:min(len(name), 15)]
}
