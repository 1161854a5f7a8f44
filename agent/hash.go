package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zaki-platform/zaki-agent/internal/atomicfile"
	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// The config hash tells whether a container was made from the spec a
// caller asks for now. It is HMAC-SHA-256, keyed with a per-host secret
// (hash.key in the state dir, created on first start, mode 0600), over a
// canonical encoding of the effective spec, so that map order never changes
// it and the secrets inside (env values, file contents) cannot be guessed
// from the label it is published in.
//
// The label's value is "v<version>-<hex>". The version names the encoding:
// an agent that changes the encoding bumps hashVersion and keeps the old
// encoder in hashers, so that an upgrade compares each container with the
// encoding it was labelled with and recreates none of them for that alone.
// A hash of unknown version (the platform's legacy registry: version 0)
// counts as matching: the container is kept until pruning replaces it.
//
// Version 2 covers the ID the image reference resolves to
// (effectiveSpec.ImageID), so that a tag rebuilt or pulled anew makes the
// instance's spec another one. Version 1 covered the reference alone; a
// container labelled with it is still compared by it (no recreate for the
// upgrade alone), and the agent also compares its container's image with
// what the reference resolves to (ensureLocked), so that a rebuilt tag
// makes it stale as well.

const hashVersion = 2

// hashers maps each supported hash version to its canonical encoding.
var hashers = map[int]func(effectiveSpec) []byte{
	1: func(e effectiveSpec) []byte {
		// encoding/json writes struct fields in declaration order and map
		// keys sorted: canonical for this struct (ImageID is not encoded).
		return mustJSON(e)
	},
	2: func(e effectiveSpec) []byte {
		return mustJSON(struct {
			Spec    effectiveSpec `json:"spec"`
			ImageID string        `json:"imageId"`
		}{e, e.ImageID})
	},
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

type hasher struct{ key []byte }

// loadHashKey reads the host's hash key from dir, creating it on first use.
func loadHashKey(dir string) (hasher, error) {
	p := filepath.Join(dir, "hash.key")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return hasher{}, err
		}
		if err := atomicfile.WriteFile(p, []byte(hex.EncodeToString(key)+"\n"), atomicfile.Options{Perm: 0o600}); err != nil {
			return hasher{}, fmt.Errorf("create hash key: %w", err)
		}
		return hasher{key: key}, nil
	}
	if err != nil {
		return hasher{}, fmt.Errorf("read hash key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		return hasher{}, errdefs.Errorf(errdefs.ErrDataLoss, "hash key %s is corrupt: want at least 16 bytes in hex; refusing to start (removing it would recreate every instance)", p)
	}
	return hasher{key: key}, nil
}

// sum returns the label value of e's hash under version v.
func (h hasher) sum(v int, e effectiveSpec) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write(hashers[v](e))
	var sum [sha256.Size]byte
	return "v" + strconv.Itoa(v) + "-" + hex.EncodeToString(mac.Sum(sum[:0]))
}

// current returns e's hash under the current version.
func (h hasher) current(e effectiveSpec) string { return h.sum(hashVersion, e) }

// matches reports whether a container labelled with hash was made from e,
// whose hash under the current version is cur (current(e), which the
// caller has: a label of the current version, the usual case, costs no
// second HMAC).
func (h hasher) matches(hash, cur string, e effectiveSpec) bool {
	v := parseHashVersion(hash)
	if _, ok := hashers[v]; !ok {
		return true // unknown encoding: keep the container (see above)
	}
	if v != hashVersion {
		cur = h.sum(v, e)
	}
	return hmac.Equal([]byte(hash), []byte(cur))
}

// parseHashVersion returns the version of a hash label value, 0 when it
// has none (legacy).
func parseHashVersion(hash string) int {
	rest, ok := strings.CutPrefix(hash, "v")
	if !ok {
		return 0
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(num)
	if err != nil {
		return 0
	}
	return v
}
