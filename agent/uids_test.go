package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/registry"
)

// Each user gets a uid of its own, the lowest of the range that no user
// has and that has no account on the host (passwd, group, subuid,
// subgid), read at each reservation; kept for life, across a purge.
func TestTenantUIDsSkipHostAccounts(t *testing.T) {
	e := newFakeEnv(t, func(c *Config) { c.Instance.UIDRange = "300000-300009" })
	etc := t.TempDir()
	write := func(name, content string) {
		assert.NilError(t, os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644))
	}
	write("passwd", "root:x:0:0:root:/root:/bin/bash\nsvc:x:300000:100::/:/usr/sbin/nologin\n")
	write("group", "root:x:0:\nsvcgrp:x:300001:\n")
	write("subuid", "bob:300002:2\n")
	e.a.accountsDir = etc

	got := map[string]int{}
	for _, u := range []string{"alice", "bob"} {
		in := e.ensure(u, InstanceSpec{})
		uid, ok := e.reg.UID(u)
		assert.Assert(t, ok)
		got[u] = uid
		created, _ := e.fake.CreatedSpec(in.ContainerID)
		assert.Check(t, is.Equal(created.User, fmt.Sprintf("%d:%d", uid, uid)))
		uidOwner, gidOwner := ownerOf(t, filepath.Join(e.cfg.StateDir, "instances", u))
		assert.Check(t, uidOwner == uid && gidOwner == uid, "%s's data dir owned by %d:%d", u, uidOwner, gidOwner)
	}
	// 300000 (a user's), 300001 (a group's), 300002-3 (subordinate ids) skipped.
	assert.Check(t, is.DeepEqual(got, map[string]int{"alice": 300004, "bob": 300005}))

	// An account added since counts at the next reservation.
	write("passwd", "root:x:0:0:root:/root:/bin/bash\nsvc:x:300000:100::/:/usr/sbin/nologin\nnew:x:300006:100::/:/bin/sh\n")
	e.ensure("carol", InstanceSpec{})
	uid, _ := e.reg.UID("carol")
	assert.Check(t, is.Equal(uid, 300007))

	// For life: a purge keeps it, and the user gets it back.
	assert.NilError(t, e.a.Remove(t.Context(), "alice", true))
	e.ensure("dave", InstanceSpec{})
	uid, _ = e.reg.UID("dave")
	assert.Check(t, is.Equal(uid, 300008))
	in := e.ensure("alice", InstanceSpec{})
	created, _ := e.fake.CreatedSpec(in.ContainerID)
	assert.Check(t, is.Equal(created.User, "300004:300004"))

	// A full range: a clear error, and nothing made.
	e.ensure("erin", InstanceSpec{})
	_, err := e.a.Ensure(t.Context(), "frank", InstanceSpec{}, EnsureOptions{})
	assert.Check(t, is.ErrorContains(err, "every uid of 300000-300009 is reserved or has an account on the host"))
	_, err = os.Lstat(filepath.Join(e.cfg.StateDir, "instances", "frank"))
	assert.Check(t, os.IsNotExist(err), "frank's data dir: %v", err)
}

// An instance made under a fixed instance.user keeps running as it until
// it is made anew; then it gets a uid of its own, and its data is handed
// over without following what the tenant planted.
func TestFixedUserInstanceMovesToOwnUID(t *testing.T) {
	requireRoot(t)
	e := newFakeEnv(t, func(c *Config) { c.Instance.User = "1000:1000" })
	spec := InstanceSpec{Files: map[string]string{"openclaw.json": "{}"}}
	first := e.ensure("alice", spec)
	created, _ := e.fake.CreatedSpec(first.ContainerID)
	assert.Equal(t, created.User, "1000:1000")
	_, has := e.reg.UID("alice")
	assert.Assert(t, !has, "a fixed user reserves no uid")
	if rec, _ := e.reg.Get("alice"); rec.UID != 0 {
		t.Fatalf("record uid %d under a fixed user", rec.UID)
	}
	dir := filepath.Join(e.cfg.StateDir, "instances", "alice")
	// What the tenant (uid 1000) wrote and planted.
	host := t.TempDir()
	writeOwned(t, filepath.Join(host, "theirs"), 1000)
	writeOwned(t, filepath.Join(dir, "notes.md"), 1000)
	assert.NilError(t, os.Link(filepath.Join(host, "theirs"), filepath.Join(dir, "hardlink")))
	assert.NilError(t, os.Symlink(filepath.Join(host, "theirs"), filepath.Join(dir, "symlink")))
	assert.NilError(t, os.Lchown(filepath.Join(dir, "symlink"), 1000, 1000))

	// The default again: uids per tenant. A hot instance keeps its user.
	next := e.cfg.Config
	next.Instance.User = ""
	_, _, err := e.a.Reload(next)
	assert.NilError(t, err)
	in := e.ensure("alice", spec)
	assert.Equal(t, in.Outcome, OutcomeReused)
	assert.Assert(t, in.Stale)
	uid, _ := ownerOf(t, dir)
	assert.Equal(t, uid, 1000, "data handed over under a running instance")

	// Cold: made anew, as its own uid, its data its own.
	e.clock.Add(time.Hour)
	in = e.ensure("alice", spec)
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	own, ok := e.reg.UID("alice")
	assert.Assert(t, ok)
	created, _ = e.fake.CreatedSpec(in.ContainerID)
	assert.Check(t, is.Equal(created.User, fmt.Sprintf("%d:%d", own, own)))
	rec, _ := e.reg.Get("alice")
	assert.Check(t, is.Equal(rec.UID, own))
	for _, name := range []string{".", "openclaw.json", "notes.md", "symlink"} {
		u, g := ownerOf(t, filepath.Join(dir, name))
		assert.Check(t, u == own && g == own, "%s: owned by %d:%d", name, u, g)
	}
	u, _ := ownerOf(t, filepath.Join(host, "theirs"))
	assert.Check(t, is.Equal(u, 1000), "the hard-linked file outside was handed over")

	// Back to a fixed user: made anew as it, the data handed back.
	next.Instance.User = "1000:1000"
	_, _, err = e.a.Reload(next)
	assert.NilError(t, err)
	e.clock.Add(time.Hour)
	in = e.ensure("alice", spec)
	assert.Equal(t, in.Outcome, OutcomeRecreated)
	created, _ = e.fake.CreatedSpec(in.ContainerID)
	assert.Check(t, is.Equal(created.User, "1000:1000"))
	u, _ = ownerOf(t, filepath.Join(dir, "notes.md"))
	assert.Check(t, is.Equal(u, 1000))
}

// instance.uidRange applies live (to the uids handed out from then on); a
// bad one is refused and changes nothing. A fixed instance.user is warned
// of, at start and when a reload sets it.
func TestUIDRangeReloadAndFixedUserWarning(t *testing.T) {
	e := newFakeEnv(t)
	next := e.a.Config()
	next.Instance.UIDRange = "0-10"
	_, _, err := e.a.Reload(next)
	assert.Check(t, is.ErrorContains(err, "instance.uidRange"))
	assert.Check(t, is.Equal(e.a.Config().Instance.UIDRange, "200000-299999"))

	next.Instance.UIDRange = "310000-310099"
	needRestart, applied, err := e.a.Reload(next)
	assert.NilError(t, err)
	assert.Check(t, is.Len(needRestart, 0))
	assert.Check(t, is.DeepEqual(applied, []string{"instance.uidRange"}))
	e.ensure("alice", InstanceSpec{})
	uid, _ := e.reg.UID("alice")
	assert.Check(t, uid >= 310000 && uid <= 310099, "uid %d", uid)

	// The warning, from agents of their own (with a logger).
	newAgent := func(user string) (*Agent, *strings.Builder) {
		var logs strings.Builder
		cfg := e.cfg.Config
		cfg.Instance.User = user
		reg, err := registry.Open(t.TempDir(), registry.Options{})
		assert.NilError(t, err)
		t.Cleanup(func() { reg.Close() })
		a, err := New(cfg, e.fake, reg, Options{StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		assert.NilError(t, err)
		return a, &logs
	}
	const warning = `level=WARN msg="instance.user is set: every tenant runs as that one uid`
	_, logs := newAgent("1000:1000")
	assert.Check(t, is.Contains(logs.String(), warning))
	a, logs := newAgent("")
	assert.Check(t, !strings.Contains(logs.String(), warning), logs.String())
	next = a.Config()
	next.Instance.User = "1000:1000"
	_, _, err = a.Reload(next)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(logs.String(), warning))
}

// A registry that lost its uid reservations (restored from an older
// copy, or lost): a user whose data dir a uid of the range owns gets that
// uid back (at adoption, or when its instance is made), and no other user
// gets it.
func TestLostUIDReservationsComeBackFromDataDirs(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("alice", InstanceSpec{})
	e.ensure("bob", InstanceSpec{})
	aliceUID, _ := e.reg.UID("alice")
	bobUID, _ := e.reg.UID("bob")
	assert.Assert(t, aliceUID != bobUID)

	// The registry is lost; the containers stay (and are adopted).
	e.stop()
	assert.NilError(t, os.Remove(filepath.Join(e.cfg.StateDir, "registry.json")))
	e.start()
	// Adopted: each container's user gets its uid back at once.
	got, _ := e.reg.UID("bob")
	assert.Check(t, is.Equal(got, bobUID))
	// A new user first: the uids that own data dirs are not handed out.
	e.ensure("carol", InstanceSpec{})
	carolUID, _ := e.reg.UID("carol")
	assert.Check(t, carolUID != aliceUID && carolUID != bobUID, "carol got uid %d of alice's or bob's data", carolUID)
	in, err := e.a.Ensure(t.Context(), "bob", InstanceSpec{}, EnsureOptions{Force: true})
	assert.NilError(t, err)
	got, _ = e.reg.UID("bob")
	assert.Check(t, is.Equal(got, bobUID))
	created, _ := e.fake.CreatedSpec(in.ContainerID)
	assert.Check(t, is.Equal(created.User, fmt.Sprintf("%d:%d", bobUID, bobUID)))
}
