package benchtab

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

func parseFile(t *testing.T, name string) []*Group {
	t.Helper()
	f, err := os.Open(name)
	assert.NilError(t, err)
	defer f.Close()
	groups, err := Parse(f)
	assert.NilError(t, err)
	return groups
}

func TestParse(t *testing.T) {
	groups := parseFile(t, "testdata/inspect.txt")
	assert.Equal(t, len(groups), 3)
	g := groups[0]
	assert.Equal(t, g.Name, "Inspect")
	var names []string
	for _, v := range g.Variants {
		names = append(names, v.Name)
	}
	assert.DeepEqual(t, names, []string{"docker-cli", "in-process", "plugin", "engine-api"})
	assert.DeepEqual(t, g.Variants[0].NsPerOp, []float64{12e6, 14e6, 13e6})
	assert.Equal(t, g.Variants[0].Median(), 13e6)
	assert.Equal(t, groups[1].Name, "Parse")
	assert.Equal(t, groups[1].Variants[0].Name, "")
	assert.Equal(t, groups[2].Variants[0].Name, "baseline/x")
	assert.Equal(t, groups[2].Variants[1].Name, "fast", "no -N suffix")
}

func TestMedianAndSpread(t *testing.T) {
	for _, tc := range []struct {
		runs           []float64
		median, spread float64
	}{
		{[]float64{3, 1, 2}, 2, 0.5},
		{[]float64{4, 1, 2, 3}, 2.5, 0.6},
		{[]float64{5}, 5, 0},
	} {
		v := &Variant{NsPerOp: tc.runs}
		assert.Equal(t, v.Median(), tc.median)
		assert.Equal(t, v.Spread(), tc.spread)
	}
}

func TestBaseline(t *testing.T) {
	groups := parseFile(t, "testdata/inspect.txt")
	for _, tc := range []struct {
		flag  string
		group int
		want  string
	}{
		{"", 0, "docker-cli"},                   // the first variant
		{"plugin", 0, "plugin"},                 // for every group
		{"Inspect=engine-api", 0, "engine-api"}, // for one group
		{"plugin,Inspect=engine-api", 0, "engine-api"},
		{"nosuch", 0, "docker-cli"},         // unknown: the first
		{"", 2, "baseline/x"},               // named baseline... first anyway
		{"Inspect=plugin", 2, "baseline/x"}, // another group's choice
	} {
		g := groups[tc.group]
		assert.Equal(t, g.Variants[Options{Baseline: tc.flag}.baseline(g)].Name, tc.want, "flag %q", tc.flag)
	}
	named := &Group{Name: "G", Variants: []*Variant{{Name: "a"}, {Name: "baseline"}}}
	assert.Equal(t, Options{}.baseline(named), 1, "a variant named baseline wins over the first")
}

func TestWrite(t *testing.T) {
	groups := parseFile(t, "testdata/inspect.txt")
	var out bytes.Buffer
	assert.NilError(t, Write(&out, groups, Options{Baseline: "docker-cli"}))
	golden.Assert(t, out.String(), "inspect.golden")
}

func TestWriteTinyBaselineHasNoRatio(t *testing.T) {
	g := &Group{Name: "Hop", Variants: []*Variant{{Name: "in-process", NsPerOp: []float64{3}}, {Name: "plugin", NsPerOp: []float64{215000}}}}
	var out bytes.Buffer
	assert.NilError(t, Write(&out, []*Group{g}, Options{}))
	assert.Assert(t, strings.Contains(out.String(), "n/a"), out.String())
	assert.Assert(t, strings.Contains(out.String(), "+0.215 ms"), out.String())
}
