package envfile

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// prefix starts the name of every directory Write makes.
const prefix = "zaki-env-"

// Write writes env to a new env file in a private directory under dir
// (the system's temporary directory when empty) and returns its path and
// a function that removes it, which the caller defers. Keys and values
// must have passed runtime.ValidateEnvKey and ValidateEnvValue: a value
// cannot hold a line break.
func Write(dir string, env map[string]string) (path string, remove func(), err error) {
	d, err := os.MkdirTemp(tempDir(dir), prefix)
	if err != nil {
		return "", nil, err
	}
	remove = func() { os.RemoveAll(d) }
	path = filepath.Join(d, "env")
	if err := writeFile(path, env); err != nil {
		remove()
		return "", nil, err
	}
	return path, remove, nil
}

// writeFile writes env as an env file of mode 0600, one KEY=value a line
// in key order.
func writeFile(path string, env map[string]string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + "=" + env[k] + "\n")
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sweep removes the env-file directories under dir (the system's
// temporary directory when empty) older than age: those of creates that
// never finished. Plugins sharing a directory each make theirs afresh, so
// one older than any create can take is an orphan. It returns how many it
// removed.
func Sweep(dir string, age time.Duration) int {
	dir = tempDir(dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		if os.RemoveAll(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}

func tempDir(dir string) string {
	if dir != "" {
		return dir
	}
	return os.TempDir()
}
