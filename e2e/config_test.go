package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/agent/daemon"
	"github.com/zaki-platform/zaki-agent/internal/configkeys"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// commentedKey matches a commented-out key or table line: "#key = value",
// "#[table]".
var commentedKey = regexp.MustCompile(`^#(\[[A-Za-z.]+\]|[A-Za-z]+ = .*)$`)

// TestPackagedConfig checks the packaged /etc/zaki-agent/config.toml: with
// its commented keys switched on, it sets every key of daemon.Config, and
// nothing else, to the agent's own default, and each key has a comment of
// its own right above it.
func TestPackagedConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "packaging", "config.toml"))
	assert.NilError(t, err)
	lines := strings.Split(string(b), "\n")
	on := make([]string, len(lines))
	for i, l := range lines {
		if !commentedKey.MatchString(l) {
			continue
		}
		on[i] = strings.TrimPrefix(l, "#")
		if !strings.HasPrefix(l, "#[") {
			assert.Check(t, i > 0 && strings.HasPrefix(lines[i-1], "# "),
				"line %d %q: no comment right above it", i+1, l)
		}
	}

	var got daemon.Config
	md, err := toml.Decode(strings.Join(on, "\n"), &got)
	assert.NilError(t, err)
	assert.Check(t, is.Len(md.Undecoded(), 0), "keys the agent does not know: %v", md.Undecoded())
	configkeys.Each(&got, "", func(key string, _ reflect.Value, _ reflect.StructField) {
		assert.Check(t, md.IsDefined(strings.Split(key, ".")...), "key %s is not documented", key)
	})
	assert.Check(t, is.DeepEqual(got, daemon.DefaultConfig()))
}
