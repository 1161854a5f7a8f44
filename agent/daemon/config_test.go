package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/fs"

	"github.com/zaki-platform/zaki-agent/internal/configkeys"
)

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg := DefaultConfig()
	assert.NilError(t, cfg.Validate())
}

func TestConfigPrecedence(t *testing.T) {
	dir := fs.NewDir(t, "cfg", fs.WithFile("config.toml", `
stateDir = "/srv/zaki"
logFormat = "json"
[instance]
image = "zaki/gateway-stub:latest"
allowedImages = ["zaki/*"]
[instance.resources]
memory = "1g"
cpuShares = 256
[prune]
idleHours = 12
`))
	file := dir.Join("config.toml")
	cfg, used, err := ConfigFromArgs("zaki-agent", []string{"--config", file, "--instance.resources.memory=512m", "--prune.idleHours", "6", "--instance.allowed-images", "a/*,b/*"}, nil)
	assert.NilError(t, err)
	assert.Equal(t, used, file)
	assert.Equal(t, cfg.StateDir, "/srv/zaki")                    // file
	assert.Equal(t, cfg.LogFormat, "json")                        // file
	assert.Equal(t, cfg.Instance.Resources.Memory, "512m")        // flag wins
	assert.Equal(t, cfg.Instance.Resources.CPUShares, int64(256)) // file
	assert.Equal(t, cfg.Prune.IdleHours, 6.0)                     // camelCase flag
	assert.DeepEqual(t, cfg.Instance.AllowedImages, []string{"a/*", "b/*"})
	assert.Equal(t, cfg.Socket, "/run/zaki-agent/agent.sock") // default
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		args []string
		want string
	}{
		"unknown key":       {file: "stateDri = \"/x\"\n", want: "unknown keys: stateDri"},
		"unknown table":     {file: "[instanc]\nimage = \"x\"\n", want: "unknown keys"},
		"bad toml":          {file: "socket = \n", want: "config"},
		"unconfined":        {file: "[instance.security]\nseccompProfile = \"unconfined\"\n", want: "refused"},
		"root user":         {file: "[instance]\nuser = \"0:0\"\n", want: "never run as root"},
		"bad range":         {file: "[instance]\nportRange = \"80-90\"\n", want: "portRange"},
		"uid range 0":       {file: "[instance]\nuidRange = \"0-100\"\n", want: "instance.uidRange: \"0-100\": uid 0 is root"},
		"uid range huge":    {file: "[instance]\nuidRange = \"1-2000000000\"\n", want: "instance.uidRange: \"1-2000000000\": 2000000000 uids, want at most 16777216"},
		"uid range 32 bits": {file: "[instance]\nuidRange = \"4294967000-4294967295\"\n", want: "want uids of at most 2147483647"},
		"uid range words":   {file: "[instance]\nuidRange = \"many\"\n", want: "instance.uidRange: \"many\": want lo-hi"},
		"uid range reverse": {file: "[instance]\nuidRange = \"300-200\"\n", want: "instance.uidRange: \"300-200\": want lo-hi"},
		"user by name":      {file: "[instance]\nuser = \"node\"\n", want: "instance.user: \"node\": want numeric uid:gid"},
		"bad memory":        {file: "[instance.resources]\nmemory = \"lots\"\n", want: "memory"},
		"bad ulimit":        {file: "[instance.resources]\nulimits = [\"nofile\"]\n", want: "ulimit"},
		"bad flag":          {args: []string{"--no-such-flag"}, want: "unknown flag"},
		"stray argument":    {args: []string{"extra"}, want: "unexpected argument"},
		"public metrics":    {args: []string{"--metrics-address", "0.0.0.0:9464"}, want: "loopback"},
		"missing named":     {args: []string{"--config", "/nonexistent/config.toml"}, want: "no such file"},
		"bad log format":    {args: []string{"--log-format", "xml"}, want: "logFormat"},
		"zero engine ops":   {args: []string{"--max-engine-ops", "0"}, want: "maxEngineOps"},
		"negative prune":    {args: []string{"--prune.idle-hours=-1"}, want: "prune.idleHours -1: must not be negative"},
		"age overflows":     {file: "[prune]\nmaxAgeDays = 200000\n", want: "prune.maxAgeDays 200000: must be at most 3650"},
		"nan window":        {file: "[hot]\nwindowMinutes = nan\n", want: "hot.windowMinutes NaN: must be a finite number"},
		"inf timeout":       {file: "[instance]\nreadinessTimeoutSeconds = inf\n", want: "instance.readinessTimeoutSeconds +Inf: must be a finite number"},
		"huge interval":     {file: "[prune]\nintervalMinutes = 1e15\n", want: "prune.intervalMinutes 1e+15: must be at most"},
		"spinning interval": {file: "[prune]\nintervalMinutes = 1e-9\n", want: "must be at least"},
		"relative socket":   {args: []string{"--socket", "agent.sock"}, want: "socket"},
		"bad runtime name":  {args: []string{"--runtime", "../docker"}, want: "runtime"},
		"relative legacy":   {args: []string{"--legacy-registry", "registry.json"}, want: "legacyRegistry"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				p := filepath.Join(t.TempDir(), "config.toml")
				assert.NilError(t, os.WriteFile(p, []byte(tc.file), 0o600))
				args = append([]string{"--config", p}, args...)
			}
			_, _, err := ConfigFromArgs("zaki-agent", args, nil)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// The packaged config file documents every key with its default: loading
// it must give exactly the built-in defaults, and every key must be in it.
func TestPackagedConfigMatchesDefaults(t *testing.T) {
	p := filepath.Join("..", "..", "packaging", "config.toml")
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		t.Skip("packaging/config.toml not written yet")
	}
	assert.NilError(t, err)
	cfg, err := LoadConfig(p, true)
	assert.NilError(t, err)
	assert.DeepEqual(t, cfg, DefaultConfig())
	def := DefaultConfig()
	fset := NewConfigFlagSet("x", &def)
	text := string(b)
	fset.VisitAll(func(f *pflagFlag) {
		if f.Name == "config" {
			return
		}
		key := f.Name[strings.LastIndex(f.Name, ".")+1:]
		key = camel(key)
		assert.Check(t, strings.Contains(text, key+" ="), "packaged config does not document %s", f.Name)
	})
}

func camel(k string) string {
	parts := strings.Split(k, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

type pflagFlag = pflag.Flag

// Every restart-only key names a setting, and a reload keeps each at its
// running value.
func TestRestartOnlyKeys(t *testing.T) {
	cur, next := DefaultConfig(), DefaultConfig()
	next.Socket, next.Runtime, next.LogLevel = "/other.sock", "podman", "debug"
	next.API.MaxBodyBytes = 4096
	changed := configkeys.Keep(&cur, &next, restartOnly)
	assert.DeepEqual(t, changed, []string{"api.maxBodyBytes", "runtime", "socket"})
	assert.Equal(t, next.Socket, cur.Socket)
	assert.Equal(t, next.API.MaxBodyBytes, cur.API.MaxBodyBytes)
	assert.Equal(t, next.LogLevel, "debug") // changes live
}
