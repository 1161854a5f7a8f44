package registry

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// childEnv selects a child mode: the tests run their own binary as the
// other process (crash writer, lock holder, second agent).
const childEnv = "ZAKI_REGISTRY_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "crash":
		os.Exit(crashChild())
	case "hold":
		os.Exit(holdChild())
	case "open":
		os.Exit(openChild())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// openT opens dir (a new temp dir when empty) and closes it at cleanup.
func openT(t testing.TB, dir string, opts Options) *Registry {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	r, err := Open(dir, opts)
	assert.NilError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func rec(id string, port int) Record {
	return Record{
		UserID: id, ContainerName: "zaki-user-" + id, ContainerID: "c-" + id,
		Image: "zaki/gateway-stub:latest", Port: port, ConfigHash: "h-" + id, HashVersion: 1,
		State: "running", Labels: map[string]string{"plan": "pro"},
		CreatedAtMs: 1_700_000_000_000, LastUsedAtMs: 1_700_000_000_000,
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	return b
}

// decodeFile decodes the registry file of dir.
func decodeFile(t testing.TB, dir string) *state {
	t.Helper()
	s, legacy, err := decode(readFile(t, filepath.Join(dir, FileName)))
	assert.NilError(t, err)
	assert.Assert(t, !legacy)
	return s
}

// temps lists the temp files in dir.
func temps(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+tmpInfix+"*"))
	assert.NilError(t, err)
	return m
}

// holdChild opens the state dir, says "locked <pid>", and then obeys stdin:
// "put <id>" puts a record and answers "ok" or the error; EOF closes.
func holdChild() int {
	r, err := Open(os.Getenv("ZAKI_REGISTRY_DIR"), Options{Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("locked %d\n", os.Getpid())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "put ")
		if !ok {
			fmt.Println("bad command:", sc.Text())
			continue
		}
		if err := r.Put(rec(id, 0)); err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("ok")
		}
	}
	if err := r.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// openChild is a second agent: it opens the state dir and exits, 1 with the
// error on stderr when Open fails.
func openChild() int {
	r, err := Open(os.Getenv("ZAKI_REGISTRY_DIR"), Options{Logger: quiet, FlushInterval: time.Millisecond})
	if err != nil {
		fmt.Fprintf(os.Stderr, "zaki-agent: %v\n", err)
		return 1
	}
	r.Close()
	return 0
}
