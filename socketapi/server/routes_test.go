package server

import (
	"sort"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestRoutesMatchOpenAPI: the server serves exactly the paths and methods
// the OpenAPI document describes.
func TestRoutesMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(socketapi.OpenAPI)
	assert.NilError(t, err)
	got := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			got[path] = append(got[path], m)
		}
		sort.Strings(got[path])
	}
	want := map[string][]string{}
	for path, methods := range routes {
		for m := range methods {
			want[path] = append(want[path], m)
		}
		sort.Strings(want[path])
	}
	assert.Check(t, is.DeepEqual(got, want))
}

func TestMatch(t *testing.T) {
	cases := []struct {
		path, template, user string
		ok                   bool
	}{
		{"/v1/health", "/v1/health", "", true},
		{"/v1/instances", "/v1/instances", "", true},
		{"/v1/instances/alice", "/v1/instances/{userId}", "alice", true},
		{"/v1/instances/alice/logs", "/v1/instances/{userId}/logs", "alice", true},
		{"/v1/instances/a%2Fb/stop", "/v1/instances/{userId}/stop", "a/b", true},
		{"/v1/instances/a%2", "", "", false},
		{"/v1/instances/", "", "", false},
		{"/v1/instances//stop", "", "", false},
		{"/v1/instances/alice/stop/now", "", "", false},
		{"/v1/instances/alice/explode", "", "", false},
		{"/v1/health/", "", "", false},
		{"/v1/instances/alice/", "", "", false},
		{"/v1/instances/alice/stop/", "", "", false},
		{"/v1/instances/alice//", "", "", false},
		{"/metrics/", "", "", false},
		{"/metrics", "/metrics", "", true},
	}
	for _, c := range cases {
		tpl, user, ok := match(c.path)
		assert.Check(t, is.Equal(ok, c.ok), c.path)
		assert.Check(t, is.Equal(tpl, c.template), c.path)
		assert.Check(t, is.Equal(user, c.user), c.path)
		assert.Check(t, is.Equal(routeName(c.path) == "other", !c.ok), c.path)
	}
}
