package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// script writes an executable shell script named name into dir. The
// wrapper under test never uses a shell; the stand-in commands do.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	assert.NilError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestRunCapturesOutputAndExitCode(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `
case "$1" in
ok)   printf 'out1\nout2\n'; printf 'warn\n' >&2 ;;
fail) printf 'partial\n'; printf 'Error: No such thing: x\n\nUsage:  fake fail\n\nRun more help\n' >&2; exit 3 ;;
esac`)
	var classified string
	r := New(Config{Binary: bin, Classify: func(stderr string) error {
		classified = stderr
		if strings.Contains(stderr, "No such thing") {
			return runtime.ErrNotFound
		}
		return nil
	}})

	res, err := r.Run(t.Context(), "ok")
	assert.NilError(t, err)
	assert.Equal(t, string(res.Stdout), "out1\nout2\n")
	assert.Equal(t, string(res.Stderr), "warn\n")
	assert.Equal(t, res.ExitCode, 0)
	assert.Equal(t, classified, "", "classify runs only on failure")

	res, err = r.Run(t.Context(), "fail", "secret-arg")
	var ee *ExitError
	assert.Assert(t, errors.As(err, &ee), "got %v", err)
	assert.Equal(t, ee.ExitCode, 3)
	assert.Equal(t, res.ExitCode, 3)
	assert.Equal(t, ee.Command, "fake fail")
	assert.Equal(t, ee.Stderr, "Error: No such thing: x")
	assert.Assert(t, errors.Is(err, runtime.ErrNotFound))
	assert.Equal(t, string(res.Stdout), "partial\n", "stdout of a failed command is kept")
	assert.Assert(t, strings.Contains(classified, "Usage:"), "classify sees the full stderr")
	assert.Assert(t, !strings.Contains(err.Error(), "secret-arg"), "error names only argv[0..1]: %v", err)
	assert.Equal(t, err.Error(), "fake fail: exit status 3: Error: No such thing: x")
}

func TestRunPassesArgvVerbatim(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `for a in "$@"; do printf '[%s]\n' "$a"; done`)
	r := New(Config{Binary: bin})
	args := []string{"a b", "$(touch " + filepath.Join(dir, "pwned") + ")", "; echo no", "'\"", "*", "-x", ""}
	res, err := r.Run(t.Context(), args...)
	assert.NilError(t, err)
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]\n")
	}
	assert.Equal(t, string(res.Stdout), want.String())
	_, err = os.Stat(filepath.Join(dir, "pwned"))
	assert.Assert(t, errors.Is(err, os.ErrNotExist), "no shell ever expands an argument")
}

func TestRunEnvReachesChildButNeverErrors(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `printf '%s' "$ZAKI_TEST_SECRET"; printf 'failed\n' >&2; exit 1`)
	r := New(Config{Binary: bin, Env: []string{"ZAKI_TEST_SECRET=s3cr3t-value"}})
	res, err := r.Run(t.Context(), "x")
	assert.Assert(t, err != nil)
	assert.Equal(t, string(res.Stdout), "s3cr3t-value")
	assert.Assert(t, !strings.Contains(err.Error(), "s3cr3t"), "error text holds no env: %v", err)
}

// TestRunFiles: the files given are the child's descriptors 3, 4, ...,
// readable by path as /dev/fd/N; without them, no descriptor 3.
func TestRunFiles(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `cat /dev/fd/3 /dev/fd/4`)
	files := make([]*os.File, 2)
	for i, text := range []string{"three\n", "four\n"} {
		p := filepath.Join(dir, strconv.Itoa(i))
		assert.NilError(t, os.WriteFile(p, []byte(text), 0o600))
		f, err := os.Open(p)
		assert.NilError(t, err)
		defer f.Close()
		files[i] = f
	}
	r := New(Config{Binary: bin})
	res, err := r.RunFiles(t.Context(), files, "x")
	assert.NilError(t, err)
	assert.Equal(t, string(res.Stdout), "three\nfour\n")
	_, err = r.Run(t.Context(), "x")
	assert.Assert(t, err != nil, "descriptor 3 inherited without RunFiles")
}

func TestRunCaps(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `
i=0
while [ $i -lt 200 ]; do printf '0123456789012345678901234567890123456789012345678901234567890123\n'; printf 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\n' >&2; i=$((i+1)); done
exit ${1:-0}`)
	t.Run("stdout past the cap fails the call", func(t *testing.T) {
		r := New(Config{Binary: bin, MaxStdout: 1000, MaxStderr: 100})
		res, err := r.Run(t.Context())
		assert.Assert(t, errors.Is(err, ErrOutputTooLarge), "got %v", err)
		assert.Equal(t, len(res.Stdout), 1000)
		assert.Assert(t, res.StdoutTruncated)
		assert.Equal(t, len(res.Stderr), 100)
		assert.Assert(t, res.StderrTruncated)
	})
	t.Run("stderr past the cap is dropped quietly", func(t *testing.T) {
		r := New(Config{Binary: bin, MaxStderr: 100})
		res, err := r.Run(t.Context())
		assert.NilError(t, err)
		assert.Equal(t, len(res.Stdout), 200*65)
		assert.Equal(t, len(res.Stderr), 100)
	})
	t.Run("a failure keeps the capped stderr", func(t *testing.T) {
		r := New(Config{Binary: bin, MaxStderr: 100})
		_, err := r.Run(t.Context(), "4")
		var ee *ExitError
		assert.Assert(t, errors.As(err, &ee))
		assert.Equal(t, ee.ExitCode, 4)
		assert.Assert(t, len(ee.Stderr) <= 100+2, "the 100 kept bytes, lines joined with \"; \": %d", len(ee.Stderr))
	})
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// hanging writes a stand-in that starts a grandchild, records both pids in
// pidfile and hangs.
func hanging(t *testing.T) (bin, pidfile string) {
	dir := t.TempDir()
	pidfile = filepath.Join(dir, "pids")
	bin = script(t, dir, "hang", `
sleep 300 &
echo $! > `+pidfile+`.tmp
echo $$ >> `+pidfile+`.tmp
mv `+pidfile+`.tmp `+pidfile+`
printf 'started\n'
exec sleep 300`)
	return bin, pidfile
}

func readPids(t *testing.T, pidfile string) []int {
	t.Helper()
	var pids []int
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return poll.Continue("no pid file yet")
		}
		for f := range strings.FieldsSeq(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return poll.Error(err)
			}
			pids = append(pids, n)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(10*time.Millisecond))
	return pids
}

func assertAllDead(t *testing.T, pids []int) {
	t.Helper()
	assert.Equal(t, len(pids), 2)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		for _, p := range pids {
			if alive(p) {
				return poll.Continue("pid %d still alive", p)
			}
		}
		return poll.Success()
	}, poll.WithTimeout(2*time.Second), poll.WithDelay(10*time.Millisecond))
}

func TestRunTimeoutKillsTheGroup(t *testing.T) {
	bin, pidfile := hanging(t)
	r := New(Config{Binary: bin})
	// The deadline leaves the script time to start its child and write
	// the pid file, even on a loaded machine.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, "sub")
	elapsed := time.Since(start)
	assert.Assert(t, errors.Is(err, runtime.ErrTimeout), "got %v", err)
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded))
	assert.Equal(t, runtime.Class(err), runtime.ErrTimeout)
	assert.Assert(t, strings.HasPrefix(err.Error(), "hang sub: "), err.Error())
	// Bounded: the deadline plus the kill, far below the children's 300 s.
	assert.Assert(t, elapsed < 10*time.Second, "Run returned after %v", elapsed)
	assertAllDead(t, readPids(t, pidfile))
}

func TestRunCancelIsCanceled(t *testing.T) {
	bin, pidfile := hanging(t)
	r := New(Config{Binary: bin})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx)
		done <- err
	}()
	pids := readPids(t, pidfile)
	cancel()
	select {
	case err := <-done:
		assert.Assert(t, errors.Is(err, context.Canceled), "got %v", err)
		assert.Assert(t, !errors.Is(err, runtime.ErrTimeout))
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3 s of the cancel")
	}
	assertAllDead(t, pids)
}

func TestRunDoneContextStartsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bin := script(t, dir, "fake", "touch "+marker)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New(Config{Binary: bin}).Run(ctx)
	assert.Assert(t, errors.Is(err, context.Canceled))
	_, err = os.Stat(marker)
	assert.Assert(t, errors.Is(err, os.ErrNotExist))
}

func TestBinaryLookedUpOnPathAtEachCall(t *testing.T) {
	dir := t.TempDir()
	r := New(Config{Binary: "zaki-cli-test-fake"})
	t.Setenv("PATH", "/nonexistent")
	_, err := r.Run(t.Context(), "version")
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	assert.Assert(t, is.ErrorContains(err, "zaki-cli-test-fake version"))

	script(t, dir, "zaki-cli-test-fake", `echo found`)
	t.Setenv("PATH", dir)
	res, err := r.Run(t.Context(), "version")
	assert.NilError(t, err)
	assert.Equal(t, string(res.Stdout), "found\n")
}

func TestUnrunnableBinaryIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notexec")
	assert.NilError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644))
	for _, bin := range []string{p, filepath.Join(dir, "missing")} {
		_, err := New(Config{Binary: bin}).Run(t.Context(), "x")
		assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "%s: got %v", bin, err)
		_, err = New(Config{Binary: bin}).Stream(t.Context(), StreamOptions{}, "x")
		assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "%s: got %v", bin, err)
	}
}

func TestTrimStderr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Error response from daemon: No such container: x\n", "Error response from daemon: No such container: x"},
		{"a\n\nb\n", "a; b"},
		{"invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'\n\nUsage:  docker create [OPTIONS] IMAGE\n\nRun 'docker create --help' for more information\n",
			"invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'"},
		{strings.Repeat("é", 400), strings.Repeat("é", 256) + "…"},
	} {
		assert.Equal(t, TrimStderr([]byte(tc.in)), tc.want)
	}
}

func TestStreamLines(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `
case "$1" in
ok)   printf 'one\ntwo\r\nlast-without-newline' ;;
fail) printf 'one\n'; printf 'Error: engine gone\n' >&2; exit 1 ;;
long) printf 'short\n'; head -c 5000 /dev/zero | tr '\0' 'x'; printf '\nafter\n' ;;
esac`)
	r := New(Config{Binary: bin, Classify: func(s string) error {
		if strings.Contains(s, "engine gone") {
			return runtime.ErrUnavailable
		}
		return nil
	}})
	read := func(s *Stream) ([]string, error) {
		var lines []string
		for {
			l, err := s.ReadLine()
			if errors.Is(err, ErrLineTooLong) {
				lines = append(lines, "<too long>")
				continue
			}
			if err != nil {
				return lines, err
			}
			lines = append(lines, string(l))
		}
	}

	s, err := r.Stream(t.Context(), StreamOptions{}, "ok")
	assert.NilError(t, err)
	lines, err := read(s)
	assert.Equal(t, err, io.EOF)
	assert.DeepEqual(t, lines, []string{"one", "two", "last-without-newline"})
	assert.NilError(t, s.Close())

	s, err = r.Stream(t.Context(), StreamOptions{}, "fail")
	assert.NilError(t, err)
	lines, err = read(s)
	assert.DeepEqual(t, lines, []string{"one"})
	assert.Assert(t, errors.Is(err, runtime.ErrUnavailable), "got %v", err)
	var ee *ExitError
	assert.Assert(t, errors.As(err, &ee))
	assert.Equal(t, ee.Stderr, "Error: engine gone")
	assert.NilError(t, s.Close())

	s, err = r.Stream(t.Context(), StreamOptions{MaxLine: 100}, "long")
	assert.NilError(t, err)
	lines, err = read(s)
	assert.Equal(t, err, io.EOF)
	assert.DeepEqual(t, lines, []string{"short", "<too long>", "after"})
	assert.NilError(t, s.Close())
}

func TestStreamMergeStderr(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, dir, "fake", `printf 'o1\n'; printf 'e1\n' >&2; printf 'o2\n'; printf 'e2\n' >&2`)
	s, err := New(Config{Binary: bin}).Stream(t.Context(), StreamOptions{MergeStderr: true}, "logs")
	assert.NilError(t, err)
	defer s.Close()
	b, err := io.ReadAll(s)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "o1\ne1\no2\ne2\n")
}

func TestStreamCloseKillsTheGroup(t *testing.T) {
	bin, pidfile := hanging(t)
	s, err := New(Config{Binary: bin}).Stream(t.Context(), StreamOptions{}, "events")
	assert.NilError(t, err)
	l, err := s.ReadLine()
	assert.NilError(t, err)
	assert.Equal(t, string(l), "started")
	pids := readPids(t, pidfile)

	got := make(chan error, 1)
	go func() {
		_, err := s.ReadLine()
		got <- err
	}()
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case err := <-got:
		assert.Equal(t, err, io.EOF, "a closed stream ends with io.EOF")
	case <-time.After(3 * time.Second):
		t.Fatal("a blocked ReadLine did not return within 3 s of Close")
	}
	<-closed
	assertAllDead(t, pids)
	assert.NilError(t, s.Close(), "Close twice")
}

func TestStreamContextEndKillsTheGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ctx   func(context.Context) (context.Context, context.CancelFunc)
		check func(t *testing.T, err error)
		// cancelAfterStart: the test cancels once the first line is read.
		cancelAfterStart bool
	}{
		// The deadline leaves the script time to start and say so.
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 2*time.Second)
		}, func(t *testing.T, err error) { assert.Assert(t, errors.Is(err, runtime.ErrTimeout), "got %v", err) }, false},
		{"cancel", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(ctx)
		}, func(t *testing.T, err error) { assert.Assert(t, errors.Is(err, context.Canceled), "got %v", err) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, pidfile := hanging(t)
			ctx, cancel := tc.ctx(t.Context())
			defer cancel()
			s, err := New(Config{Binary: bin}).Stream(ctx, StreamOptions{}, "logs")
			assert.NilError(t, err)
			defer s.Close()
			pids := readPids(t, pidfile)
			_, err = s.ReadLine()
			assert.NilError(t, err)
			if tc.cancelAfterStart {
				cancel()
			}
			_, err = s.ReadLine()
			tc.check(t, err)
			assertAllDead(t, pids)
		})
	}
}

// TestChildDiesWithItsParent: a process that runs a stream (a plugin
// running `docker events`) and is SIGKILLed leaves no child behind.
func TestChildDiesWithItsParent(t *testing.T) {
	if os.Getenv("ZAKI_CLI_HELPER") != "" {
		// The helper: start the stream, then wait to be killed.
		s, err := New(Config{Binary: os.Getenv("ZAKI_CLI_HELPER")}).Stream(context.Background(), StreamOptions{}, "events")
		if err != nil {
			t.Fatal(err)
		}
		s.ReadLine()
		time.Sleep(time.Minute)
		return
	}
	bin, pidfile := hanging(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithItsParent$")
	helper.Env = append(os.Environ(), "ZAKI_CLI_HELPER="+bin)
	assert.NilError(t, helper.Start())
	defer helper.Process.Kill()
	pids := readPids(t, pidfile)
	assert.NilError(t, helper.Process.Signal(syscall.SIGKILL))
	helper.Wait()
	// The direct child (the second pid) gets SIGKILL from the kernel; the
	// grandchild is not the wrapper's to reap.
	child := pids[1]
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if alive(child) {
			return poll.Continue("child %d still alive", child)
		}
		return poll.Success()
	}, poll.WithTimeout(2*time.Second), poll.WithDelay(10*time.Millisecond))
	syscall.Kill(pids[0], syscall.SIGKILL) // the orphaned grandchild
}
