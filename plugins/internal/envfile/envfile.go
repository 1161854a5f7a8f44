package envfile

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Path is where the client reads the file Open returns, passed as its
// first extra descriptor (exec.Cmd.ExtraFiles[0] is descriptor 3).
const Path = "/dev/fd/3"

// Open returns an in-memory file holding env, one KEY=value a line in key
// order, read from its start and sealed against any change; the caller
// passes it to the client as its first extra file and closes it when the
// client has exited. Keys and values must have passed
// runtime.ValidateEnvKey and ValidateEnvValue: a value cannot hold a line
// break.
func Open(env map[string]string) (*os.File, error) {
	fd, err := unix.MemfdCreate("zaki-env", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "zaki-env")
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + "=" + env[k] + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	// Sealed: not even the client could change what the next reader sees.
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd seal: %w", err)
	}
	// The client opens /dev/fd/3 afresh (a new offset); the offset is reset
	// anyway for a reader of the descriptor itself.
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	return f, nil
}
