//go:build engineapi_swarm

// This test makes a service in a swarm, so it is built only with the tag
// engineapi_swarm and run against a disposable engine that manages a
// swarm of its own, never the host's engine:
//
//	ZAKI_ENGINEAPI_SWARM_SOCKET=/tmp/e/docker.sock go test -tags engineapi_swarm -run TestSwarmLive ./plugins/internal/engineapi/
//
// The engine needs testenv.StubImage (docker save | docker -H ... load).

package engineapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

func TestSwarmLive(t *testing.T) {
	sock := os.Getenv("ZAKI_ENGINEAPI_SWARM_SOCKET")
	if sock == "" {
		t.Fatal("ZAKI_ENGINEAPI_SWARM_SOCKET is not set")
	}
	for _, host := range []string{"/var/run/docker.sock", "/run/docker.sock"} {
		if same(sock, host) {
			t.Fatalf("%s is the host's engine, which must never hold a swarm", sock)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := engineapi.New(engineapi.Config{Socket: sock})
	defer c.Close()
	info, err := c.Info(ctx)
	assert.NilError(t, err)
	assert.Assert(t, info.Swarm.ControlAvailable, "not a swarm manager: %+v", info.Swarm)
	_, err = c.ImageInspect(ctx, testenv.StubImage)
	assert.NilError(t, err)
	nodes, err := c.Nodes(ctx, nil)
	assert.NilError(t, err)
	assert.Assert(t, len(nodes) > 0)
	self, err := c.Node(ctx, info.Swarm.NodeID)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(self.Status.State, "ready"))

	name := fmt.Sprintf("zaki-engineapi-%d", os.Getpid())
	events, err := c.Events(ctx, engineapi.EventsOptions{Filters: engineapi.Filters{"type": {"service"}, "service": {name}}})
	assert.NilError(t, err)
	defer events.Close()

	data := t.TempDir()
	assert.NilError(t, os.Chmod(data, 0o777))
	spec := fullSpec()
	spec.Name = name
	cs := spec.TaskTemplate.ContainerSpec
	cs.Image = testenv.StubImage
	cs.Args = []string{"-addr", ":18789", "-data", "/data"}
	cs.Mounts[0] = engineapi.Mount{Type: "bind", Source: data, Target: "/data"}
	cs.Healthcheck = &engineapi.HealthConfig{Test: []string{"CMD", "/gateway-stub", "-probe"}, Interval: time.Second, Retries: 3}
	spec.TaskTemplate.Networks = nil // no swarm network: the tasks land on the node's docker0
	spec.TaskTemplate.Resources.Limits.MemoryBytes = 256 << 20
	spec.TaskTemplate.Placement.Constraints = []string{"node.id==" + info.Swarm.NodeID}
	spec.Mode.Replicated.Replicas = 1
	spec.EndpointSpec.Ports[0].PublishedPort = 19789
	created, err := c.CreateService(ctx, spec)
	assert.NilError(t, err)
	t.Cleanup(func() { c.RemoveService(context.Background(), created.ID) })

	svc, err := c.Service(ctx, name)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(svc.ID, created.ID))
	want := spec // with the engine's defaults
	want.UpdateConfig = &engineapi.UpdateConfig{}
	*want.UpdateConfig = *spec.UpdateConfig
	want.UpdateConfig.FailureAction = "pause"
	want.EndpointSpec = &engineapi.EndpointSpec{Mode: "vip", Ports: spec.EndpointSpec.Ports}
	assert.Check(t, is.DeepEqual(svc.Spec, want), "the spec reads back as it was sent")

	var task engineapi.Task
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		tasks, err := c.Tasks(ctx, engineapi.Filters{"service": {name}, "desired-state": {"running"}})
		if err != nil {
			return poll.Error(err)
		}
		for _, tk := range tasks {
			if tk.Status.State == engineapi.TaskRunning {
				task = tk
				return poll.Success()
			}
			if tk.Status.Err != "" {
				return poll.Error(fmt.Errorf("task %s: %s", tk.Status.State, tk.Status.Err))
			}
		}
		return poll.Continue("tasks %+v", tasks)
	}, poll.WithTimeout(2*time.Minute), poll.WithDelay(200*time.Millisecond))
	assert.Check(t, is.Equal(task.NodeID, info.Swarm.NodeID))
	assert.Check(t, is.DeepEqual(task.Spec, spec.TaskTemplate), "the task's spec reads back")
	assert.Check(t, is.Equal(task.Status.PortStatus.Ports[0].PublishedPort, uint32(19789)))

	ct, err := c.ContainerInspect(ctx, task.Status.ContainerStatus.ContainerID)
	assert.NilError(t, err)
	assert.Check(t, ct.HostConfig.ReadonlyRootfs)
	assert.Check(t, ct.HostConfig.Init != nil && *ct.HostConfig.Init)
	assert.Check(t, is.DeepEqual(ct.HostConfig.CapDrop, []string{"ALL"}))
	assert.Check(t, ct.HostConfig.PidsLimit != nil && *ct.HostConfig.PidsLimit == 100)
	assert.Check(t, is.Equal(ct.HostConfig.Memory, int64(256<<20)))
	assert.Check(t, is.Equal(ct.HostConfig.NanoCpus, int64(2e9)))
	assert.Check(t, is.Equal(ct.Config.Labels["com.docker.swarm.service.id"], created.ID))
	list, err := c.Containers(ctx, false, engineapi.Filters{"label": {"com.docker.swarm.service.id=" + created.ID}})
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 1))

	for _, tc := range []struct {
		cmd            []string
		stdout, stderr string
		code           int
	}{
		{[]string{"/gateway-stub", "-exec", "id"}, "1000:1000\n", "", 0},
		{[]string{"/gateway-stub", "-exec", "stderr", "hi"}, "", "hi\n", 0},
		{[]string{"/gateway-stub", "-exec", "exit", "3"}, "", "", 3},
	} {
		id, err := c.ExecCreate(ctx, ct.ID, engineapi.ExecConfig{Cmd: tc.cmd, AttachStdout: true, AttachStderr: true})
		assert.NilError(t, err)
		rc, err := c.ExecStart(ctx, id, false)
		assert.NilError(t, err)
		var stdout, stderr bytes.Buffer
		assert.Check(t, engineapi.Demux(&stdout, &stderr, rc))
		rc.Close()
		assert.Check(t, is.Equal(stdout.String(), tc.stdout), "%v", tc.cmd)
		assert.Check(t, is.Equal(stderr.String(), tc.stderr), "%v", tc.cmd)
		ei, err := c.ExecInspect(ctx, id)
		assert.NilError(t, err)
		assert.Check(t, ei.ExitCode != nil && *ei.ExitCode == tc.code, "%v: %+v", tc.cmd, ei)
	}
	rc, err := c.ContainerLogs(ctx, ct.ID, engineapi.LogsOptions{Timestamps: true})
	assert.NilError(t, err)
	_, err = io.Copy(io.Discard, engineapi.Merge(rc))
	assert.Check(t, err)
	rc.Close()

	// The version read right after the create may be stale already: the
	// engine updates a new service itself (see UpdateService).
	svc, err = c.Service(ctx, svc.ID)
	assert.NilError(t, err)
	spec.Mode.Replicated.Replicas = 0
	_, err = c.UpdateService(ctx, svc.ID, svc.Version, spec)
	assert.NilError(t, err)
	_, err = c.UpdateService(ctx, svc.ID, svc.Version, spec)
	assert.Check(t, is.ErrorIs(err, errdefs.ErrConflict), "a stale version")

	// The engine sends an update of its own (no attributes) right after
	// the create; ours carries the replicas.
	seen := map[string]bool{}
	for {
		e, err := events.Recv()
		assert.NilError(t, err)
		assert.Check(t, is.Equal(e.Actor.ID, created.ID))
		seen[e.Action] = true
		if r, ok := e.Actor.Attributes["replicas.new"]; ok && e.Action == "update" {
			assert.Check(t, is.Equal(r, "0"))
			assert.Check(t, is.Equal(e.Actor.Attributes["replicas.old"], "1"))
			break
		}
	}
	assert.Check(t, seen["create"])

	assert.NilError(t, c.RemoveService(ctx, svc.ID))
	_, err = c.Service(ctx, name)
	assert.Check(t, is.ErrorIs(err, errdefs.ErrNotFound))
}

// same tells whether two paths name one file.
func same(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	sa, err1 := os.Stat(ra)
	sb, err2 := os.Stat(rb)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
