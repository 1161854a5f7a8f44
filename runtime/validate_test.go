package runtime_test

import (
	"errors"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// minimalSpec is a valid spec that sets none of the fields a runtime may
// leave unenforced.
func minimalSpec() runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:  "zaki-user-u1",
		Image: "zaki/gateway-stub:latest",
		Ports: []runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 18790, ContainerPort: 18789}},
	}
}

// setters set, each, one of the fields a runtime may list in
// Info.Unenforced.
var setters = map[string]func(*runtime.ContainerSpec){
	runtime.FieldNoNewPrivileges: func(s *runtime.ContainerSpec) { s.Security.NoNewPrivileges = true },
	runtime.FieldMemorySwap: func(s *runtime.ContainerSpec) {
		s.Resources.Memory, s.Resources.MemorySwap = "2g", "2g"
	},
	runtime.FieldCPUShares: func(s *runtime.ContainerSpec) { s.Resources.CPUShares = 512 },
}

// swarmInfo is the Info of a runtime that places containers and cannot
// enforce the fields of setters nor bind one address.
func swarmInfo() runtime.Info {
	return runtime.Info{
		Runtime:      "swarm",
		Unenforced:   []string{runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldCPUShares, runtime.FieldHostIP},
		Capabilities: []string{runtime.CapPlacement},
	}
}

func TestUnenforcedFields(t *testing.T) {
	for field, set := range setters {
		for _, tc := range []struct {
			name       string
			set        bool
			unenforced bool
			elsewhere  bool
			want       bool // listed by Unenforced, refused by ValidateFor
		}{
			{"unset, enforced", false, false, false, false},
			{"unset, unenforced", false, true, false, false},
			{"unset, unenforced, elsewhere", false, true, true, false},
			{"set, enforced", true, false, false, false},
			{"set, enforced, elsewhere", true, false, true, false},
			{"set, unenforced", true, true, false, true},
			{"set, unenforced, elsewhere", true, true, true, false},
		} {
			t.Run(field+"/"+tc.name, func(t *testing.T) {
				spec := minimalSpec()
				if tc.set {
					set(&spec)
				}
				info := runtime.Info{Runtime: "swarm"}
				if tc.unenforced {
					info.Unenforced = []string{"some.futureField", field}
				}
				var elsewhere []string
				if tc.elsewhere {
					elsewhere = []string{field}
				}
				got := runtime.Unenforced(spec, info, elsewhere)
				err := runtime.ValidateFor(spec, info, elsewhere)
				if !tc.want {
					assert.Check(t, is.Len(got, 0))
					assert.Check(t, err)
					return
				}
				assert.Check(t, is.DeepEqual(got, []string{field}))
				assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%v", err)
				assert.Check(t, is.ErrorContains(err, field+" is set but the runtime swarm cannot enforce it"))
				assert.Check(t, is.ErrorContains(err, "instance.enforcedByNodes"))
				// ValidateOn, the runtime's own check, does not refuse it:
				// the runtime cannot know what its nodes enforce.
				assert.Check(t, spec.ValidateOn(info))
			})
		}
	}
}

func TestValidateForNamesEveryField(t *testing.T) {
	spec := minimalSpec()
	for _, set := range setters {
		set(&spec)
	}
	info := swarmInfo()
	assert.DeepEqual(t, runtime.Unenforced(spec, info, nil), []string{
		runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldCPUShares, runtime.FieldHostIP,
	})
	err := runtime.ValidateFor(spec, info, []string{runtime.FieldCPUShares})
	assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument))
	for _, f := range []string{runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldHostIP} {
		assert.Check(t, is.ErrorContains(err, f+" is set"))
	}
	assert.Check(t, !strings.Contains(err.Error(), runtime.FieldCPUShares), "%v", err)
	// A local engine enforces them all.
	assert.Check(t, runtime.ValidateFor(spec, runtime.Info{Runtime: "docker"}, nil))
	assert.Check(t, is.Len(runtime.Unenforced(spec, runtime.Info{Runtime: "docker"}, nil), 0))
}

func TestValidateHostIP(t *testing.T) {
	anyAddr := minimalSpec()
	anyAddr.Ports[0].HostIP = ""
	one := minimalSpec()

	// Everyone else: required, as before.
	for _, info := range []runtime.Info{{}, {Runtime: "docker"}, {Runtime: "x", Unenforced: []string{runtime.FieldNoNewPrivileges}, Capabilities: []string{runtime.CapPlacement}}} {
		assert.Check(t, errors.Is(anyAddr.ValidateOn(info), runtime.ErrInvalidArgument), "%+v", info)
		assert.Check(t, errors.Is(runtime.ValidateFor(anyAddr, info, nil), runtime.ErrInvalidArgument))
		assert.Check(t, one.ValidateOn(info))
		assert.Check(t, runtime.ValidateFor(one, info, nil))
	}
	assert.Check(t, errors.Is(anyAddr.Validate(), runtime.ErrInvalidArgument))

	// A runtime that binds every address: "" is every address, one address
	// is a field it cannot enforce.
	info := runtime.Info{Runtime: "swarm", Unenforced: []string{runtime.FieldHostIP}}
	assert.Check(t, anyAddr.ValidateOn(info))
	assert.Check(t, runtime.ValidateFor(anyAddr, info, nil))
	assert.Check(t, is.Len(runtime.Unenforced(anyAddr, info, nil), 0))
	assert.Check(t, one.ValidateOn(info))
	assert.Check(t, is.DeepEqual(runtime.Unenforced(one, info, nil), []string{runtime.FieldHostIP}))
	assert.Check(t, is.ErrorContains(runtime.ValidateFor(one, info, nil), "ports.hostIP is set but the runtime swarm cannot enforce it"))
	assert.Check(t, runtime.ValidateFor(one, info, []string{runtime.FieldHostIP}))
	// A bad address stays refused.
	bad := minimalSpec()
	bad.Ports[0].HostIP = "localhost"
	assert.Check(t, errors.Is(bad.ValidateOn(info), runtime.ErrInvalidArgument))
}

func TestValidatePlacement(t *testing.T) {
	spec := minimalSpec()
	spec.Placement.Node = "n1"
	for _, info := range []runtime.Info{{}, {Runtime: "docker"}, {Runtime: "x", Unenforced: []string{runtime.FieldPlacement}}} {
		err := spec.ValidateOn(info)
		assert.Check(t, errors.Is(err, runtime.ErrInvalidArgument), "%+v", info)
		assert.Check(t, is.ErrorContains(err, "placement.node is set"))
	}
	assert.Check(t, errors.Is(spec.Validate(), runtime.ErrInvalidArgument))
	assert.Check(t, spec.ValidateOn(swarmInfo()))
	assert.Check(t, runtime.ValidateFor(spec, swarmInfo(), []string{runtime.FieldHostIP}))
	spec.Placement.Node = "-n1"
	assert.Check(t, errors.Is(spec.ValidateOn(swarmInfo()), runtime.ErrInvalidArgument))
	// "" lets the runtime choose, everywhere.
	spec.Placement.Node = ""
	assert.Check(t, spec.Validate())
}

func TestValidateDirSpec(t *testing.T) {
	ok := runtime.DirSpec{Node: "n1", Path: "/var/lib/zaki-agent/instances/u1", UID: 200000, GID: 200000}
	assert.Check(t, ok.Validate())
	for _, d := range []runtime.DirSpec{
		{Node: "", Path: ok.Path},
		{Node: "n1", Path: "relative"},
		{Node: "n1", Path: "/a/../b"},
		{Node: "n1", Path: "/"},
		{Node: "n1", Path: ok.Path, UID: -1},
		{Node: "n1", Path: ok.Path, GID: 1 << 31},
	} {
		assert.Check(t, errors.Is(d.Validate(), runtime.ErrInvalidArgument), "%+v", d)
	}
}
