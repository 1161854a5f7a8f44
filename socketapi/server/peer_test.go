package server_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// nobody is the unprivileged uid and gid the peer tests call as.
const nobody = 65534

// curlAs runs curl against the socket as uid:gid (with supplementary
// groups) and returns the status and body.
func curlAs(t *testing.T, socket string, uid, gid int, groups []uint32, args ...string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed (apt-get install curl): %v", err)
	}
	full := append([]string{"-sS", "--unix-socket", socket, "-w", "\n%{http_code}"}, args...)
	cmd := exec.Command("curl", full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	assert.NilError(t, err, "curl %v: %s", args, stderr.String())
	out := strings.TrimRight(stdout.String(), "\n")
	i := strings.LastIndex(out, "\n")
	code, err := strconv.Atoi(out[i+1:])
	assert.NilError(t, err, "curl output %q", out)
	return code, out[:max(i, 0)]
}

// startShared starts an agent whose socket uid nobody can reach through the
// file system (group nogroup, mode 0660), so that only the peer check
// stands in its way.
func startShared(t *testing.T, server func(*serverConfig)) *apitest.Env {
	e := apitest.Start(t, apitest.Options{SocketGroup: "nogroup", Server: server})
	assert.NilError(t, os.Chmod(filepath.Dir(e.Socket), 0o755))
	return e
}

// TestPeerNotAllowed: a caller whose uid is not allowed gets 403 on every
// route, and nothing changes: no registry entry, no engine call.
func TestPeerNotAllowed(t *testing.T) {
	e := startShared(t, nil)
	fi, err := os.Stat(e.Socket)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o660)))
	assert.Check(t, is.Equal(int(fi.Sys().(*syscall.Stat_t).Gid), nobody))

	_, err = e.Client.Ensure(ctxT(t), "lena", struct0())
	assert.NilError(t, err)
	regBefore := e.Registry.List()
	callsBefore := e.Fake.CallCounts()
	containersBefore := len(e.Fake.Containers())

	for _, args := range [][]string{
		{"http://localhost/v1/health"},
		{"http://localhost/v1/instances"},
		{"-X", "PUT", "-H", "Content-Type: application/json", "-d", `{}`, "http://localhost/v1/instances/mallory"},
		{"-X", "POST", "http://localhost/v1/instances/lena/stop"},
		{"-X", "DELETE", "http://localhost/v1/instances/lena?purge=true"},
		{"-X", "POST", "-H", "Content-Type: application/json", "-d", `{"idleHours":0.0000001}`, "http://localhost/v1/prune"},
		{"http://localhost/no/such/path"},
	} {
		code, body := curlAs(t, e.Socket, nobody, nobody, nil, args...)
		assert.Check(t, is.Equal(code, 403), "%v: %s", args, body)
		assert.Check(t, is.Contains(body, `"code":"forbidden"`))
		assert.Check(t, is.Contains(body, fmt.Sprintf("uid %d is not allowed", nobody)))
	}
	assert.Check(t, is.DeepEqual(e.Registry.List(), regBefore))
	assert.Check(t, is.DeepEqual(e.Fake.CallCounts(), callsBefore))
	assert.Check(t, is.Equal(len(e.Fake.Containers()), containersBefore))
	_, err = os.Stat(filepath.Join(e.StateDir, "instances", "lena"))
	assert.NilError(t, err, "data not purged")
	assert.Check(t, is.Contains(e.Logs.String(), fmt.Sprintf("level=WARN msg=\"api call\" method=PUT path=/v1/instances/mallory status=403 outcome=forbidden")))
	assert.Check(t, is.Contains(e.Logs.String(), fmt.Sprintf("uid=%d", nobody)))
}

// TestPeerAllowed: allowUids, allowGids (primary or supplementary group)
// let a caller in; root and the agent's own uid always are.
func TestPeerAllowed(t *testing.T) {
	const team = 4242
	cases := []struct {
		name   string
		cfg    func(*serverConfig)
		groups []uint32
		want   int
	}{
		{"no allow lists", nil, nil, 403},
		{"allowed uid", func(c *serverConfig) { c.AllowUIDs = []int{nobody} }, nil, 200},
		{"other uid allowed", func(c *serverConfig) { c.AllowUIDs = []int{1000} }, nil, 403},
		{"allowed primary gid", func(c *serverConfig) { c.AllowGIDs = []int{nobody} }, nil, 200},
		{"allowed supplementary gid", func(c *serverConfig) { c.AllowGIDs = []int{team} }, []uint32{team}, 200},
		{"supplementary gid not allowed", func(c *serverConfig) { c.AllowGIDs = []int{team} }, []uint32{team + 1}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startShared(t, c.cfg)
			code, body := curlAs(t, e.Socket, nobody, nobody, c.groups, "http://localhost/v1/health")
			assert.Check(t, is.Equal(code, c.want), body)
			code, body = curlAs(t, e.Socket, 0, 0, nil, "http://localhost/v1/health")
			assert.Check(t, is.Equal(code, 200), "root: %s", body)
		})
	}
}
