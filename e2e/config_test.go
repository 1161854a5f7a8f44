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

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// commentedKey matches a commented-out key or table line: "#key = value",
// "#[table]".
var commentedKey = regexp.MustCompile(`^#(\[[A-Za-z.]+\]|[A-Za-z]+ = .*)$`)

// TestPackagedConfig checks the packaged /etc/zaki-agent/config.toml: with
// its commented keys switched on, it sets every key of agent.Config, and
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

	var got agent.Config
	md, err := toml.Decode(strings.Join(on, "\n"), &got)
	assert.NilError(t, err)
	assert.Check(t, is.Len(md.Undecoded(), 0), "keys the agent does not know: %v", md.Undecoded())
	for _, key := range configKeys("", reflect.TypeOf(got)) {
		assert.Check(t, md.IsDefined(key...), "key %s is not documented", strings.Join(key, "."))
	}
	assert.Check(t, is.DeepEqual(got, agent.DefaultConfig()))
}

// configKeys lists the TOML paths of every leaf field of a config struct.
func configKeys(prefix string, t reflect.Type) [][]string {
	var keys [][]string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" {
			continue
		}
		path := strings.TrimPrefix(prefix+"."+name, ".")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, configKeys(path, f.Type)...)
			continue
		}
		keys = append(keys, strings.Split(path, "."))
	}
	return keys
}
