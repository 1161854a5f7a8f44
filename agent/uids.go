package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The container user of each tenant. By default (instance.user empty)
// every user gets a uid of its own from instance.uidRange, gid the same
// number, reserved in the registry for the user's life like its port:
// one tenant that escapes its container then owns its own data alone,
// and no account of the host (the first login account is uid 1000) can
// read a tenant's /proc/<pid>/environ, its data dir or signal its
// processes. A fixed instance.user makes every tenant run as that one
// uid (weaker: see warnFixedUser).

// fixedUser reports whether the config names one user for every tenant.
func (c *InstanceConfig) fixedUser() bool { return c.User != "" }

// knownUser is the "uid:gid" userID's container is made with, as far as
// it is known without reserving anything: the fixed instance.user, or
// the user's reserved uid; "" for a user with no uid yet (a new user, or
// one whose instance was made under a fixed user), whose next create
// reserves one. It is part of the config hash.
func (a *Agent) knownUser(userID string) string {
	ic := &a.conf().Instance
	if ic.fixedUser() {
		return ic.User
	}
	if uid, ok := a.reg.UID(userID); ok {
		return userString(uid)
	}
	return ""
}

// recordUID is the uid userID's record keeps: its own, or 0 under a
// fixed instance.user.
func (a *Agent) recordUID(userID string) int {
	if a.conf().Instance.fixedUser() {
		return 0
	}
	u, _ := a.reg.UID(userID)
	return u
}

func userString(uid int) string { u := strconv.Itoa(uid); return u + ":" + u }

// tenantUser returns the uid and gid userID's container runs as and its
// data is owned by: the fixed instance.user, or the user's own uid,
// reserved first when it has none (durably): the uid of the range that
// owns the user's data dir when no user has it (a registry restored from
// an older copy), else the lowest uid of instance.uidRange that no user
// has, that has no account on the host (see hostIDs) and that owns no
// data dir.
func (a *Agent) tenantUser(userID string) (uid, gid int, err error) {
	ic := &a.conf().Instance
	if ic.fixedUser() {
		return ic.UIDGID()
	}
	if u, ok := a.reg.UID(userID); ok {
		return u, u, nil
	}
	lo, hi, err := ic.UIDs()
	if err != nil {
		return 0, 0, err
	}
	host, err := readHostIDs(a.accountsDir)
	if err != nil {
		return 0, 0, fmt.Errorf("reserve a uid for user %q: %w", userID, err)
	}
	// A data dir owned by a uid of the range that no user has: the user's
	// own, whose reservation the registry lost. Kept (nothing to hand over).
	if u, ok := a.reclaimUID(userID, lo, hi, host); ok {
		return u, u, nil
	}
	owners := a.dataDirOwners()
	u, err := a.reg.ReserveUID(userID, lo, hi, func(u int) bool { return host.taken(u) || owners[u] })
	if err != nil {
		return 0, 0, fmt.Errorf("%w (widen instance.uidRange)", err)
	}
	a.log.Info("uid reserved", "user", userID, "uid", u)
	return u, u, nil
}

// dataDirOwners returns the owners of the entries of the data dir: a uid
// that owns a user's dir is never handed to another user, even when the
// registry has lost its reservation.
func (a *Agent) dataDirOwners() map[int]bool {
	owners := map[int]bool{}
	ents, err := os.ReadDir(a.dataDir)
	if err != nil {
		return owners
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owners[int(st.Uid)] = true
				owners[int(st.Gid)] = true
			}
		}
	}
	return owners
}

// hostIDs are the ids the host uses for itself: the uids of passwd, the
// gids of group, and the subordinate ranges of subuid and subgid (whose
// owners' user namespaces run as those ids).
type hostIDs struct {
	ids    map[int]bool
	ranges [][2]int // inclusive
}

// taken reports whether uid, or gid the same number, belongs to the host.
func (h hostIDs) taken(id int) bool {
	if h.ids[id] {
		return true
	}
	for _, r := range h.ranges {
		if id >= r[0] && id <= r[1] {
			return true
		}
	}
	return false
}

// readHostIDs reads the account files in dir (read at every reservation,
// so that an account added since counts). passwd and group must be
// readable; subuid and subgid may be missing.
func readHostIDs(dir string) (hostIDs, error) {
	h := hostIDs{ids: map[int]bool{}}
	for _, name := range []string{"passwd", "group", "subuid", "subgid"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && (name == "subuid" || name == "subgid") {
				continue
			}
			return h, fmt.Errorf("read the host's accounts: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fields := strings.Split(line, ":")
			switch name {
			case "passwd", "group": // name:x:id:...
				if len(fields) >= 3 {
					if id, err := strconv.Atoi(fields[2]); err == nil {
						h.ids[id] = true
					}
				}
			default: // owner:first:count
				if len(fields) == 3 {
					first, err1 := strconv.Atoi(fields[1])
					n, err2 := strconv.Atoi(fields[2])
					if err1 == nil && err2 == nil && n > 0 {
						h.ranges = append(h.ranges, [2]int{first, first + n - 1})
					}
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return h, fmt.Errorf("read the host's accounts: %s: %w", name, err)
		}
	}
	return h, nil
}

// warnFixedUser logs, when next names a fixed instance.user that cur
// (nil at start) did not, why that is weaker than a uid per tenant.
func (a *Agent) warnFixedUser(cur, next *Config) {
	if !next.Instance.fixedUser() || (cur != nil && cur.Instance.User == next.Instance.User) {
		return
	}
	a.log.Warn("instance.user is set: every tenant runs as that one uid and owns every tenant's data; "+
		"a tenant that escapes its container can read and kill all the others, and a host account with that uid "+
		"can read every tenant's secrets (/proc/<pid>/environ) and data; leave it empty for a uid per tenant from instance.uidRange",
		"user", next.Instance.User)
}

// reclaimUID reserves for userID, when the registry lost its uid, the one
// that owns its data dir, if that is in [lo, hi] and no host account's.
func (a *Agent) reclaimUID(userID string, lo, hi int, host hostIDs) (int, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(a.dataDir, userID), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return 0, false
	}
	own := int(st.Uid)
	if own < lo || own > hi || host.taken(own) {
		return 0, false
	}
	u, err := a.reg.ReserveUID(userID, own, own, nil)
	if err != nil {
		return 0, false
	}
	a.log.Info("uid reserved: the one that owns the user's data dir", "user", userID, "uid", u)
	return u, true
}

// reclaimAdoptedUID gives a container adopted without its registry entry
// back its user's uid (see reclaimUID), so that its spec is the one it
// was made with.
func (a *Agent) reclaimAdoptedUID(userID string) {
	ic := &a.conf().Instance
	if ic.fixedUser() {
		return
	}
	if _, ok := a.reg.UID(userID); ok {
		return
	}
	lo, hi, err := ic.UIDs()
	if err != nil {
		return
	}
	host, err := readHostIDs(a.accountsDir)
	if err != nil {
		return
	}
	a.reclaimUID(userID, lo, hi, host)
}
