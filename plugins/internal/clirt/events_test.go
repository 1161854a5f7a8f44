package clirt

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestMatchLabels(t *testing.T) {
	labels := map[string]string{"a": "1", "b": "2"}
	for _, tc := range []struct {
		sel  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"a": "1"}, true},
		{map[string]string{"a": ""}, true},
		{map[string]string{"a": "1", "b": "2"}, true},
		{map[string]string{"a": "1", "b": "3"}, false},
		{map[string]string{"c": ""}, false},
		{map[string]string{"a": "2"}, false},
	} {
		assert.Equal(t, MatchLabels(labels, tc.sel), tc.want, "%v", tc.sel)
	}
}
