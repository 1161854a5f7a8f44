package swarm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/runtime/runtimetest"
)

// swarmSpec is runtimetest.FullSpec without what the swarm runtime
// refuses (profiles, OCI runtime), placed on n2.
func swarmSpec() runtime.ContainerSpec {
	spec := runtimetest.FullSpec()
	spec.Security.SeccompProfile, spec.Security.ApparmorProfile, spec.OCIRuntime = "", "", ""
	spec.Placement.Node = "n2"
	return spec
}

func TestToService(t *testing.T) {
	spec := swarmSpec()
	svc, err := toService(spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(svc.Name, "zaki-user-u1"))
	assert.Check(t, is.Equal(svc.Labels[LabelName], "zaki-user-u1"))
	assert.Check(t, is.Equal(svc.Labels["odd"], "-v=/:/host,x"))
	assert.Check(t, is.Equal(svc.Mode.Replicated.Replicas, uint64(0)))
	cs := svc.TaskTemplate.ContainerSpec
	assert.Check(t, is.DeepEqual(cs.Args, spec.Cmd))
	assert.Check(t, is.Len(cs.Command, 0), "the image's entrypoint stays")
	assert.Check(t, is.DeepEqual(cs.Env, []string{"OTHER=other-secret-value", "SECRET=s3cr3t value"}))
	assert.Check(t, *cs.Init && cs.ReadOnly)
	assert.Check(t, is.Equal(cs.User, "1000:1000"))
	assert.Check(t, is.DeepEqual(cs.CapabilityDrop, []string{"ALL"}))
	assert.Check(t, is.DeepEqual(cs.Healthcheck.Test, []string{"CMD", "/gateway-stub", "-probe"}))
	assert.Check(t, is.Equal(*cs.StopGracePeriod, 2500*time.Millisecond))
	assert.Check(t, is.DeepEqual(cs.Mounts, []engineapi.Mount{
		{Type: "bind", Source: "/var/lib/zaki-agent/instances/u1", Target: "/home/node/.openclaw"},
		{Type: "bind", Source: "/etc/ssl", Target: "/etc/ssl", ReadOnly: true},
		{Type: "tmpfs", Target: "/tmp", TmpfsOptions: &engineapi.TmpfsOptions{SizeBytes: 64 << 20}},
		{Type: "tmpfs", Target: "/run"},
	}))
	lim := svc.TaskTemplate.Resources.Limits
	assert.Check(t, is.DeepEqual(*lim, engineapi.Limit{NanoCPUs: 1.5e9, MemoryBytes: 2 << 30, Pids: 100}))
	assert.Check(t, is.DeepEqual(svc.TaskTemplate.Placement.Constraints,
		[]string{"node.labels.zaki.node==true", "node.labels.zaki.node.name==n2"}))
	rp := svc.TaskTemplate.RestartPolicy
	assert.Check(t, is.Equal(rp.Condition, "on-failure"))
	assert.Check(t, is.Equal(rp.MaxAttempts, uint64(5)))
	assert.Check(t, is.DeepEqual(svc.EndpointSpec.Ports, []engineapi.PortConfig{
		{TargetPort: 18789, PublishedPort: 18790, PublishMode: "host"},
		{Protocol: "udp", TargetPort: 18789, PublishedPort: 18790, PublishMode: "host"},
	}))
	assert.Check(t, is.DeepEqual(svc.TaskTemplate.LogDriver, &engineapi.Driver{Name: "json-file",
		Options: map[string]string{"max-size": "10485760", "max-file": "3"}}))
}

// TestSpecReadBack: a service read back (through its JSON, as the engine
// answers) is the spec it was made from, but for what a service cannot
// hold.
func TestSpecReadBack(t *testing.T) {
	spec := swarmSpec()
	svc, err := toService(spec)
	assert.NilError(t, err)
	b, err := json.Marshal(svc)
	assert.NilError(t, err)
	var back engineapi.Service
	assert.NilError(t, json.Unmarshal([]byte(`{"ID":"9mnp","Spec":`+string(b)+`}`), &back))
	got := fromService(back)

	want := spec
	want.Env = nil                                              // never read back
	want.Network = ""                                           // no networks
	want.Resources.CPUShares, want.Resources.MemorySwap = 0, "" // unenforced
	want.Security.NoNewPrivileges = false                       // unenforced
	want.Resources.Memory = "2147483648"                        // a byte count
	want.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "size=67108864"}, {Path: "/run"}}
	want.Log.MaxSize = "10485760"
	want.Ports = []runtime.PortBinding{ // every address of the node
		{HostPort: 18790, ContainerPort: 18789, Protocol: "tcp"},
		{HostPort: 18790, ContainerPort: 18789, Protocol: "udp"},
	}
	assert.Check(t, is.DeepEqual(got, want))
}

func TestToServiceMapsName(t *testing.T) {
	spec := swarmSpec()
	spec.Name = "zaki-user-a.b"
	svc, err := toService(spec)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(svc.Name, serviceName("zaki-user-a.b")))
	assert.Check(t, is.Equal(fromService(engineapi.Service{Spec: svc}).Name, "zaki-user-a.b"))
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		in       runtime.RestartPolicy
		cond     string
		readBack string
	}{
		{runtime.RestartPolicy{}, "none", "no"},
		{runtime.RestartPolicy{Name: "no"}, "none", "no"},
		{runtime.RestartPolicy{Name: "always"}, "any", "always"},
		{runtime.RestartPolicy{Name: "unless-stopped"}, "any", "always"},
		{runtime.RestartPolicy{Name: "on-failure", MaxRetries: 3}, "on-failure", "on-failure"},
	} {
		rp := restartPolicy(tc.in)
		assert.Check(t, is.Equal(rp.Condition, tc.cond), "%+v", tc.in)
		assert.Check(t, is.Equal(*rp.Delay, restartDelay))
		got := fromService(engineapi.Service{Spec: engineapi.ServiceSpec{TaskTemplate: engineapi.TaskSpec{RestartPolicy: rp}}})
		assert.Check(t, is.Equal(got.Restart.Name, tc.readBack), "%+v", tc.in)
		assert.Check(t, is.Equal(got.Restart.MaxRetries, tc.in.MaxRetries), "%+v", tc.in)
	}
}

func TestToServiceRefuses(t *testing.T) {
	for name, edit := range map[string]func(*runtime.ContainerSpec){
		"seccomp":      func(s *runtime.ContainerSpec) { s.Security.SeccompProfile = "/x.json" },
		"apparmor":     func(s *runtime.ContainerSpec) { s.Security.ApparmorProfile = "p" },
		"oci runtime":  func(s *runtime.ContainerSpec) { s.OCIRuntime = "runsc" },
		"tmpfs option": func(s *runtime.ContainerSpec) { s.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "noexec"}} },
		"tmpfs size":   func(s *runtime.ContainerSpec) { s.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "size=0"}} },
		"tmpfs mode":   func(s *runtime.ContainerSpec) { s.Security.Tmpfs = []runtime.Tmpfs{{Path: "/tmp", Options: "mode=99"}} },
		"own label":    func(s *runtime.ContainerSpec) { s.Labels = map[string]string{LabelName: "x"} },
	} {
		t.Run(name, func(t *testing.T) {
			spec := swarmSpec()
			edit(&spec)
			_, err := toService(spec)
			assert.Check(t, is.ErrorIs(err, runtime.ErrInvalidArgument))
			assert.Check(t, !containsSecret(err.Error(), spec), "error %q shows a secret", err)
		})
	}
}

func containsSecret(s string, spec runtime.ContainerSpec) bool {
	for _, v := range spec.Env {
		if len(v) > 3 && strings.Contains(s, v) {
			return true
		}
	}
	return false
}

func TestTmpfsMode(t *testing.T) {
	o, err := tmpfsOptions(runtime.Tmpfs{Path: "/tmp", Options: "size=1m,mode=1777"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(*o, engineapi.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}))
	assert.Check(t, is.Equal(tmpfsText(o), "size=1048576,mode=1777"))
}

func TestInfoStatic(t *testing.T) {
	i := info()
	assert.Check(t, is.Equal(i.Runtime, "swarm"))
	assert.Check(t, i.Has(runtime.CapPlacement))
	assert.Check(t, is.DeepEqual(i.Unenforced, []string{runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap,
		runtime.FieldCPUShares, runtime.FieldHostIP}))
	// The agent's check refuses the unenforced fields unless node
	// provisioning enforces them, and a spec without them passes.
	spec := swarmSpec()
	assert.Check(t, is.ErrorIs(runtime.ValidateFor(spec, i, nil), runtime.ErrInvalidArgument))
	assert.Check(t, runtime.ValidateFor(spec, i, i.Unenforced))
	spec.Ports[0].HostIP, spec.Ports[1].HostIP = "", ""
	spec.Resources.CPUShares, spec.Resources.MemorySwap = 0, ""
	assert.Check(t, runtime.ValidateFor(spec, i, []string{runtime.FieldNoNewPrivileges}))
}
