package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode: the decoder never panics; what it accepts encodes and decodes
// back to the same registry; it returns an empty registry only for input
// that says so ("records": [] or "entries": []), and never for a cut file.
// Seeds: testdata/decode/*.json and testdata/fuzz/FuzzDecode.
//
//	go test ./registry -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob("testdata/decode/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/decode: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, err := decode(data)
		if err != nil {
			if s != nil {
				t.Fatalf("an error (%v) and a state", err)
			}
			return
		}
		if len(s.list) == 0 && !saysEmpty(data) {
			t.Fatalf("empty registry from input that does not say it is empty: %q", data)
		}
		// Canonical: encode, decode, encode gives the same bytes.
		enc := s.encode(nil)
		s2, legacy2, err := decode(enc)
		if err != nil || legacy2 {
			t.Fatalf("re-decoding %q: %v (legacy %v)", enc, err, legacy2)
		}
		if enc2 := s2.encode(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("not canonical:\n%s\n%s", enc, enc2)
		}
		// A cut file is an error.
		trimmed := bytes.TrimSpace(data)
		if cut := trimmed[:len(trimmed)/2]; len(cut) > 0 {
			if _, _, err := decode(cut); err == nil {
				t.Fatalf("%q (half of %q) decoded without error", cut, data)
			}
		}
	})
}

// saysEmpty reports whether data, read as generic JSON, holds an empty
// "records" or "entries" list (under any letter case, as encoding/json
// matches keys).
func saysEmpty(data []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false
	}
	for k, v := range m {
		if strings.EqualFold(k, "records") || strings.EqualFold(k, "entries") {
			var list []json.RawMessage
			if json.Unmarshal(v, &list) == nil && len(list) == 0 {
				return true
			}
		}
	}
	return false
}
