package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The API's import types are the agent's own.
type (
	ImportRequest = socketapi.ImportRequest
	ImportResult  = socketapi.ImportResult
	ImportItem    = socketapi.ImportItem
)

const (
	// maxUsersFileBytes bounds the router's users file.
	maxUsersFileBytes = 16 << 20
	// maxImportDepth bounds the depth of a user's data tree.
	maxImportDepth = 64
	// importTempPrefix starts the temp dirs an import copies into, in the
	// data dir; no user ID starts with a dot.
	importTempPrefix = ".import-"
)

// usersFileEntry is what the import reads of one user of the router's
// users file ({"<id>": {"port": 19001, "token": ..., ...}}); the rest
// (the token among it) is not read.
type usersFileEntry struct {
	Port int `json:"port"`
}

// Import brings the Zaki platform's existing users over, one by one, in
// the order of their IDs (see socketapi.ImportRequest): for each user of
// the router's users file it
//
//   - skips an invalid user ID (reported);
//   - copies <usersDir>/user-<id>/ into the user's data dir, which must
//     not exist yet (it is never overwritten). The source is the tenant's
//     to write: it is walked through an os.Root, no symlink is followed
//     and none is copied, and devices, fifos, sockets and files with
//     more than one hard link are skipped (each reported); the copy goes
//     into a temp dir beside the data dir, owned by the user's uid (its
//     own from instance.uidRange, reserved now, or instance.user; dirs
//     0700, files 0600, or 0700 when the source had an execute bit),
//     mtimes kept, and is renamed into place only when complete. A user
//     over the bounds on bytes or entries fails and nothing of it is
//     kept. The source is only read;
//   - reserves the user's port from the users file when it is free (no
//     other user has it, it is not in instance.reservedPorts, and nothing
//     but the user's old container holds it on the host), even outside
//     instance.portRange (the platform's URLs stay valid); else the
//     lowest free port of the range (Port and OldPort tell);
//   - stops and removes the unlabelled container zaki-user-<id>, only
//     after the copy succeeded, and when it was running ensures the
//     user's instance with the config's defaults (the platform's next
//     ensure brings its own spec); a stopped one leaves the user recorded
//     without a container, made at the next ensure.
//
// A user whose data dir exists and whose container, if any, is already
// an instance is reported "exists": running Import twice changes nothing.
// A data dir left by an import that could not remove the old container is
// kept, and the next import goes on from there. With DryRun nothing is
// changed: the source is walked and counted, the port chosen but not
// reserved. A bad request (relative paths, a users file that cannot be
// read) is an error, and so is a runtime that does not answer; a user
// that fails is reported and the others go on.
func (a *Agent) Import(ctx context.Context, req ImportRequest) (ImportResult, error) {
	if a.cluster != nil {
		return ImportResult{}, invalid("import: not with a runtime that places instances on nodes: it copies the users' data into this host's state dir, and the instances' data lives on the nodes")
	}
	req, entries, ids, err := readImport(req)
	if err != nil {
		return ImportResult{}, err
	}
	if err := a.awaitReconciled(ctx, "import"); err != nil {
		return ImportResult{}, err
	}
	if !a.runtimeUp.Load() {
		return ImportResult{}, errdefs.Errorf(errdefs.ErrUnavailable, "import: the runtime does not answer; nothing was done (retry when it is back)")
	}
	res := ImportResult{DryRun: req.DryRun, Users: []ImportItem{}}
	for _, id := range ids {
		e, ok := entries[id]
		if !ok {
			res.Users = append(res.Users, ImportItem{UserID: id, Action: socketapi.ImportFailed, Skipped: []string{},
				Message: fmt.Sprintf("user %q is not in the users file %s", id, req.UsersFile)})
			continue
		}
		if ctx.Err() != nil {
			res.Users = append(res.Users, ImportItem{UserID: id, Action: socketapi.ImportFailed, Skipped: []string{},
				Message: fmt.Sprintf("not tried: %v", ctx.Err())})
			continue
		}
		it := a.importUser(ctx, req, id, e)
		if !req.DryRun {
			a.log.Info("import", "user", id, "action", it.Action, "port", it.Port, "oldPort", it.OldPort,
				"files", it.Files, "bytes", it.Bytes, "skipped", len(it.Skipped), "message", it.Message)
		}
		res.Users = append(res.Users, it)
	}
	return res, nil
}

// readImport checks req, fills in its defaults and reads the users file:
// its entries, and the IDs to import (req.Users, or every user of the
// file), sorted.
func readImport(req ImportRequest) (ImportRequest, map[string]usersFileEntry, []string, error) {
	if req.UsersFile == "" {
		req.UsersFile = socketapi.DefaultImportUsersFile
	}
	if req.UsersDir == "" {
		req.UsersDir = socketapi.DefaultImportUsersDir
	}
	if req.MaxBytes == 0 {
		req.MaxBytes = socketapi.DefaultImportMaxBytes
	}
	if req.MaxFiles == 0 {
		req.MaxFiles = socketapi.DefaultImportMaxFiles
	}
	switch {
	case !filepath.IsAbs(req.UsersFile):
		return req, nil, nil, invalid("usersFile %q: want an absolute path", req.UsersFile)
	case !filepath.IsAbs(req.UsersDir):
		return req, nil, nil, invalid("usersDir %q: want an absolute path", req.UsersDir)
	case req.MaxBytes < 0 || req.MaxFiles < 0:
		return req, nil, nil, invalid("maxBytes and maxFiles: want positive bounds (0 = the default)")
	}
	if fi, err := os.Stat(req.UsersDir); err != nil || !fi.IsDir() {
		return req, nil, nil, invalid("usersDir %s: not a directory (%v)", req.UsersDir, err)
	}
	f, err := os.Open(req.UsersFile)
	if err != nil {
		return req, nil, nil, invalid("users file: %v", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return req, nil, nil, invalid("users file %s: not a regular file", req.UsersFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUsersFileBytes+1))
	if err != nil {
		return req, nil, nil, invalid("users file: %v", err)
	}
	if len(data) > maxUsersFileBytes {
		return req, nil, nil, invalid("users file %s: larger than %d bytes", req.UsersFile, maxUsersFileBytes)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return req, nil, nil, invalid("users file %s: want a JSON object of users: %v", req.UsersFile, err)
	}
	entries := make(map[string]usersFileEntry, len(raw))
	for id, msg := range raw {
		var e usersFileEntry
		_ = json.Unmarshal(msg, &e) // a user without a readable port gets a free one
		entries[id] = e
	}
	ids := req.Users
	if len(ids) == 0 {
		for id := range entries {
			ids = append(ids, id)
		}
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return req, entries, slices.Compact(ids), nil
}

// importUser imports one user; see Import.
func (a *Agent) importUser(ctx context.Context, req ImportRequest, id string, e usersFileEntry) ImportItem {
	it := ImportItem{UserID: id, Skipped: []string{}}
	fail := func(format string, args ...any) ImportItem {
		it.Action, it.Message = socketapi.ImportFailed, fmt.Sprintf(format, args...)
		return it
	}
	if err := validateUserID(id); err != nil {
		it.Action, it.Message = socketapi.ImportInvalid, err.Error()
		return it
	}
	unlock := a.locks.lock(id)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()

	dest := filepath.Join(a.dataDir, id)
	_, err := os.Lstat(dest)
	destExists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("data dir %s: %v", dest, err)
	}
	// The engine's container of the user's name: the router's (no
	// labels), an instance already, or none.
	var old *runtime.Container
	c, err := a.rt.Inspect(ctx, containerName(id))
	switch {
	case errors.Is(err, runtime.ErrNotFound):
	case err != nil:
		return fail("inspect container %s: %v", containerName(id), err)
	default:
		owner, _, managed := a.liveFromContainer(c)
		switch {
		case !managed:
			old = &c
		case owner != id:
			return fail("container %s is the instance of user %q: remove or rename it", c.Name, owner)
		}
	}
	if destExists && old == nil {
		it.Action = socketapi.ImportExists
		it.Port, _ = a.reg.Port(id)
		it.Message = fmt.Sprintf("already imported: data dir %s exists (never overwritten)", dest)
		return it
	}
	if old == nil {
		if _, ok := a.reg.Get(id); ok {
			it.Action = socketapi.ImportExists
			it.Port, _ = a.reg.Port(id)
			it.Message = "already an instance of zaki-agent, without a data dir: nothing imported"
			return it
		}
	}

	var notes []string
	if destExists && old != nil && emptyTree(dest) {
		// Made by an ensure that the router's container then refused:
		// dirs alone, nothing of the user's. The copy takes its place.
		destExists = false
		if req.DryRun {
			notes = append(notes, "would replace an empty data dir (from a refused ensure)")
		} else {
			if err := os.RemoveAll(dest); err != nil {
				return fail("remove the empty data dir %s: %v", dest, err)
			}
			notes = append(notes, "an empty data dir (from a refused ensure) replaced")
		}
	}
	copied := false
	// The router's gateway writes its data while it runs: it is stopped
	// (gracefully) before the copy, so that the copy is of data at rest,
	// and started again should the import of the user fail.
	stoppedOld := false
	restartOld := func() string {
		if !stoppedOld {
			return ""
		}
		if err := a.rt.Start(ctx, old.ID); err != nil {
			return fmt.Sprintf(" (and starting the old container %s again failed: %v)", old.Name, err)
		}
		return fmt.Sprintf(" (the old container %s runs again)", old.Name)
	}
	if destExists {
		notes = append(notes, fmt.Sprintf("data dir %s exists (from an earlier import): kept, not overwritten", dest))
	} else {
		if !req.DryRun && old != nil && old.Running() {
			if err := a.stopForeign(ctx, *old); err != nil {
				return fail("stop the old container %s before copying its data: %v", old.Name, err)
			}
			stoppedOld = true
		}
		st, err := a.copyUserData(filepath.Join(req.UsersDir, "user-"+id), dest, id, req)
		it.Files, it.Bytes, it.Skipped = st.files, st.bytes, st.skipped
		if err != nil {
			return fail("%v; nothing of it kept%s", err, restartOld())
		}
		copied = !req.DryRun
	}

	// The port: the user's own when free. The old container holding it
	// does not count: it goes.
	ic := &a.conf().Instance
	lo, hi, _ := ic.Ports()
	reserved, _ := parsePortList(ic.ReservedPorts)
	oldPublishes := func(p int) bool {
		if old == nil || !old.Running() {
			return false
		}
		for _, pb := range old.Spec.Ports {
			if pb.HostPort == p {
				return true
			}
		}
		return false
	}
	usable := func(p int) bool {
		return !reserved.has(p) && (oldPublishes(p) || !a.portInUse(ic.BindAddress, p))
	}
	wasRunning := old != nil && old.Running()
	port, hasPort := a.reg.Port(id)
	if req.DryRun {
		if !hasPort {
			var ok bool
			if port, ok = a.ports.preview(a.reg, e.Port, lo, hi, usable); !ok {
				return fail("no free port: every port of %d-%d is reserved or in use on the host", lo, hi)
			}
		}
		it.Port, it.OldPort = port, oldPortOf(e.Port, port)
		it.Action = socketapi.ImportWouldImport
		notes = append(notes, importPlan(old, wasRunning))
		it.Message = strings.Join(notes, "; ")
		return it
	}
	if !hasPort {
		now := a.now().UnixMilli()
		rec := registry.Record{UserID: id, ContainerName: containerName(id), Image: ic.Image,
			UID: a.recordUID(id), State: StateMissing, CreatedAtMs: now, LastUsedAtMs: now}
		if port, err = a.ports.claimFor(a.reg, rec, e.Port, lo, hi, usable); err != nil {
			if copied {
				// Not imported, so not kept: the next import copies anew.
				if rerr := os.RemoveAll(dest); rerr != nil {
					return fail("%v (and removing the copy %s failed: %v)%s", err, dest, rerr, restartOld())
				}
				return fail("%v; nothing of it kept%s", err, restartOld())
			}
			return fail("%v (data dir %s kept: the next import goes on from there)%s", err, dest, restartOld())
		}
	}
	it.Port, it.OldPort = port, oldPortOf(e.Port, port)
	if old != nil {
		if err := a.removeForeign(ctx, *old); err != nil {
			return fail("remove the old container %s: %v (data dir %s kept: the next import goes on from there)%s", old.Name, err, dest, restartOld())
		}
		notes = append(notes, fmt.Sprintf("old container %s removed", old.Name))
	}
	unlock()
	locked = false
	it.Action = socketapi.ImportImported
	if wasRunning {
		in, err := a.Ensure(ctx, id, InstanceSpec{}, EnsureOptions{})
		if err != nil {
			return fail("data imported and old container removed, but the instance did not start: %v (the next ensure tries again)", err)
		}
		it.Port, it.OldPort = in.Port, oldPortOf(e.Port, in.Port)
		notes = append(notes, "instance running")
	} else if old != nil {
		notes = append(notes, "the old container was stopped: the instance is made at the user's next ensure")
	} else {
		notes = append(notes, "no container to replace: the instance is made at the user's next ensure")
	}
	it.Message = strings.Join(notes, "; ")
	return it
}

// oldPortOf is the users file's port when the user got another one.
func oldPortOf(old, port int) int {
	if old == port {
		return 0
	}
	return old
}

// importPlan says what a dry run would do with the old container.
func importPlan(old *runtime.Container, running bool) string {
	switch {
	case old == nil:
		return "no container to replace"
	case running:
		return fmt.Sprintf("would replace the running container %s with a running instance", old.Name)
	}
	return fmt.Sprintf("would remove the stopped container %s (the instance is made at the user's next ensure)", old.Name)
}

// stopForeign stops (gracefully) a container zaki-agent did not make.
func (a *Agent) stopForeign(ctx context.Context, c runtime.Container) error {
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := a.rt.Stop(ctx, []string{c.ID}, seconds(a.conf().Instance.StopTimeoutSeconds)); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	return nil
}

// removeForeign stops (gracefully) and removes a container zaki-agent did
// not make.
func (a *Agent) removeForeign(ctx context.Context, c runtime.Container) error {
	if c.Running() {
		if err := a.stopForeign(ctx, c); err != nil {
			return err
		}
	}
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := a.rt.Remove(ctx, []string{c.ID}, runtime.RemoveOptions{Force: true}); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	return nil
}

// copyStats counts what a copy copied and skipped.
type copyStats struct {
	files   int
	bytes   int64
	entries int
	skipped []string
}

// copyUserData copies the tenant-writable tree src into dest, which must
// not exist, through a temp dir beside it (see Import). In a dry run it
// only walks and counts.
func (a *Agent) copyUserData(src, dest, userID string, req ImportRequest) (copyStats, error) {
	st := copyStats{skipped: []string{}}
	parent, err := os.OpenRoot(filepath.Dir(src))
	if err != nil {
		return st, fmt.Errorf("users dir: %v", err)
	}
	defer parent.Close()
	base := filepath.Base(src)
	fi, err := parent.Lstat(base)
	switch {
	case err != nil:
		return st, fmt.Errorf("source data dir: %v", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return st, fmt.Errorf("source data dir %s is a symlink: not followed", src)
	case !fi.IsDir():
		return st, fmt.Errorf("source data dir %s is not a directory", src)
	}
	from, err := parent.OpenRoot(base)
	if err != nil {
		return st, fmt.Errorf("source data dir: %v", err)
	}
	defer from.Close()
	cp := &treeCopy{src: from, maxBytes: req.MaxBytes, maxEntries: req.MaxFiles, st: &st}
	if req.DryRun {
		return st, cp.dir(".", 0)
	}
	uid, gid, err := a.tenantUser(userID)
	if err != nil {
		return st, err
	}
	cp.uid, cp.gid = uid, gid
	a.removeImportTemps(userID)
	tmp, err := os.MkdirTemp(a.dataDir, importTempPrefix+userID+"-")
	if err != nil {
		return st, fmt.Errorf("temp dir: %v", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if cp.dst, err = os.OpenRoot(tmp); err != nil {
		return st, fmt.Errorf("temp dir: %v", err)
	}
	defer cp.dst.Close()
	if err := cp.dir(".", 0); err != nil {
		return st, err
	}
	if err := cp.dst.Chown(".", uid, gid); err != nil {
		return st, fmt.Errorf("chown the copy: %v", err)
	}
	if err := renameNoReplace(tmp, dest); err != nil {
		return st, fmt.Errorf("move the copy into place at %s: %v", dest, err)
	}
	done = true
	return st, nil
}

// emptyTree reports whether dir holds directories alone (at most a
// thousand), no file, no symlink, nothing else.
func emptyTree(dir string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	n := 0
	err = fs.WalkDir(root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if n++; err != nil || !d.IsDir() || n > 1000 {
			return fs.ErrExist
		}
		return nil
	})
	return err == nil
}

// removeImportTemps removes the temp dirs an import of userID left behind
// (a crash mid-copy). Called with the user's lock held.
func (a *Agent) removeImportTemps(userID string) {
	old, _ := filepath.Glob(filepath.Join(a.dataDir, importTempPrefix+userID+"-*"))
	for _, p := range old {
		// MkdirTemp's suffix has no dash: ".import-a-b-1" is user a-b's.
		if rest := strings.TrimPrefix(filepath.Base(p), importTempPrefix+userID+"-"); !strings.Contains(rest, "-") {
			os.RemoveAll(p)
		}
	}
}

// renameNoReplace renames the dir from to to, failing when to exists.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: check, then rename (a
		// dir renamed onto a non-empty one fails all the same).
		if _, err := os.Lstat(to); err == nil {
			return fs.ErrExist
		}
		return os.Rename(from, to)
	}
	return err
}

// treeCopy copies (dst set) or walks (dst nil) a tenant-writable tree.
type treeCopy struct {
	src, dst   *os.Root
	uid, gid   int
	maxBytes   int64
	maxEntries int
	st         *copyStats
}

// dir copies the dir rel of src, and what it holds, depth levels down.
func (cp *treeCopy) dir(rel string, depth int) error {
	if depth > maxImportDepth {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "%s: deeper than %d levels", rel, maxImportDepth)
	}
	want, err := cp.src.Lstat(rel)
	if err != nil {
		return fmt.Errorf("read %s: %v", rel, err)
	}
	d, err := cp.src.Open(rel)
	if err != nil {
		return fmt.Errorf("read %s: %v", rel, err)
	}
	defer d.Close()
	if got, err := d.Stat(); err != nil || !got.IsDir() || !os.SameFile(want, got) {
		return fmt.Errorf("read %s: it changed while read (a tenant's doing?)", rel)
	}
	for {
		ents, err := d.ReadDir(256)
		for _, ent := range ents {
			if err := cp.entry(path.Join(rel, ent.Name()), depth); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %v", rel, err)
		}
	}
	if cp.dst != nil && rel != "." {
		cp.dst.Chtimes(rel, want.ModTime(), want.ModTime())
	}
	return nil
}

// entry copies one entry of the tree, or skips it.
func (cp *treeCopy) entry(rel string, depth int) error {
	cp.st.entries++
	if cp.st.entries > cp.maxEntries {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "more than %d entries (files, dirs and others): over the bound maxFiles", cp.maxEntries)
	}
	fi, err := cp.src.Lstat(rel)
	if err != nil {
		return fmt.Errorf("read %s: %v", rel, err)
	}
	skip := func(why string) error {
		cp.st.skipped = append(cp.st.skipped, rel+": "+why)
		return nil
	}
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		return skip("symlink, not followed")
	case mode.IsDir():
		if cp.dst != nil {
			if err := cp.dst.Mkdir(rel, 0o700); err != nil {
				return fmt.Errorf("copy %s: %v", rel, err)
			}
			if err := cp.dst.Chown(rel, cp.uid, cp.gid); err != nil {
				return fmt.Errorf("copy %s: %v", rel, err)
			}
		}
		return cp.dir(rel, depth+1)
	case mode&fs.ModeDevice != 0:
		return skip("device")
	case mode&fs.ModeNamedPipe != 0:
		return skip("fifo")
	case mode&fs.ModeSocket != 0:
		return skip("socket")
	case !mode.IsRegular():
		return skip("not a regular file")
	case links(fi) > 1:
		return skip(fmt.Sprintf("regular file with %d hard links, not copied", links(fi)))
	}
	return cp.file(rel, fi)
}

// file copies the regular file rel, whose lstat is want.
func (cp *treeCopy) file(rel string, want fs.FileInfo) error {
	if cp.st.bytes+want.Size() > cp.maxBytes {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "more than %d bytes: over the bound maxBytes", cp.maxBytes)
	}
	if cp.dst == nil {
		cp.st.files++
		cp.st.bytes += want.Size()
		return nil
	}
	// O_NONBLOCK: a fifo swapped in after the lstat does not block the
	// open; the fstat below refuses it, and anything else swapped in.
	f, err := cp.src.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("copy %s: %v", rel, err)
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil || !got.Mode().IsRegular() || !os.SameFile(want, got) || links(got) > 1 {
		cp.st.skipped = append(cp.st.skipped, rel+": changed while read, not copied")
		return nil
	}
	perm := os.FileMode(0o600)
	if want.Mode()&0o111 != 0 {
		perm = 0o700
	}
	out, err := cp.dst.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("copy %s: %v", rel, err)
	}
	defer out.Close()
	if err := out.Chown(cp.uid, cp.gid); err != nil {
		return fmt.Errorf("copy %s: %v", rel, err)
	}
	// The file may grow while read: never past the bound.
	n, err := io.Copy(out, io.LimitReader(f, cp.maxBytes-cp.st.bytes+1))
	cp.st.bytes += n
	if err != nil {
		return fmt.Errorf("copy %s: %v", rel, err)
	}
	if cp.st.bytes > cp.maxBytes {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "more than %d bytes: over the bound maxBytes", cp.maxBytes)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %v", rel, err)
	}
	cp.st.files++
	mt := want.ModTime()
	cp.dst.Chtimes(rel, time.Time{}, mt)
	return nil
}

// links is a file's hard link count (1 when unknown).
func links(fi fs.FileInfo) uint64 {
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}
