package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// The hand-written encoder must produce exactly what json.Marshal does.
func TestAppendInstancesMatchesMarshal(t *testing.T) {
	odd := []string{"", "plain", `quo"te`, `back\slash`, "<html>&amp;", "tab\tnew\nline\r", "\x00\x1f\x7f",
		"\u2028\u2029", "héllo wörld", "\xff\xfe invalid", "emoji 🎉", "\b\f"}
	var ins []socketapi.Instance
	for i, s := range odd {
		ins = append(ins, socketapi.Instance{
			UserID: "u" + s, ContainerName: s, ContainerID: s, Image: s, ImageID: s, State: s, Health: s, Reason: s, Node: s,
			Port: 18790 + i, URL: s, CreatedAtMs: int64(i) * 1e12, LastUsedAtMs: -int64(i), ConfigHash: s,
			Stale: i%2 == 0, Labels: map[string]string{s: s, "b": "2", "a" + s: "1"}, Outcome: s,
			DataBytes: int64(i) * 40961,
		})
	}
	ins = append(ins, socketapi.Instance{}, socketapi.Instance{Labels: map[string]string{}})
	for _, tc := range []struct {
		name string
		ins  []socketapi.Instance
	}{
		{"empty", []socketapi.Instance{}},
		{"one", ins[:1]},
		{"odd", ins},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.ins)
			assert.NilError(t, err)
			rec := httptest.NewRecorder()
			err = writeInstances(rec, func(fn func(*socketapi.Instance)) error {
				for i := range tc.ins {
					fn(&tc.ins[i])
				}
				return nil
			})
			assert.NilError(t, err)
			want = append(want, '\n')
			assert.Equal(t, rec.Body.String(), string(want))
			for i := range tc.ins {
				want, err := json.Marshal(tc.ins[i])
				assert.NilError(t, err)
				one := httptest.NewRecorder()
				writeInstance(one, http.StatusCreated, &tc.ins[i])
				assert.Equal(t, one.Code, http.StatusCreated)
				assert.Equal(t, one.Body.String(), string(want)+"\n")
			}
		})
	}
}

// A field added to Instance must be added to appendInstance too: this
// fails until it is.
func TestAppendInstanceKnowsEveryField(t *testing.T) {
	var fields []string
	typ := reflect.TypeFor[socketapi.Instance]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		fields = append(fields, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag.Get("json")))
	}
	want := []string{
		"UserID string userId", "ContainerName string containerName", "ContainerID string containerId,omitempty",
		"Image string image", "ImageID string imageId,omitempty", "State string state", "Health string health,omitempty", "Reason string reason,omitempty",
		"Port int port", "URL string url", "Node string node,omitempty",
		"CreatedAtMs int64 createdAtMs", "LastUsedAtMs int64 lastUsedAtMs", "ConfigHash string configHash",
		"Stale bool stale", "Labels map[string]string labels,omitempty", "DataBytes int64 dataBytes,omitempty", "Outcome string outcome,omitempty",
	}
	assert.Equal(t, strings.Join(fields, "\n"), strings.Join(want, "\n"))
}
