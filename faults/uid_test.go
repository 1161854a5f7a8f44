package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

func ownerUID(path string) int {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return -1
	}
	return int(st.Uid)
}

// TestTenantUIDs: every tenant runs as a uid of its own, with no account
// on the host; the host's login account cannot read a tenant's secrets
// (/proc/<pid>/environ) or data, nor signal it. An instance made under
// the old fixed user 1000, whose tenant planted a symlink and hard links
// to host files in its data dir, is moved to its own uid by a forced
// ensure, and the host files keep their owners.
func TestTenantUIDs(t *testing.T) {
	l := newLedger(t, "tenant isolation")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	p := testenv.StartAgent(t, testenv.AgentOptions{})
	ctx := context.Background()
	orig, err := os.ReadFile(p.Config)
	assert.NilError(t, err)

	// An instance of the old days: instance.user = "1000:1000" (the
	// generated config ends in its [instance] table).
	p.Stop()
	assert.NilError(t, os.WriteFile(p.Config, append(append([]byte{}, orig...), "user = \"1000:1000\"\n"...), 0o600))
	p.Start()
	legacy, err := p.Client.Ensure(ctx, "fuid-legacy", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}})
	assert.NilError(t, err)
	l.checkT(t, testenv.Docker(t, "inspect", "-f", "{{.Config.User}}", legacy.ContainerID) == "1000:1000", "the legacy instance does not run as 1000:1000: the test would prove nothing")

	// What its tenant (uid 1000) planted: links to the host's files.
	host := t.TempDir()
	hostRoot, hostTheirs := filepath.Join(host, "shadow"), filepath.Join(host, "theirs")
	for path, uid := range map[string]int{hostRoot: 0, hostTheirs: testenv.LoginUID} {
		assert.NilError(t, os.WriteFile(path, []byte("host"), 0o600))
		assert.NilError(t, os.Chown(path, uid, uid))
	}
	data := filepath.Join(p.StateDir, "instances", "fuid-legacy")
	assert.NilError(t, os.Symlink(hostTheirs, filepath.Join(data, "symlink")))
	assert.NilError(t, os.Lchown(filepath.Join(data, "symlink"), testenv.LoginUID, testenv.LoginUID))
	assert.NilError(t, os.Link(hostRoot, filepath.Join(data, "hardlink-root")))
	assert.NilError(t, os.Link(hostTheirs, filepath.Join(data, "hardlink-theirs")))
	l.fault(3)

	// Today's default: a uid per tenant.
	p.Stop()
	assert.NilError(t, os.WriteFile(p.Config, orig, 0o600))
	p.Start()
	secret := "s3cret-" + strconv.Itoa(os.Getpid())
	spec := socketapi.InstanceSpec{Env: map[string]string{"OPENCLAW_TOKEN": secret}, Files: map[string]string{"openclaw.json": secret}}
	ins := map[string]socketapi.Instance{}
	for _, u := range []string{"fuid-a", "fuid-b"} {
		in, err := p.Client.Ensure(ctx, u, spec)
		assert.NilError(t, err, u)
		ins[u] = in
	}
	in, err := p.Client.EnsureWith(ctx, "fuid-legacy", socketapi.InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}}, socketapi.ClientEnsureOptions{Force: true})
	assert.NilError(t, err)
	ins["fuid-legacy"] = in
	reg, err := readRegistry(p.StateDir)
	assert.NilError(t, err)

	t.Run("a uid per tenant, none a host account", func(t *testing.T) {
		seen := map[int]string{}
		for u, in := range ins {
			uid, ok := reg.UIDs[u]
			l.checkT(t, ok && uid > 0, "%s has no uid of its own", u)
			l.checkT(t, reg.Records[u].UID == uid, "%s's record holds uid %d, its reservation is %d", u, reg.Records[u].UID, uid)
			l.checkT(t, seen[uid] == "", "%s and %s share uid %d", u, seen[uid], uid)
			seen[uid] = u
			_, err := user.LookupId(strconv.Itoa(uid))
			l.checkT(t, err != nil, "%s's uid %d has a host account", u, uid)
			_, err = user.LookupGroupId(strconv.Itoa(uid))
			l.checkT(t, err != nil, "%s's gid %d has a host group", u, uid)
			got := testenv.Docker(t, "inspect", "-f", "{{.Config.User}}", in.ContainerID)
			l.checkT(t, got == fmt.Sprintf("%d:%d", uid, uid), "%s runs as %q, its uid is %d", u, got, uid)
		}
	})

	t.Run("the host's login account cannot read or signal a tenant", func(t *testing.T) {
		// The state dir traversable for the test (it is 0750 root:root):
		// the data dir's own owner and mode are what is checked.
		for _, d := range []string{p.Dir, p.StateDir} {
			fi, err := os.Stat(d)
			assert.NilError(t, err)
			assert.NilError(t, os.Chmod(d, 0o711))
			t.Cleanup(func() { os.Chmod(d, fi.Mode().Perm()) })
		}
		for _, u := range []string{"fuid-a", "fuid-b"} {
			uid := reg.UIDs[u]
			init := inspectOne(t, ins[u].ContainerID).State.Pid
			pids := append([]int{init}, children(init)...)
			l.checkT(t, len(pids) > 1, "%s's init has no child", u)
			for _, pid := range pids {
				environ := fmt.Sprintf("/proc/%d/environ", pid)
				out, err := testenv.AsUID(uid, "cat", environ)
				l.checkT(t, err == nil, "control: %s's own uid cannot read %s: %v %q", u, environ, err, out)
				out, err = testenv.AsUID(testenv.LoginUID, "cat", environ)
				l.checkT(t, err != nil && strings.Contains(out, "Permission denied") && !strings.Contains(out, secret), "uid %d read %s of %s: %v %q", testenv.LoginUID, environ, u, err, out)
				out, err = testenv.AsUID(testenv.LoginUID, "kill", "-0", strconv.Itoa(pid))
				l.checkT(t, err != nil && strings.Contains(out, "Operation not permitted"), "uid %d may signal %s's pid %d: %v %q", testenv.LoginUID, u, pid, err, out)
			}
			dir := filepath.Join(p.StateDir, "instances", u)
			for _, argv := range [][]string{{"ls", dir}, {"cat", filepath.Join(dir, "openclaw.json")}} {
				out, err := testenv.AsUID(uid, argv...)
				l.checkT(t, err == nil, "control: %s's own uid: %v: %v %q", u, argv, err, out)
				out, err = testenv.AsUID(testenv.LoginUID, argv...)
				l.checkT(t, err != nil && strings.Contains(out, "Permission denied") && !strings.Contains(out, secret), "uid %d: %v: %v %q", testenv.LoginUID, argv, err, out)
			}
		}
	})

	t.Run("the legacy instance's data handed over, the host's files untouched", func(t *testing.T) {
		uid := reg.UIDs["fuid-legacy"]
		l.checkT(t, in.ContainerID != legacy.ContainerID, "the forced ensure did not make the legacy instance anew")
		for _, name := range []string{".", "openclaw.json", "gateway-stub.started", "symlink"} {
			got := ownerUID(filepath.Join(data, name))
			l.checkT(t, got == uid, "legacy's %s owned by %d, want its uid %d", name, got, uid)
		}
		l.checkT(t, ownerUID(hostRoot) == 0, "the host's root file (hard-linked) now owned by %d", ownerUID(hostRoot))
		l.checkT(t, ownerUID(hostTheirs) == testenv.LoginUID, "the host's file of uid 1000 (symlinked and hard-linked) now owned by %d", ownerUID(hostTheirs))
		log := p.Log()
		l.checkT(t, strings.Contains(log, "hardlink-theirs: 2 hard links"), "the left hard link is not logged")
	})
}
