package server_test

import (
	"context"
	"encoding/json"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
	"github.com/zaki-platform/zaki-agent/socketapi/internal/apitest"
)

// What the host holds that stands in an ensure's way has a class and a
// status of its own, never 500 (TestEngineConflictsAndExhaustion in
// package socketapi shows the same against a real engine).
func TestHostConditions(t *testing.T) {
	t.Run("name taken by an unmanaged container", func(t *testing.T) {
		e := apitest.Start(t, apitest.Options{})
		r := raw(t, e.Socket, "PUT", "/v1/instances/anna", "")
		assert.Equal(t, r.status, 201, r.body)
		// A container of the name zaki-user-ghost, without the agent's labels.
		var in socketapi.Instance
		assert.NilError(t, json.Unmarshal([]byte(r.body), &in))
		spec, ok := e.Fake.CreatedSpec(in.ContainerID)
		assert.Assert(t, ok)
		spec.Name, spec.Labels = "zaki-user-ghost", nil
		_, err := e.Fake.Create(context.Background(), spec)
		assert.NilError(t, err)

		r = raw(t, e.Socket, "PUT", "/v1/instances/ghost", "")
		assert.Equal(t, r.status, 409, r.body)
		assert.Check(t, is.Equal(r.errorCode(), "conflict"))
		assert.Check(t, is.Contains(r.message(), "container zaki-user-ghost exists but is not managed by zaki-agent"))
	})
	t.Run("no free port", func(t *testing.T) {
		e := apitest.Start(t, apitest.Options{Ports: 1})
		r := raw(t, e.Socket, "PUT", "/v1/instances/first", "")
		assert.Equal(t, r.status, 201, r.body)
		r = raw(t, e.Socket, "PUT", "/v1/instances/second", "")
		assert.Equal(t, r.status, 503, r.body)
		assert.Check(t, is.Equal(r.errorCode(), "resource_exhausted"))
		assert.Check(t, is.Contains(r.message(), "no free port"))
		assert.Check(t, is.Contains(r.message(), "instance.portRange"))
	})
}
