package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

// instancePIDs returns the host pids of a container's init (tini, from
// --init) and of its children (the gateway).
func instancePIDs(t *testing.T, container string) []string {
	t.Helper()
	init := testenv.Docker(t, "inspect", "-f", "{{.State.Pid}}", container)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%s/task/%s/children", init, init))
	assert.NilError(t, err)
	kids := strings.Fields(string(b))
	assert.Assert(t, len(kids) > 0, "the init of %s has no child", container)
	return append([]string{init}, kids...)
}

// Each tenant runs as a uid of its own with no account on the host; the
// host's login account (uid 1000), which every tenant used to share,
// can no longer read a tenant's secrets or data, nor signal it: the
// tenant's own uid can (so the refusals are the uids' doing).
func TestEngineTenantUIDs(t *testing.T) {
	requireRoot(t)
	e := newEngineEnv(t)
	// The test's dirs traversable, as a host where the state dir were: the
	// data dir's own owner and mode are what is tested.
	for d := e.cfg.StateDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		assert.NilError(t, os.Chmod(d, 0o711))
	}
	secret := "s3cret-" + strconv.Itoa(os.Getpid())
	spec := InstanceSpec{Env: map[string]string{"OPENCLAW_TOKEN": secret}, Files: map[string]string{"openclaw.json": `{"token":"` + secret + `"}`}}
	uids := map[string]int{}
	for _, u := range []string{"ua", "ub"} {
		in := e.ensure(u, spec)
		uid, ok := e.reg.UID(u)
		assert.Assert(t, ok, "%s has no uid", u)
		uids[u] = uid
		assert.Check(t, uid >= 200000 && uid <= 299999, "%s: uid %d outside instance.uidRange", u, uid)
		if _, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			t.Errorf("%s: uid %d has an account on the host", u, uid)
		}
		if _, err := user.LookupGroupId(strconv.Itoa(uid)); err == nil {
			t.Errorf("%s: gid %d has a group on the host", u, uid)
		}
		got := testenv.Docker(t, "inspect", "-f", "{{.Config.User}}", in.ContainerID)
		assert.Check(t, is.Equal(got, fmt.Sprintf("%d:%d", uid, uid)), "%s: docker inspect Config.User", u)

		dataDir := filepath.Join(e.cfg.StateDir, "instances", u)
		file := filepath.Join(dataDir, "openclaw.json")
		for _, pid := range instancePIDs(t, in.ContainerID) {
			st, err := os.ReadFile("/proc/" + pid + "/status")
			assert.NilError(t, err)
			assert.Check(t, is.Contains(string(st), fmt.Sprintf("\nUid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid)), "%s: pid %s", u, pid)
			environ := "/proc/" + pid + "/environ"
			out, err := testenv.AsUID(testenv.LoginUID, "cat", environ)
			assert.Check(t, err != nil && strings.Contains(out, "Permission denied"), "uid %d read %s of %s: %v %q", testenv.LoginUID, environ, u, err, out)
			assert.Check(t, !strings.Contains(out, secret))
			out, err = testenv.AsUID(testenv.LoginUID, "kill", "-0", pid)
			assert.Check(t, err != nil && strings.Contains(out, "Operation not permitted"), "uid %d signalled pid %s of %s: %v %q", testenv.LoginUID, pid, u, err, out)
			// The tenant's own uid may: the refusals above are the uid's.
			out, err = testenv.AsUID(uid, "kill", "-0", pid)
			assert.Check(t, err == nil, "uid %d: kill -0 %s: %v %q", uid, pid, err, out)
		}
		gateway := instancePIDs(t, in.ContainerID)[1]
		out, err := testenv.AsUID(uid, "cat", "/proc/"+gateway+"/environ")
		assert.Check(t, err == nil && strings.Contains(out, secret), "the tenant's uid cannot read its own environ: %v", err)
		for _, argv := range [][]string{{"ls", dataDir}, {"cat", file}} {
			out, err := testenv.AsUID(testenv.LoginUID, argv...)
			assert.Check(t, err != nil && strings.Contains(out, "Permission denied"), "uid %d: %v: %v %q", testenv.LoginUID, argv, err, out)
			assert.Check(t, !strings.Contains(out, secret))
			out, err = testenv.AsUID(uid, argv...)
			assert.Check(t, err == nil, "uid %d: %v: %v %q", uid, argv, err, out)
		}
	}
	assert.Check(t, uids["ua"] != uids["ub"], "two tenants share uid %d", uids["ua"])
	// Nor can one tenant's uid reach the other's.
	out, err := testenv.AsUID(uids["ua"], "ls", filepath.Join(e.cfg.StateDir, "instances", "ub"))
	assert.Check(t, err != nil && strings.Contains(out, "Permission denied"), "tenant ua listed ub's data: %v %q", err, out)
}
