package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// writeInstances answers with the instances each hands its callback, as
// a JSON array: byte for byte what writeJSON sends for the same slice
// (encode_test.go holds the two together), encoded without reflection and
// without a copy of the list, as the agent walks it, into one pooled
// buffer. With 10,000 instances json.Marshal was half the time of a list
// and the []Instance most of its garbage.
func writeInstances(w http.ResponseWriter, each func(fn func(*socketapi.Instance)) error) error {
	buf := listBufs.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 16<<20 {
			listBufs.Put(buf)
		}
	}()
	// Sized by the last list: a pooled buffer does not outlive two
	// collections, and growing one of megabytes by doubling is garbage.
	b := slices.Grow((*buf)[:0], int(lastListBytes.Load())+4096)
	b = append(b, '[')
	first := true
	err := each(func(in *socketapi.Instance) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendInstance(b, in)
	})
	b = append(b, ']', '\n')
	*buf = b
	if err != nil {
		return err
	}
	lastListBytes.Store(int64(len(b)))
	writeBody(w, http.StatusOK, b)
	return nil
}

// writeInstance answers with one instance as JSON, byte for byte what
// writeJSON sends, without reflection: the hot path's answer (an ensure
// of a running instance, a touch).
func writeInstance(w http.ResponseWriter, status int, in *socketapi.Instance) {
	buf := instanceBufs.Get().(*[]byte)
	defer instanceBufs.Put(buf)
	b := append(appendInstance((*buf)[:0], in), '\n')
	*buf = b
	writeBody(w, status, b)
}

var instanceBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// listBufs keeps list response buffers between calls: a fresh one of
// megabytes is zeroed at every allocation.
var listBufs = sync.Pool{New: func() any { return new([]byte) }}

// lastListBytes is the size of the last list response.
var lastListBytes atomic.Int64

// appendInstance appends one Instance, its fields in declaration order
// with their tags' names and omitempty rules.
func appendInstance(b []byte, in *socketapi.Instance) []byte {
	b = append(b, `{"userId":`...)
	b = appendString(b, in.UserID)
	b = append(b, `,"containerName":`...)
	b = appendString(b, in.ContainerName)
	if in.ContainerID != "" {
		b = append(b, `,"containerId":`...)
		b = appendString(b, in.ContainerID)
	}
	b = append(b, `,"image":`...)
	b = appendString(b, in.Image)
	if in.ImageID != "" {
		b = append(b, `,"imageId":`...)
		b = appendString(b, in.ImageID)
	}
	b = append(b, `,"state":`...)
	b = appendString(b, in.State)
	if in.Health != "" {
		b = append(b, `,"health":`...)
		b = appendString(b, in.Health)
	}
	if in.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, in.Reason)
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(in.Port), 10)
	b = append(b, `,"url":`...)
	b = appendString(b, in.URL)
	if in.Node != "" {
		b = append(b, `,"node":`...)
		b = appendString(b, in.Node)
	}
	b = append(b, `,"createdAtMs":`...)
	b = strconv.AppendInt(b, in.CreatedAtMs, 10)
	b = append(b, `,"lastUsedAtMs":`...)
	b = strconv.AppendInt(b, in.LastUsedAtMs, 10)
	b = append(b, `,"configHash":`...)
	b = appendString(b, in.ConfigHash)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, in.Stale)
	if len(in.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		var small [8]string // most instances have a few labels: no allocation
		keys := small[:0]
		for k := range in.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, in.Labels[k])
		}
		b = append(b, '}')
	}
	if in.DataBytes != 0 {
		b = append(b, `,"dataBytes":`...)
		b = strconv.AppendInt(b, in.DataBytes, 10)
	}
	if in.Outcome != "" {
		b = append(b, `,"outcome":`...)
		b = appendString(b, in.Outcome)
	}
	return append(b, '}')
}

// appendString appends s quoted as json.Marshal quotes it. Strings of
// printable ASCII without the characters it escapes (", \, <, >, &), which
// are all the agent's IDs, names, hashes and URLs, are copied as they
// are; any other string goes through json.Marshal itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain holds the bytes json.Marshal copies as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
