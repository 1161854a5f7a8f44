package registry

import (
	"encoding/json"
	"sync/atomic"
	"unicode/utf8"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Record is what the registry knows about one user's instance.
type Record struct {
	UserID        string
	ContainerName string
	ContainerID   string
	Image         string
	// Port is the host port, which must be the user's reservation (see
	// ReservePort); 0 when the record has none.
	Port int
	// UID is the uid (and gid) the container runs as, which must be the
	// user's reservation (see ReserveUID); 0 when the container runs as
	// the fixed instance.user (or was made before uids per tenant).
	UID int
	// ConfigHash is the hash of the spec the existing container was created
	// with, HashVersion the version of the canonical encoding that produced
	// it (0: imported from the legacy registry, encoding unknown).
	ConfigHash  string
	HashVersion int
	// DesiredHash is set when a hot instance was kept with an older config
	// (stale); empty otherwise.
	DesiredHash string
	// Renew is set when the instance outlived the maximum age while hot:
	// it is kept, and made anew at its next cold moment.
	Renew bool
	// State is the last known state: "running", "stopped", "missing", ...;
	// empty when unknown (an imported legacy entry).
	State string
	// Labels are the caller's labels from the spec (an empty map reads back
	// as nil).
	Labels      map[string]string
	CreatedAtMs int64
	// LastUsedAtMs never goes backwards while the record exists: Touch and
	// Put keep the later of the new value and the one already known.
	LastUsedAtMs int64
}

// ValidateUserID reports whether id can name a user: it must match
// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$, so that it is safe in a file name, a
// container name and a label. The error is of class ErrInvalid.
func ValidateUserID(id string) error {
	if !validUserID(id) {
		return errdefs.Errorf(ErrInvalid, "invalid user id %q: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", id)
	}
	return nil
}

func validUserID(id string) bool { return validName(id, 63) }

// validName reports whether s has 1 to most characters of [A-Za-z0-9_.-],
// the first a letter or a digit (user ids and node names alike).
func validName(s string, most int) bool {
	if len(s) == 0 || len(s) > most {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validate checks what must hold before rec goes to disk: a valid user ID, a
// port in range, and text that survives a JSON round trip unchanged.
func (rec *Record) validate() error {
	if err := ValidateUserID(rec.UserID); err != nil {
		return err
	}
	if rec.Port < 0 || rec.Port > 65535 {
		return errdefs.Errorf(ErrInvalid, "record %q: port %d out of range", rec.UserID, rec.Port)
	}
	if rec.UID < 0 || rec.UID > MaxUID {
		return errdefs.Errorf(ErrInvalid, "record %q: uid %d out of range", rec.UserID, rec.UID)
	}
	if rec.HashVersion < 0 {
		return errdefs.Errorf(ErrInvalid, "record %q: negative hash version %d", rec.UserID, rec.HashVersion)
	}
	for name, s := range map[string]string{
		"container name": rec.ContainerName, "container id": rec.ContainerID, "image": rec.Image,
		"config hash": rec.ConfigHash, "desired hash": rec.DesiredHash, "state": rec.State,
	} {
		if !utf8.ValidString(s) {
			return errdefs.Errorf(ErrInvalid, "record %q: %s is not valid UTF-8", rec.UserID, name)
		}
	}
	for k, v := range rec.Labels {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return errdefs.Errorf(ErrInvalid, "record %q: label %q is not valid UTF-8", rec.UserID, k)
		}
	}
	return nil
}

// fileRecord is a Record as registry.json spells it. LastUsedAtMs comes
// last: entry.prefix caches everything before its value.
type fileRecord struct {
	UserID        string            `json:"userId"`
	ContainerName string            `json:"containerName"`
	ContainerID   string            `json:"containerId,omitempty"`
	Image         string            `json:"image"`
	Port          int               `json:"port"`
	UID           int               `json:"uid,omitempty"`
	ConfigHash    string            `json:"configHash,omitempty"`
	HashVersion   int               `json:"hashVersion"`
	DesiredHash   string            `json:"desiredHash,omitempty"`
	Renew         bool              `json:"renew,omitempty"`
	State         string            `json:"state,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	CreatedAtMs   int64             `json:"createdAtMs"`
	LastUsedAtMs  int64             `json:"lastUsedAtMs"`
}

// entry is one record in a snapshot. Everything but lastUsed is immutable,
// so snapshots share entries; lastUsed is what Touch moves, without a lock.
type entry struct {
	rec      Record // rec.LastUsedAtMs is unused: see lastUsed
	prefix   []byte // the record's JSON up to and including `"lastUsedAtMs":`
	lastUsed atomic.Int64
}

func newEntry(rec Record) *entry {
	rec.Labels = cloneLabels(rec.Labels)
	b, err := json.Marshal(fileRecord{
		UserID: rec.UserID, ContainerName: rec.ContainerName, ContainerID: rec.ContainerID,
		Image: rec.Image, Port: rec.Port, UID: rec.UID, ConfigHash: rec.ConfigHash, HashVersion: rec.HashVersion,
		DesiredHash: rec.DesiredHash, Renew: rec.Renew, State: rec.State, Labels: rec.Labels, CreatedAtMs: rec.CreatedAtMs,
	})
	if err != nil {
		panic("registry: encode record: " + err.Error()) // strings, ints and a string map always encode
	}
	// b ends with `"lastUsedAtMs":0}`: keep everything before the 0.
	cut := len(b) - len("0}")
	e := &entry{rec: rec, prefix: b[:cut:cut]}
	e.rec.LastUsedAtMs = 0
	e.lastUsed.Store(rec.LastUsedAtMs)
	return e
}

// raise moves lastUsed to at when at is later, and reports whether it did.
func (e *entry) raise(at int64) bool {
	for {
		cur := e.lastUsed.Load()
		if at <= cur {
			return false
		}
		if e.lastUsed.CompareAndSwap(cur, at) {
			return true
		}
	}
}

// record returns a copy the caller may keep and change.
func (e *entry) record() Record {
	rec := e.rec
	rec.Labels = cloneLabels(rec.Labels)
	rec.LastUsedAtMs = e.lastUsed.Load()
	return rec
}

func cloneLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
