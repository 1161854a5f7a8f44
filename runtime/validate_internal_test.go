package runtime

import (
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// TestBoundedPatterns: each pattern with its bound outside the regexp
// accepts exactly what the counted regexp it replaced accepted.
func TestBoundedPatterns(t *testing.T) {
	for _, tc := range []struct {
		got  boundedRE
		was  string
		good byte // a character allowed after the first
	}{
		{nameRE, `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`, '-'},
		{ociRuntimeRE, `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`, '.'},
		{refRE, `^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`, '_'},
		{imageRE, `^[a-zA-Z0-9][a-zA-Z0-9._:/@+-]{0,254}$`, '/'},
		{capRE, `^[A-Z_]{1,32}$`, '_'},
		{envKeyRE, `^[A-Za-z_][A-Za-z0-9_.-]{0,255}$`, '.'},
		{labelKeyR, `^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,127}$`, '/'},
	} {
		was := regexp.MustCompile(tc.was)
		var inputs []string
		for _, n := range []int{0, 1, 2, tc.got.max - 1, tc.got.max, tc.got.max + 1, 2 * tc.got.max} {
			if n < 1 {
				inputs = append(inputs, "")
				continue
			}
			body := strings.Repeat(string(tc.good), n-1)
			inputs = append(inputs, "A"+body, "a"+body, "-"+body, "A"+body[:max(0, len(body)-1)]+"é", "A"+body+"\n", "A "+body)
		}
		for _, s := range inputs {
			assert.Check(t, tc.got.MatchString(s) == was.MatchString(s), "%s on %d bytes %.12q...: %v", tc.was, len(s), s, was.MatchString(s))
		}
	}
}
