package main

import (
	"bytes"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestRunTargets(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"--targets", "../../testdata/targets.txt", "--subject", "agent", "../../testdata/scenarios.txt"}, strings.NewReader(""), &out)
	assert.NilError(t, err)
	lines := strings.Split(out.String(), "\n")
	assert.Assert(t, strings.HasPrefix(lines[0], "scenario") && strings.Contains(lines[0], "agent"), "%q", lines[0])
	assert.Assert(t, strings.Contains(out.String(), "5 of 7 targets met"), out.String())

	out.Reset()
	err = run(t.Context(), []string{"--targets", "../../testdata/targets.txt", "--missed", "../../testdata/scenarios.txt"}, strings.NewReader(""), &out)
	assert.NilError(t, err)
	assert.Equal(t, out.String(), "Fleet\n") // Fleet/startup misses its bound

	err = run(t.Context(), []string{"--targets", "no-such-file"}, strings.NewReader(""), &out)
	assert.ErrorContains(t, err, "no-such-file")
}
