package agent

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// A user's data dir holds what the caller's files and seed files name and
// what the instance writes itself; instance.mounts decides which of its
// sub-dirs the container sees, and where.

// Limits on the caller's files and seed files (together).
const (
	maxFiles          = 64
	maxFileBytes      = 256 << 10
	maxFilesBytes     = 4 << 20
	maxFileDepth      = 8
	maxFilePathLength = 255
)

// pathElemRE is one element of a path in the data dir: a dot may lead
// (".openclaw"), but "." and ".." are refused apart.
var pathElemRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// checkRelPath checks a path relative to the data dir: elements of
// letters, digits, '.', '_' and '-', separated by single slashes, none of
// them "." or "..", at most maxFileDepth deep.
func checkRelPath(p string) error {
	if p == "" || len(p) > maxFilePathLength {
		return fmt.Errorf("want 1 to %d bytes", maxFilePathLength)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("want a path relative to the data dir, not an absolute one")
	}
	elems := strings.Split(p, "/")
	if len(elems) > maxFileDepth {
		return fmt.Errorf("%d levels deep, at most %d", len(elems), maxFileDepth)
	}
	for _, el := range elems {
		switch {
		case el == "." || el == "..":
			return fmt.Errorf("%q elements are not allowed", el)
		case !pathElemRE.MatchString(el):
			return fmt.Errorf("want elements of letters, digits, '.', '_' and '-' separated by single slashes")
		}
	}
	return nil
}

// within reports whether p lies strictly inside dir ("." holds everything).
func within(p, dir string) bool {
	return dir == "." || strings.HasPrefix(p, dir+"/")
}

// mount is one sub-dir of a user's data dir ("." for all of it) and where
// the container sees it.
type mount struct {
	Dir    string `json:"dir"`
	Target string `json:"target"`
}

// mounts returns the configured mounts, or nil when none are configured
// (the whole data dir at dataMountPath: see effectiveSpec.mountList).
func (c *InstanceConfig) mounts() ([]mount, error) {
	if len(c.Mounts) == 0 {
		return nil, nil
	}
	ms := make([]mount, 0, len(c.Mounts))
	for _, s := range c.Mounts {
		dir, target, ok := strings.Cut(s, ":")
		if !ok || dir == "" || target == "" {
			return nil, fmt.Errorf("%q: want subdir:/container/path", s)
		}
		if dir != "." {
			if err := checkRelPath(dir); err != nil {
				return nil, fmt.Errorf("%q: sub-dir %q: %v", s, dir, err)
			}
		}
		if !path.IsAbs(target) || path.Clean(target) != target || target == "/" || strings.ContainsAny(target, ",:\"'\x00\n\r") {
			return nil, fmt.Errorf("%q: container path %q: want a clean absolute path other than / (no , : quotes)", s, target)
		}
		for _, m := range ms {
			switch {
			case m.Dir == dir:
				return nil, fmt.Errorf("sub-dir %q is mounted twice", dir)
			case within(dir, m.Dir) || within(m.Dir, dir):
				return nil, fmt.Errorf("sub-dirs %q and %q nest: a sub-dir would be mounted twice", m.Dir, dir)
			case m.Target == target:
				return nil, fmt.Errorf("container path %q is used twice", target)
			case strings.HasPrefix(target+"/", m.Target+"/") || strings.HasPrefix(m.Target+"/", target+"/"):
				return nil, fmt.Errorf("container paths %q and %q nest", m.Target, target)
			}
		}
		ms = append(ms, mount{Dir: dir, Target: target})
	}
	return ms, nil
}

// mountList returns the mounts of e: the configured ones, or the whole
// data dir at DataMountPath.
func (e *effectiveSpec) mountList() []mount {
	if len(e.Mounts) > 0 {
		return e.Mounts
	}
	return []mount{{Dir: ".", Target: e.DataMountPath}}
}

// addFiles takes the caller's files (managed: written at every create,
// part of the hash) and seed files (written only where absent, not
// hashed): valid relative paths inside a mounted sub-dir, within the
// limits, no path both a file and a directory of another.
func addFiles(e *effectiveSpec, files, seeds map[string]string) error {
	if n := len(files) + len(seeds); n > maxFiles {
		return invalid("too many files: %d (files and seedFiles), at most %d", n, maxFiles)
	}
	total := 0
	all := make([]string, 0, len(files)+len(seeds))
	for _, set := range []struct {
		field string
		m     map[string]string
		dst   map[string]string
	}{{"files", files, e.Files}, {"seedFiles", seeds, e.SeedFiles}} {
		for name, text := range set.m {
			if err := checkRelPath(name); err != nil {
				return invalid("%s: invalid path %q: %v", set.field, name, err)
			}
			if len(text) > maxFileBytes {
				return invalid("%s: file %q too large: %d bytes, at most %d", set.field, name, len(text), maxFileBytes)
			}
			if set.field == "seedFiles" {
				if _, dup := files[name]; dup {
					return invalid("seedFiles: %q is in files too: a path is managed or seeded, not both", name)
				}
			}
			if !e.mounted(name) {
				return invalid("%s: %q lies in no mounted sub-dir of the data dir (mounts: %s): the instance would never see it", set.field, name, e.mountDirs())
			}
			total += len(text)
			set.dst[name] = text
			all = append(all, name)
		}
	}
	if total > maxFilesBytes {
		return invalid("files too large: %d bytes together, at most %d", total, maxFilesBytes)
	}
	for _, a := range all {
		for _, b := range all {
			if within(b, a) {
				return invalid("file %q is also a directory of %q", a, b)
			}
		}
	}
	return nil
}

// mounted reports whether p lies inside a mounted sub-dir.
func (e *effectiveSpec) mounted(p string) bool {
	for _, m := range e.mountList() {
		if within(p, m.Dir) {
			return true
		}
	}
	return false
}

func (e *effectiveSpec) mountDirs() string {
	var dirs []string
	for _, m := range e.mountList() {
		dirs = append(dirs, m.Dir)
	}
	return strings.Join(dirs, ", ")
}
