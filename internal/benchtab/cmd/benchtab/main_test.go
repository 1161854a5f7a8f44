package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestRun(t *testing.T) {
	in, err := os.ReadFile("../../testdata/inspect.txt")
	assert.NilError(t, err)
	var out bytes.Buffer
	assert.NilError(t, run(t.Context(), []string{"--baseline", "Inspect=plugin", "--diff-label", "extra"}, bytes.NewReader(in), &out))
	first := strings.SplitN(out.String(), "\n", 2)[0]
	assert.Assert(t, strings.Contains(first, "vs plugin") && strings.Contains(first, "extra"), "%q", first)

	out.Reset()
	assert.NilError(t, run(t.Context(), []string{"../../testdata/inspect.txt"}, strings.NewReader(""), &out))
	assert.Assert(t, strings.Contains(out.String(), "vs docker-cli"))

	err = run(t.Context(), nil, strings.NewReader("PASS\n"), &out)
	assert.ErrorContains(t, err, "no benchmark results")
}
