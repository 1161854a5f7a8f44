package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// writeInstances answers with ins as JSON: byte for byte what writeJSON
// sends (encode_test.go holds the two together), encoded without
// reflection into one buffer sized up front. With 10,000 instances
// json.Marshal was half the time of a list and most of its garbage.
func writeInstances(w http.ResponseWriter, ins []socketapi.Instance) {
	buf := listBufs.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= 16<<20 {
			listBufs.Put(buf)
		}
	}()
	b := slices.Grow((*buf)[:0], 64+len(ins)*400)
	b = appendInstances(b, ins)
	*buf = b
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// listBufs keeps list response buffers between calls: a fresh one of
// megabytes is zeroed at every allocation.
var listBufs = sync.Pool{New: func() any { return new([]byte) }}

// appendInstances appends the JSON of ins, as json.Marshal encodes it.
func appendInstances(b []byte, ins []socketapi.Instance) []byte {
	if ins == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range ins {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInstance(b, &ins[i])
	}
	return append(b, ']')
}

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
	b = append(b, `,"state":`...)
	b = appendString(b, in.State)
	if in.Health != "" {
		b = append(b, `,"health":`...)
		b = appendString(b, in.Health)
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(in.Port), 10)
	b = append(b, `,"url":`...)
	b = appendString(b, in.URL)
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
		keys := make([]string, 0, len(in.Labels))
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
