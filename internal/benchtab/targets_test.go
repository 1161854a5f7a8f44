package benchtab

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

func TestTargets(t *testing.T) {
	in, err := os.Open("testdata/scenarios.txt")
	assert.NilError(t, err)
	defer in.Close()
	m, err := ParseMetrics(in)
	assert.NilError(t, err)
	v, ok := m.Value("Registered10k/rss/zaki-agent", "rss-MB")
	assert.Assert(t, ok)
	assert.Equal(t, v, 41.5)
	v, ok = m.Value("Inspect/docker-cli", "ns/op")
	assert.Assert(t, ok)
	assert.Equal(t, v, 12e6)

	tf, err := os.Open("testdata/targets.txt")
	assert.NilError(t, err)
	defer tf.Close()
	ts, err := ParseTargets(tf)
	assert.NilError(t, err)
	outs := Evaluate(m, ts)
	var got []string
	for _, o := range outs {
		got = append(got, o.Result)
	}
	// p99 0.8 ms <= 1 and 0.8/60 <= 0.05; 330/300 = 1.1 <= 1.10; 9.5 <= 12.1;
	// 50 == 50; 1500 > 1000; 41.5 <= 60; list not in the output.
	assert.DeepEqual(t, got, []string{"-", "PASS", "PASS", "PASS", "PASS", "MISS", "PASS", "n/a"})

	var out bytes.Buffer
	assert.NilError(t, WriteTargets(&out, "zaki-agent", outs))
	golden.Assert(t, out.String(), "targets.golden")
}

func TestParseTargetsErrors(t *testing.T) {
	for name, line := range map[string]string{
		"too few fields":      "HotEnsure p99-ms zaki-agent baseline <=1",
		"bad check":           "HotEnsure p99-ms zaki-agent baseline <1 scenario",
		"ratio, no reference": "HotEnsure p99-ms zaki-agent - ratio<=1 scenario",
		"bad number":          "HotEnsure p99-ms zaki-agent - <=1..2 scenario",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTargets(strings.NewReader(line))
			assert.Assert(t, err != nil)
		})
	}
}
