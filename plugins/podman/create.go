package podman

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// The annotations Create adds (annotations are not labels: the agent
// never sees them). They record what podman normalizes away, so that
// Inspect reads the spec back in its own terms.
const (
	// annImage is the image reference as the caller gave it: podman
	// stores the resolved name ("localhost/zaki/gateway-stub:latest" for
	// "zaki/gateway-stub:latest").
	annImage = "zaki.runtime.image"
	// annCapDropAll marks a spec that dropped ALL capabilities: podman
	// stores the effective set instead (CapDrop lists each default
	// capability not kept), so "ALL plus NET_BIND_SERVICE" cannot be told
	// from a list otherwise.
	annCapDropAll = "zaki.runtime.capDropAll"
	// annImplicitUlimits lists the ulimits Create added (see
	// implicitUlimits), which read back as absent, as docker's inherited
	// limits do.
	annImplicitUlimits = "zaki.runtime.implicitUlimits"
	// annLogMaxSize is the log's max size as a byte count: podman's
	// inspect prints it rounded ("10.49MB").
	annLogMaxSize = "zaki.runtime.logMaxSize"
)

// createArgs is the argv of `podman create` up to (not including) the env
// file and the image: the options docker's client reads alike
// (cliargs.CreateFlags), then podman's own. limits gives the process's
// soft and hard limit of a resource (see implicitUlimits).
func createArgs(spec runtime.ContainerSpec, limits func(resource int) (soft, hard int64, ok bool)) ([]string, error) {
	health, err := healthArgs(spec.Healthcheck)
	if err != nil {
		return nil, err
	}
	a := append([]string{"create"}, cliargs.CreateFlags(spec, health)...)
	if spec.Security.ReadOnlyRoot {
		// Podman mounts tmpfs on /run, /tmp and /var/tmp of a read-only
		// container unless told not to; docker mounts none: only the
		// spec's tmpfs are writable.
		a = append(a, "--read-only-tmpfs=false")
	}
	implicit := implicitUlimits(spec.Resources.Ulimits, limits)
	var names []string
	for _, u := range implicit {
		a = append(a, "--ulimit="+u.String())
		names = append(names, u.Name)
	}
	// The log on k8s-file, whose only bound is its size: conmon empties
	// the one file when it reaches it (podman 4.3 takes --log-opt
	// max-file and ignores it, so it is not passed).
	if log := cliargs.LogFlags(spec.Log, "k8s-file", false); len(log) > 0 {
		n, _ := runtime.ParseBytes(spec.Log.MaxSize)
		a = append(a, log...)
		a = append(a, "--annotation="+annLogMaxSize+"="+strconv.FormatInt(n, 10))
	}
	a = append(a, "--annotation="+annImage+"="+spec.Image)
	if slices.ContainsFunc(spec.Security.CapDrop, func(c string) bool { return strings.EqualFold(c, "ALL") }) {
		a = append(a, "--annotation="+annCapDropAll+"=true")
	}
	if len(names) > 0 {
		// --annotation splits its value at commas: the names are space-separated.
		a = append(a, "--annotation="+annImplicitUlimits+"="+strings.Join(names, " "))
	}
	return a, nil
}

// The ulimits podman sets on every container unless told otherwise: it
// raises nofile and nproc to 1048576, which root without CAP_SYS_RESOURCE
// may not do ("error setting rlimit type 7: operation not permitted").
// Create therefore sets each one the spec leaves out to this process's
// own soft and hard limit, which a child may always have, as a docker
// container inherits dockerd's. One catch: podman lowers its own nproc
// limit (and so its containers' ceiling) to the kernel's pid_max, so
// nproc is capped there too.
var implicitResources = []struct {
	name     string
	resource int
}{
	{"nofile", unix.RLIMIT_NOFILE},
	{"nproc", unix.RLIMIT_NPROC},
}

// implicitUlimits returns the ulimits of implicitResources that spec
// lacks, from limits.
func implicitUlimits(spec []runtime.Ulimit, limits func(resource int) (soft, hard int64, ok bool)) []runtime.Ulimit {
	var out []runtime.Ulimit
	for _, r := range implicitResources {
		if slices.ContainsFunc(spec, func(u runtime.Ulimit) bool { return u.Name == r.name }) {
			continue
		}
		if soft, hard, ok := limits(r.resource); ok {
			out = append(out, runtime.Ulimit{Name: r.name, Soft: soft, Hard: hard})
		}
	}
	return out
}

// processUlimits reads one of this process's limits, nproc capped at
// pid_max (see implicitResources); unlimited is -1, as --ulimit writes it.
func processUlimits(resource int) (soft, hard int64, ok bool) {
	var l unix.Rlimit
	if err := unix.Getrlimit(resource, &l); err != nil {
		return 0, 0, false
	}
	limit := uint64(unix.RLIM_INFINITY)
	if resource == unix.RLIMIT_NPROC {
		if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
				limit = n
			}
		}
	}
	conv := func(v uint64) int64 {
		v = min(v, limit)
		if v == unix.RLIM_INFINITY || v > 1<<62 {
			return -1
		}
		return int64(v)
	}
	return conv(l.Cur), conv(l.Max), true
}
