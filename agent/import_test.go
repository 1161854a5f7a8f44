package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// importFixture writes a users file and data dirs the way the router
// does, each user with the files given (path -> content), and returns the
// request that imports them.
func importFixture(t *testing.T, users map[string]int, files map[string]string) ImportRequest {
	root := t.TempDir()
	req := ImportRequest{UsersFile: filepath.Join(root, "users.json"), UsersDir: filepath.Join(root, "users")}
	entries := map[string]map[string]any{}
	for id, port := range users {
		entries[id] = map[string]any{"port": port, "token": "secret"}
		for name, content := range files {
			p := filepath.Join(req.UsersDir, "user-"+id, name)
			assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			assert.NilError(t, os.WriteFile(p, []byte(content), 0o644))
		}
	}
	assert.NilError(t, os.MkdirAll(req.UsersDir, 0o755))
	b, err := json.Marshal(entries)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(req.UsersFile, b, 0o600))
	return req
}

func importOne(t *testing.T, e *fakeEnv, req ImportRequest, id string) ImportItem {
	t.Helper()
	res, err := e.a.Import(context.Background(), req)
	assert.NilError(t, err)
	for _, it := range res.Users {
		if it.UserID == id {
			return it
		}
	}
	t.Fatalf("no item for %q in %+v", id, res)
	return ImportItem{}
}

// TestImportBadRequest: a request that cannot be served is an
// invalid-argument error and changes nothing.
func TestImportBadRequest(t *testing.T) {
	e := newFakeEnv(t)
	good := importFixture(t, map[string]int{"u1": 20010}, map[string]string{"workspace/MEMORY.md": "m"})
	notJSON := filepath.Join(t.TempDir(), "users.json")
	assert.NilError(t, os.WriteFile(notJSON, []byte(`["u1"]`), 0o600))
	for name, req := range map[string]ImportRequest{
		"relative users file": {UsersFile: "users.json", UsersDir: good.UsersDir},
		"relative users dir":  {UsersFile: good.UsersFile, UsersDir: "users"},
		"missing users file":  {UsersFile: good.UsersFile + ".gone", UsersDir: good.UsersDir},
		"users dir a file":    {UsersFile: good.UsersFile, UsersDir: good.UsersFile},
		"not an object":       {UsersFile: notJSON, UsersDir: good.UsersDir},
		"negative bound":      {UsersFile: good.UsersFile, UsersDir: good.UsersDir, MaxBytes: -1},
	} {
		_, err := e.a.Import(context.Background(), req)
		assert.Check(t, errors.Is(err, errdefs.ErrInvalidArgument), "%s: %v", name, err)
	}
	assert.Check(t, is.Equal(e.reg.Len(), 0))
	_, err := os.Lstat(filepath.Join(e.cfg.StateDir, "instances", "u1"))
	assert.Check(t, os.IsNotExist(err))
}

// TestImportBounds: a user over a bound (entries, bytes, depth), without
// a data dir, or whose data dir is a symlink, fails alone: nothing of it
// is kept, no port is reserved, and the other users are imported.
func TestImportBounds(t *testing.T) {
	e := newFakeEnv(t)
	req := importFixture(t, map[string]int{"many": 20010, "ok": 20011, "deep": 20012, "nodir": 20013, "link": 20014},
		map[string]string{"a/1": "x", "a/2": "y", "b/3": "z"})
	assert.NilError(t, os.RemoveAll(filepath.Join(req.UsersDir, "user-nodir")))
	assert.NilError(t, os.RemoveAll(filepath.Join(req.UsersDir, "user-link")))
	assert.NilError(t, os.Symlink(filepath.Join(req.UsersDir, "user-ok"), filepath.Join(req.UsersDir, "user-link")))
	deep := filepath.Join(req.UsersDir, "user-deep", strings.Repeat("d/", maxImportDepth+2))
	assert.NilError(t, os.MkdirAll(deep, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(req.UsersDir, "user-many", "b", "4"), nil, 0o644))

	req.MaxFiles = 5 // ok has 5 entries (a, a/1, a/2, b, b/3), many 6
	req.Users = []string{"many", "ok", "nodir", "link"}
	res, err := e.a.Import(context.Background(), req)
	assert.NilError(t, err)
	deepReq := req
	deepReq.MaxFiles, deepReq.Users = 0, []string{"deep"}
	deepRes, err := e.a.Import(context.Background(), deepReq)
	assert.NilError(t, err)
	res.Users = append(res.Users, deepRes.Users...)
	want := map[string]string{
		"many":  "more than 5 entries",
		"deep":  "deeper than 64 levels",
		"nodir": "source data dir",
		"link":  "is a symlink: not followed",
	}
	for _, it := range res.Users {
		msg, bad := want[it.UserID]
		if !bad {
			assert.Check(t, is.Equal(it.Action, socketapi.ImportImported), "%s: %s", it.UserID, it.Message)
			continue
		}
		assert.Check(t, is.Equal(it.Action, socketapi.ImportFailed), it.UserID)
		assert.Check(t, is.Contains(it.Message, msg), it.UserID)
		_, err := os.Lstat(filepath.Join(e.cfg.StateDir, "instances", it.UserID))
		assert.Check(t, os.IsNotExist(err), "%s: %v", it.UserID, err)
		_, held := e.reg.Port(it.UserID)
		assert.Check(t, !held, it.UserID)
	}
	left, _ := filepath.Glob(filepath.Join(e.cfg.StateDir, "instances", importTempPrefix+"*"))
	assert.Check(t, is.Len(left, 0))

	req.MaxFiles, req.MaxBytes, req.Users = 0, 2, []string{"many"}
	it := importOne(t, e, req, "many")
	assert.Check(t, is.Equal(it.Action, socketapi.ImportFailed))
	assert.Check(t, is.Contains(it.Message, "more than 2 bytes"))
}

// TestImportPortsAndModes: the users file's port is kept when free, even
// outside the range; one reserved by the config or by another user is
// not. Modes are made sane, the instance's user owns the copy.
func TestImportPortsAndModes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	outside := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e := newFakeEnv(t, func(c *Config) { c.Instance.ReservedPorts = []string{"20005"} })
	e.ensure("holder", InstanceSpec{}) // takes 20000
	req := importFixture(t, map[string]int{"out": outside, "res": 20005, "taken": 20000, "nope": 0},
		map[string]string{"bin/run": "#!/bin/sh\n", "notes.md": "n"})
	run := filepath.Join(req.UsersDir, "user-out", "bin", "run")
	assert.NilError(t, os.Chmod(run, os.ModeSetuid|0o755))

	res, err := e.a.Import(context.Background(), req)
	assert.NilError(t, err)
	got := map[string]ImportItem{}
	for _, it := range res.Users {
		got[it.UserID] = it
		assert.Check(t, is.Equal(it.Action, socketapi.ImportImported), "%s: %s", it.UserID, it.Message)
		p, ok := e.reg.Port(it.UserID)
		assert.Check(t, ok && p == it.Port, "%s: registry %d, item %d", it.UserID, p, it.Port)
	}
	assert.Check(t, is.Equal(got["out"].Port, outside))
	assert.Check(t, is.Equal(got["out"].OldPort, 0))
	assert.Check(t, is.Equal(got["res"].OldPort, 20005))
	assert.Check(t, got["res"].Port != 20005 && got["res"].Port != 20000)
	assert.Check(t, is.Equal(got["taken"].OldPort, 20000))
	assert.Check(t, got["taken"].Port != 20000)
	assert.Check(t, got["nope"].Port >= 20001 && got["nope"].Port <= 20099)

	// Each imported user has a uid of its own, which owns its copy.
	uids := map[int]string{}
	for id := range got {
		u, ok := e.reg.UID(id)
		assert.Check(t, ok && u >= 200000 && u <= 299999, "%s: uid %d", id, u)
		assert.Check(t, uids[u] == "", "%s and %s share uid %d", id, uids[u], u)
		uids[u] = id
	}
	uid, _ := e.reg.UID("out")
	gid := uid
	for name, mode := range map[string]os.FileMode{"": 0o700 | os.ModeDir, "bin": 0o700 | os.ModeDir, "bin/run": 0o700, "notes.md": 0o600} {
		fi, err := os.Lstat(filepath.Join(e.cfg.StateDir, "instances", "out", name))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Mode(), mode), name)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Check(t, int(st.Uid) == uid && int(st.Gid) == gid, "%s: owned by %d:%d", name, st.Uid, st.Gid)
	}
	fi, err := os.Stat(run)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm()|fi.Mode()&os.ModeSetuid, 0o755|os.ModeSetuid), "the source's mode changed")

	// The record of a user without a container is "missing", on its port,
	// and its ensure uses that port.
	in := e.ensure("out", InstanceSpec{})
	assert.Check(t, is.Equal(in.Port, outside))
}

// TestImportNoFreePort: a user that cannot get a port is not imported,
// and nothing of it is kept: the next import copies anew.
func TestImportNoFreePort(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.PortRange = "20000-20000" })
	e.ensure("holder", InstanceSpec{}) // takes 20000, the only one
	req := importFixture(t, map[string]int{"late": 20000}, map[string]string{"workspace/MEMORY.md": "m"})
	it := importOne(t, e, req, "late")
	assert.Check(t, is.Equal(it.Action, socketapi.ImportFailed))
	assert.Check(t, is.Contains(it.Message, "every port of 20000-20000"))
	assert.Check(t, is.Contains(it.Message, "nothing of it kept"))
	_, err := os.Lstat(filepath.Join(e.cfg.StateDir, "instances", "late"))
	assert.Check(t, os.IsNotExist(err), "%v", err)
	_, held := e.reg.Port("late")
	assert.Check(t, !held)
}

// TestImportStopsTheOldGatewayFirst: the router's running container is
// stopped before its data is copied (the copy is of data at rest), and
// started again when the user's import fails; a later import replaces it.
func TestImportStopsTheOldGatewayFirst(t *testing.T) {
	e := newFakeEnv(t)
	ctx := context.Background()
	req := importFixture(t, map[string]int{"live": 20020}, map[string]string{"workspace/MEMORY.md": "m", "workspace/a": "a", "workspace/b": "b"})
	id, err := e.fake.Create(ctx, runtime.ContainerSpec{Name: containerName("live"), Image: e.cfg.Instance.Image, Network: e.cfg.Instance.Network})
	assert.NilError(t, err)
	assert.NilError(t, e.fake.Start(ctx, id))

	req.MaxFiles = 2
	it := importOne(t, e, req, "live")
	assert.Check(t, is.Equal(it.Action, socketapi.ImportFailed), it.Message)
	assert.Check(t, is.Contains(it.Message, "runs again"))
	c, err := e.fake.Inspect(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, c.Running(), "the old gateway is left running")
	assert.Check(t, is.Equal(e.fake.Calls("Stop"), 1), "stopped before the copy")

	req.MaxFiles = 0
	it = importOne(t, e, req, "live")
	assert.Check(t, is.Equal(it.Action, socketapi.ImportImported), it.Message)
	_, err = e.fake.Inspect(ctx, id)
	assert.Check(t, errors.Is(err, runtime.ErrNotFound), "the old container is gone: %v", err)
	in, err := e.a.Get(ctx, "live")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(in.State, StateRunning))
	assert.Check(t, is.Equal(in.Port, 20020))
}
