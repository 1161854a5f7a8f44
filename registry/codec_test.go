package registry

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

// The file format, as the golden file shows it (refresh with -update).
func TestFileFormat(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, Options{})
	alice := rec("alice", 18790)
	alice.Labels = map[string]string{"plan": "pro", "team": `q"uote`}
	bob := rec("bob", 18791)
	bob.State, bob.DesiredHash, bob.Labels, bob.ContainerID = "stopped", "h-new", nil, ""
	_, err := r.ReservePort("carol", 18792, 18800)
	assert.NilError(t, err)
	assert.NilError(t, r.Put(bob, alice))
	r.Touch("alice", 1_700_000_360_000)
	assert.NilError(t, r.Flush())
	golden.Assert(t, string(readFile(t, filepath.Join(dir, FileName))), "registry-v1.golden.json")

	// The golden file decodes to what was written, and encodes back to itself.
	s, legacy, err := decode(golden.Get(t, "registry-v1.golden.json"))
	assert.NilError(t, err)
	assert.Assert(t, !legacy)
	assert.Equal(t, string(s.encode(nil)), string(golden.Get(t, "registry-v1.golden.json")))
}

func TestDecodeFiles(t *testing.T) {
	for _, tc := range []struct {
		file    string
		records int
		legacy  bool
		wantErr string
	}{
		{file: "v1.json", records: 2},
		{file: "v1-empty.json", records: 0},
		{file: "legacy.json", records: 2, legacy: true},
		{file: "legacy-empty.json", records: 0, legacy: true},
		{file: "corrupt-truncated.json", wantErr: "line 2, column 176: unexpected EOF"},
		{file: "corrupt-zeros.json", wantErr: "line 1, column 1: invalid character '\\x00' looking for beginning of value"},
		{file: "corrupt-garbage.json", wantErr: "line 1, column 2: invalid character 'o' in literal null (expecting 'u')"},
		{file: "future-version.json", wantErr: "schema version 2 is newer than this agent understands (1)"},
		{file: "missing-ports.json", wantErr: `"ports" is missing`},
		{file: "unknown-field.json", wantErr: `json: unknown field "extra"`},
		{file: "port-twice.json", wantErr: `ports: port 18790 is reserved by both "a" and "b"`},
		{file: "port-mismatch.json", wantErr: `records[0]: user "a" has port 18791, but its reservation is 18790`},
		{file: "bad-user-id.json", wantErr: `records[0]: invalid user id "../etc"`},
		{file: "legacy-port-twice.json", wantErr: `entries[1]: port 18790 is claimed by both "a" and "b"`},
		{file: "legacy-user-twice.json", wantErr: `entries[1]: user "a" appears twice`},
		{file: "not-object.json", wantErr: "cannot unmarshal array"},
		{file: "null.json", wantErr: `not a registry file: no "version" field (nor a legacy "entries" list)`},
		{file: "empty-object.json", wantErr: `not a registry file`},
		{file: "trailing.json", wantErr: "line 1, column 39: data after the end of the registry"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s, legacy, err := decode(readFile(t, filepath.Join("testdata", "decode", tc.file)))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Assert(t, s == nil)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, len(s.list), tc.records)
			assert.Equal(t, legacy, tc.legacy)
		})
	}
}

// A file cut anywhere is an error, never a smaller (or empty) registry.
func TestDecodeRefusesEveryTruncation(t *testing.T) {
	for _, name := range []string{"v1.json", "legacy.json", "v1-empty.json"} {
		data := bytes.TrimSpace(readFile(t, filepath.Join("testdata", "decode", name)))
		for n := 1; n < len(data); n++ {
			if _, _, err := decode(data[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes decoded without error", name, n, len(data))
			}
		}
	}
}

// A corrupt registry.json stops Open with an error naming the file and the
// problem, and stays byte for byte as it was; an empty one counts as missing.
func TestOpenCorruptOrEmptyFile(t *testing.T) {
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{name: "truncated", content: `{"version":1,"records":[{"userId":"a"`, wantErr: "is corrupt: line 1, column 38: unexpected EOF"},
		{name: "zeros", content: "\x00\x00\x00\x00", wantErr: "is corrupt: line 1, column 1: invalid character"},
		{name: "newer", content: `{"version":9,"records":[],"ports":{}}`, wantErr: "is corrupt: schema version 9 is newer"},
		{name: "empty", content: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			assert.NilError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			r, err := Open(dir, Options{Logger: quiet})
			if tc.wantErr == "" {
				assert.NilError(t, err)
				assert.Equal(t, r.Len(), 0)
				assert.NilError(t, r.Close())
				return
			}
			assert.ErrorIs(t, err, ErrCorrupt)
			assert.ErrorContains(t, err, "registry file "+path+" "+tc.wantErr)
			assert.ErrorContains(t, err, "left as it is")
			assert.Equal(t, string(readFile(t, path)), tc.content)
			// The lock was released: the dir can be opened once the file is fixed.
			assert.NilError(t, os.Remove(path))
			r, err = Open(dir, Options{Logger: quiet})
			assert.NilError(t, err)
			assert.NilError(t, r.Close())
		})
	}
}
