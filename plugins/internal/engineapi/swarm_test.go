package engineapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

// fullSpec sets every field of the spec types, as the swarm plugin will.
func fullSpec() engineapi.ServiceSpec {
	yes := true
	grace := 10 * time.Second
	delay := time.Duration(0)
	return engineapi.ServiceSpec{
		Name:   "zaki-user-u1",
		Labels: map[string]string{"zaki.user": "u1"},
		TaskTemplate: engineapi.TaskSpec{
			ContainerSpec: &engineapi.ContainerSpec{
				Image:    "zaki/gateway-stub:latest",
				Labels:   map[string]string{"zaki.user": "u1"},
				Args:     []string{"--port", "18789"},
				Hostname: "u1",
				Env:      []string{"TOKEN=s3cret-value"},
				User:     "1000:1000",
				Init:     &yes,
				ReadOnly: true,
				Mounts: []engineapi.Mount{
					{Type: "bind", Source: "/srv/zaki/u1", Target: "/home/node", BindOptions: &engineapi.BindOptions{Propagation: "rprivate"}},
					{Type: "tmpfs", Target: "/tmp", TmpfsOptions: &engineapi.TmpfsOptions{SizeBytes: 64 << 20}},
				},
				StopGracePeriod: &grace,
				Healthcheck: &engineapi.HealthConfig{
					Test: []string{"CMD", "/stub", "health"}, Interval: 5 * time.Second,
					Timeout: time.Second, StartPeriod: 2 * time.Second, Retries: 3,
				},
				Sysctls:        map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
				CapabilityDrop: []string{"ALL"},
				Ulimits:        []engineapi.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
			},
			Resources: &engineapi.ResourceRequirements{
				Limits: &engineapi.Limit{NanoCPUs: 2e9, MemoryBytes: 2 << 30, Pids: 100},
			},
			RestartPolicy: &engineapi.RestartPolicy{Condition: "on-failure", Delay: &delay, MaxAttempts: 5},
			Placement:     &engineapi.Placement{Constraints: []string{"node.labels.zaki==1", "node.id==n1"}},
			Networks:      []engineapi.NetworkAttachment{{Target: "bridge"}},
			LogDriver:     &engineapi.Driver{Name: "json-file", Options: map[string]string{"max-size": "10m"}},
			ForceUpdate:   2,
		},
		Mode:         engineapi.ServiceMode{Replicated: &engineapi.ReplicatedService{Replicas: 0}},
		UpdateConfig: &engineapi.UpdateConfig{Parallelism: 1, Monitor: time.Second, Order: "stop-first"},
		EndpointSpec: &engineapi.EndpointSpec{Ports: []engineapi.PortConfig{
			{Protocol: "tcp", TargetPort: 18789, PublishedPort: 19001, PublishMode: "host"},
		}},
	}
}

// fullSpecJSON is fullSpec in the API's words (API 1.41 reference).
const fullSpecJSON = `{
  "Name": "zaki-user-u1",
  "Labels": {"zaki.user": "u1"},
  "TaskTemplate": {
    "ContainerSpec": {
      "Image": "zaki/gateway-stub:latest",
      "Labels": {"zaki.user": "u1"},
      "Args": ["--port", "18789"],
      "Hostname": "u1",
      "Env": ["TOKEN=s3cret-value"],
      "User": "1000:1000",
      "Init": true,
      "ReadOnly": true,
      "Mounts": [
        {"Type": "bind", "Source": "/srv/zaki/u1", "Target": "/home/node", "BindOptions": {"Propagation": "rprivate"}},
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 67108864}}
      ],
      "StopGracePeriod": 10000000000,
      "Healthcheck": {"Test": ["CMD", "/stub", "health"], "Interval": 5000000000, "Timeout": 1000000000, "StartPeriod": 2000000000, "Retries": 3},
      "Sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"},
      "CapabilityDrop": ["ALL"],
      "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    },
    "Resources": {"Limits": {"NanoCPUs": 2000000000, "MemoryBytes": 2147483648, "Pids": 100}},
    "RestartPolicy": {"Condition": "on-failure", "Delay": 0, "MaxAttempts": 5},
    "Placement": {"Constraints": ["node.labels.zaki==1", "node.id==n1"]},
    "Networks": [{"Target": "bridge"}],
    "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
    "ForceUpdate": 2
  },
  "Mode": {"Replicated": {"Replicas": 0}},
  "UpdateConfig": {"Parallelism": 1, "Monitor": 1000000000, "Order": "stop-first"},
  "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 18789, "PublishedPort": 19001, "PublishMode": "host"}]}
}`

// serviceJSON is a service as the engine answers it, fullSpec with what
// the engine adds (defaults, fields these types do not hold).
const serviceJSON = `{
  "ID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Version": {"Index": 19},
  "CreatedAt": "2026-12-05T10:00:00.123456789Z", "UpdatedAt": "2026-12-05T10:00:01Z",
  "Spec": ` + fullSpecJSON + `,
  "Endpoint": {"Spec": {"Mode": "vip"}, "Ports": [{"Protocol": "tcp", "TargetPort": 18789, "PublishedPort": 19001, "PublishMode": "host"}]},
  "UpdateStatus": {"State": "completed", "StartedAt": "2026-12-05T10:00:02Z", "CompletedAt": "2026-12-05T10:00:03Z", "Message": "update completed"},
  "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1, "CompletedTasks": 0}
}`

func TestCreateService(t *testing.T) {
	c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/services/create", body: fullSpecJSON,
		status: http.StatusCreated, answer: `{"ID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Warnings": ["unable to pin image"]}`})
	got, err := c.CreateService(context.Background(), fullSpec())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, engineapi.ServiceCreated{ID: "9mnpnzenvg8p8tdbtq4wvbkcz", Warnings: []string{"unable to pin image"}}))
}

func TestService(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/services/zaki-user-u1", answer: serviceJSON})
	got, err := c.Service(context.Background(), "zaki-user-u1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.ID, "9mnpnzenvg8p8tdbtq4wvbkcz"))
	assert.Check(t, is.Equal(got.Version.Index, uint64(19)))
	assert.Check(t, got.CreatedAt.Equal(time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)))
	assert.Check(t, is.DeepEqual(got.Spec, fullSpec()), "the spec reads back as it was sent")
	assert.Check(t, is.DeepEqual(got.Endpoint.Ports, fullSpec().EndpointSpec.Ports))
	assert.Check(t, is.Equal(got.UpdateStatus.State, "completed"))
	assert.Check(t, is.Equal(got.ServiceStatus.RunningTasks, uint64(1)))
}

func TestServices(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/services",
		query:  url.Values{"filters": {`{"label":["zaki.managed=1"]}`}, "status": {"true"}},
		answer: "[" + serviceJSON + "]"})
	got, err := c.Services(context.Background(), engineapi.Filters{}.Add("label", "zaki.managed=1"), true)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, is.Equal(got[0].Spec.Name, "zaki-user-u1"))
}

func TestUpdateService(t *testing.T) {
	spec := fullSpec()
	spec.Mode.Replicated.Replicas = 1
	want := strings.Replace(fullSpecJSON, `"Replicas": 0`, `"Replicas": 1`, 1)
	c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/services/9mnpnzenvg8p8tdbtq4wvbkcz/update",
		query: url.Values{"version": {"19"}}, body: want, answer: `{"Warnings": null}`})
	warnings, err := c.UpdateService(context.Background(), "9mnpnzenvg8p8tdbtq4wvbkcz", engineapi.ObjectVersion{Index: 19}, spec)
	assert.NilError(t, err)
	assert.Check(t, is.Len(warnings, 0))
}

func TestRemoveService(t *testing.T) {
	c := fake(t, exchange{method: http.MethodDelete, path: "/v1.41/services/zaki-user-u1"})
	assert.NilError(t, c.RemoveService(context.Background(), "zaki-user-u1"))
}

// taskJSON is a running task as the engine answers it.
const taskJSON = `{
  "ID": "0kzzo1i0y4jz6027t0k7aezc7", "Version": {"Index": 71},
  "CreatedAt": "2026-12-05T10:00:00Z", "UpdatedAt": "2026-12-05T10:00:02Z",
  "Labels": {},
  "Spec": {"ContainerSpec": {"Image": "zaki/gateway-stub:latest", "Env": ["A=b"], "Isolation": "default"},
           "Resources": {"Limits": {"Pids": 100}, "Reservations": {}},
           "Placement": {"Constraints": ["node.id==60gvrl6tm78dmak4yl7srz94v"]}, "ForceUpdate": 0},
  "ServiceID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Slot": 1, "NodeID": "60gvrl6tm78dmak4yl7srz94v",
  "Status": {"Timestamp": "2026-12-05T10:00:02Z", "State": "running", "Message": "started",
             "ContainerStatus": {"ContainerID": "e5d62702a1b4", "PID": 677, "ExitCode": 0},
             "PortStatus": {"Ports": [{"Protocol": "tcp", "TargetPort": 18789, "PublishedPort": 19001, "PublishMode": "host"}]}},
  "DesiredState": "running",
  "NetworksAttachments": [{"Network": {"ID": "4qvuz4ko70xaltuqbt8956gd1"}, "Addresses": ["10.255.0.10/16"]}]
}`

func TestTasks(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/tasks",
		query:  url.Values{"filters": {`{"desired-state":["running"],"service":["zaki-user-u1"]}`}},
		answer: "[" + taskJSON + `, {"ID": "x", "Status": {"State": "rejected", "Err": "invalid mount config for type \"bind\": bind source path does not exist"}, "DesiredState": "shutdown"}]`})
	f := engineapi.Filters{}.Add("service", "zaki-user-u1").Add("desired-state", "running")
	got, err := c.Tasks(context.Background(), f)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, 2))
	task := got[0]
	assert.Check(t, is.Equal(task.Status.State, engineapi.TaskRunning))
	assert.Check(t, is.Equal(task.DesiredState, engineapi.TaskRunning))
	assert.Check(t, is.Equal(task.NodeID, "60gvrl6tm78dmak4yl7srz94v"))
	assert.Check(t, is.DeepEqual(task.Status.ContainerStatus, &engineapi.ContainerStatus{ContainerID: "e5d62702a1b4", PID: 677}))
	assert.Check(t, is.Equal(task.Status.PortStatus.Ports[0].PublishedPort, uint32(19001)))
	assert.Check(t, is.Equal(task.Spec.Resources.Limits.Pids, int64(100)))
	assert.Check(t, is.DeepEqual(task.Spec.Placement.Constraints, []string{"node.id==60gvrl6tm78dmak4yl7srz94v"}))
	assert.Check(t, is.Equal(got[1].Status.State, engineapi.TaskRejected))
	assert.Check(t, is.Contains(got[1].Status.Err, "bind source path does not exist"))
	assert.Check(t, got[1].Status.ContainerStatus == nil)
}

func TestTask(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/tasks/0kzzo1i0y4jz6027t0k7aezc7", answer: taskJSON})
	got, err := c.Task(context.Background(), "0kzzo1i0y4jz6027t0k7aezc7")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.Spec.ContainerSpec.Image, "zaki/gateway-stub:latest"))
}

// nodeJSON is a manager node as the engine answers it.
const nodeJSON = `{
  "ID": "60gvrl6tm78dmak4yl7srz94v", "Version": {"Index": 8},
  "CreatedAt": "2026-12-05T09:00:00Z", "UpdatedAt": "2026-12-05T09:00:01Z",
  "Spec": {"Labels": {"zaki": "1"}, "Role": "manager", "Availability": "active"},
  "Description": {"Hostname": "node-1", "Platform": {"Architecture": "x86_64", "OS": "linux"},
                  "Resources": {"NanoCPUs": 2000000000, "MemoryBytes": 8272408576},
                  "Engine": {"EngineVersion": "20.10.24+dfsg1", "Plugins": [{"Type": "Log", "Name": "json-file"}]},
                  "TLSInfo": {"TrustRoot": "..."}},
  "Status": {"State": "ready", "Addr": "172.31.0.2"},
  "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "172.31.0.2:2377"}
}`

func TestNodes(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/nodes",
		query: url.Values{"filters": {`{"node.label":["zaki=1"]}`}}, answer: "[" + nodeJSON + "]"})
	got, err := c.Nodes(context.Background(), engineapi.Filters{"node.label": {"zaki=1"}})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, 1))
	n := got[0]
	assert.Check(t, is.Equal(n.Description.Hostname, "node-1"))
	assert.Check(t, is.DeepEqual(n.Spec.Labels, map[string]string{"zaki": "1"}))
	assert.Check(t, is.Equal(n.Spec.Availability, "active"))
	assert.Check(t, is.Equal(n.Status.State, "ready"))
	assert.Check(t, is.Equal(n.Status.Addr, "172.31.0.2"))
	assert.Check(t, is.DeepEqual(n.ManagerStatus, &engineapi.ManagerStatus{Leader: true, Reachability: "reachable", Addr: "172.31.0.2:2377"}))
}

func TestNode(t *testing.T) {
	c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/nodes/node-1", answer: nodeJSON})
	got, err := c.Node(context.Background(), "node-1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.ID, "60gvrl6tm78dmak4yl7srz94v"))
}

func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("not found", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/services/zaki-user-u9",
			status: http.StatusNotFound, answer: `{"message":"service zaki-user-u9 not found"}`})
		_, err := c.Service(ctx, "zaki-user-u9")
		assert.Check(t, is.ErrorIs(err, errdefs.ErrNotFound))
		assert.Check(t, is.ErrorContains(err, "service zaki-user-u9 not found"))
	})
	t.Run("name taken", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/services/create", body: fullSpecJSON,
			status: http.StatusConflict, answer: `{"message":"rpc error: code = AlreadyExists desc = name conflicts with an existing object"}`})
		_, err := c.CreateService(ctx, fullSpec())
		assert.Check(t, is.ErrorIs(err, errdefs.ErrConflict))
	})
	t.Run("stale version", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/services/s1/update", query: url.Values{"version": {"3"}},
			body: fullSpecJSON, status: http.StatusInternalServerError, answer: `{"message":"rpc error: code = Unknown desc = update out of sequence"}`})
		_, err := c.UpdateService(ctx, "s1", engineapi.ObjectVersion{Index: 3}, fullSpec())
		assert.Check(t, is.ErrorIs(err, errdefs.ErrConflict))
	})
	t.Run("not a manager", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodGet, path: "/v1.41/services", status: http.StatusServiceUnavailable,
			answer: `{"message":"This node is not a swarm manager."}`})
		_, err := c.Services(ctx, nil, false)
		assert.Check(t, is.ErrorIs(err, errdefs.ErrUnavailable))
		assert.Check(t, is.ErrorContains(err, "not a swarm manager"))
	})
	t.Run("env value redacted", func(t *testing.T) {
		c := fake(t, exchange{method: http.MethodPost, path: "/v1.41/services/create", body: fullSpecJSON,
			status: http.StatusBadRequest, answer: `{"message":"invalid env TOKEN=s3cret-value"}`})
		_, err := c.CreateService(ctx, fullSpec())
		assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument))
		assert.Check(t, is.ErrorContains(err, "invalid env TOKEN=<redacted>"))
		assert.Check(t, !strings.Contains(err.Error(), "s3cret"))
	})
	t.Run("bad ids", func(t *testing.T) {
		c := engineapi.New(engineapi.Config{Socket: "/nonexistent/docker.sock"})
		for _, id := range []string{"", ".", "..", "a/b"} {
			_, err := c.Service(ctx, id)
			assert.Check(t, is.ErrorIs(err, errdefs.ErrInvalidArgument), "%q", id)
			assert.Check(t, c.RemoveService(ctx, id) != nil)
		}
	})
}
