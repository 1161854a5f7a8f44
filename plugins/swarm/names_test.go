package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestServiceName(t *testing.T) {
	long := "zaki-user-" + strings.Repeat("a", 60)
	for _, tc := range []struct {
		name, want string
	}{
		{"zaki-user-u1", "zaki-user-u1"},
		{"zaki-user-U_1", "zaki-user-U_1"},
		{"zaki-user-a.b", "zaki-user-a-b-" + hash10("zaki-user-a.b")},
		{"zaki-user-a-b", "zaki-user-a-b"},
		{"a.", "a-" + hash10("a.")},
		{"a__", "a-" + hash10("a__")},
		{"...", "zaki-" + hash10("...")},
		{long, long[:maxServiceName-1-hashLen] + "-" + hash10(long)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serviceName(tc.name)
			assert.Check(t, is.Equal(got, tc.want))
			assert.Check(t, len(got) <= maxServiceName, "%q: %d characters", got, len(got))
			assert.Check(t, serviceNameRE.MatchString(got), "%q: not a swarm service name", got)
			assert.Check(t, is.Equal(serviceName(tc.name), got), "not deterministic")
		})
	}
	// Names that read alike map apart.
	assert.Check(t, serviceName("zaki-user-a.b") != serviceName("zaki-user-a..b"))
	assert.Check(t, serviceName(long+"x") != serviceName(long+"y"))
}

// hash10 is the first 10 hex digits of the SHA-256 of s.
func hash10(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:10]
}
