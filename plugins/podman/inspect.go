package podman

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// `podman container inspect` looks like docker's inspect and is not:
// capabilities are the effective set, ulimits are RLIMIT_ names, tmpfs
// options carry podman's defaults, mounts are at the top, networks are
// only in NetworkSettings. readBack corrects the common reading.

// defaultNetwork is the network podman puts a container on when it names
// none (containers.conf default_network); it reads back as "".
const defaultNetwork = "podman"

// podmanStates maps podman's states onto the runtime's: the ones docker
// has not are the nearest docker state.
var podmanStates = map[string]runtime.State{
	"configured":  runtime.StateCreated,
	"initialized": runtime.StateCreated,
	"created":     runtime.StateCreated,
	"running":     runtime.StateRunning,
	"stopping":    runtime.StateRunning, // still up, being stopped
	"paused":      runtime.StatePaused,
	"stopped":     runtime.StateExited,
	"exited":      runtime.StateExited,
	"removing":    runtime.StateRemoving,
}

// podmanTmpfsDefaults are the tmpfs options podman adds to every tmpfs:
// they read back as absent.
var podmanTmpfsDefaults = map[string]bool{"rw": true, "rprivate": true, "nosuid": true, "nodev": true, "tmpcopyup": true}

// readBack reads what podman stores its own way: the image as Create's
// annotation gave it, a spec that dropped ALL capabilities as ALL plus the
// capabilities the container has (otherwise as podman reports them: its
// delta against docker's default set, so AUDIT_WRITE and MKNOD, which
// podman's own default set lacks, always read as dropped), the ulimits
// Create added and podman's default tmpfs options as absent, the
// network from NetworkSettings, the bind mounts from the top-level list.
func readBack(j *clirt.Inspect, c *runtime.Container) {
	ann := j.Config.Annotations
	s := &c.Spec
	c.Image = cmp.Or(ann[annImage], j.Config.Image, j.ImageName)
	s.Image = c.Image

	implicit := strings.Fields(ann[annImplicitUlimits])
	s.Resources.Ulimits = slices.DeleteFunc(s.Resources.Ulimits, func(u runtime.Ulimit) bool { return slices.Contains(implicit, u.Name) })
	if len(s.Resources.Ulimits) == 0 {
		s.Resources.Ulimits = nil
	}

	sec := &s.Security
	for i, t := range sec.Tmpfs {
		var opts []string
		for o := range strings.SplitSeq(t.Options, ",") {
			if o != "" && !podmanTmpfsDefaults[o] {
				opts = append(opts, o)
			}
		}
		sec.Tmpfs[i].Options = strings.Join(opts, ",")
	}
	if ann[annCapDropAll] == "true" {
		sec.CapDrop = []string{"ALL"}
		sec.CapAdd = clirt.CapNames(j.BoundingCaps)
	}
	if ap := j.AppArmorProfile; sec.ApparmorProfile == "" && ap != "" && ap != "unconfined" && !strings.HasPrefix(ap, "containers-default") {
		sec.ApparmorProfile = ap
	}

	// k8s-file: one file, its size bound exact in the annotation when
	// podman has one at all.
	s.Log = runtime.LogConfig{}
	if size := ann[annLogMaxSize]; size != "" && j.HostConfig.LogConfig.Size != "" && j.HostConfig.LogConfig.Size != "0B" {
		s.Log = runtime.LogConfig{MaxSize: size, MaxFiles: 1}
	}

	s.Network = network(j)
	s.Mounts = nil
	for _, m := range j.Mounts {
		if m.Type == "bind" {
			s.Mounts = append(s.Mounts, runtime.Mount{Source: m.Source, Target: m.Destination, ReadOnly: !m.RW})
		}
	}
}

// network is the container's network: podman says "bridge" for any
// bridge network and names it only in NetworkSettings.
func network(j *clirt.Inspect) string {
	mode := j.HostConfig.NetworkMode
	if mode != "bridge" && mode != "" {
		return mode // host, none, container:..., slirp4netns
	}
	names := slices.Sorted(maps.Keys(j.NetworkSettings.Networks))
	if len(names) == 1 && names[0] == defaultNetwork {
		return ""
	}
	return strings.Join(names, ",")
}
