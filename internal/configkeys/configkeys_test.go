package configkeys

import (
	"reflect"
	"testing"

	"gotest.tools/v3/assert"
)

type inner struct {
	Label string `toml:"label"`
	Port  int    `toml:"port"`
}

type base struct {
	Ops   int   `toml:"ops"`
	Table inner `toml:"table"`
}

type outer struct {
	Socket string `toml:"socket"`
	base
	Limits []int `toml:"limits"`
	skip   int
}

func TestEachFlattensEmbeddedStructs(t *testing.T) {
	var got []string
	Each(&outer{}, "", func(key string, _ reflect.Value, _ reflect.StructField) { got = append(got, key) })
	assert.DeepEqual(t, got, []string{"socket", "ops", "table.label", "table.port", "limits"})
}

func TestDiff(t *testing.T) {
	x := outer{Socket: "a", base: base{Ops: 1, Table: inner{Label: "l"}}, Limits: []int{1}}
	y := x
	y.Table.Label, y.Limits = "m", []int{2}
	assert.DeepEqual(t, Diff(&x, &y), []string{"table.label", "limits"})
	assert.Check(t, Diff(&x, &x) == nil)
}

func TestKeep(t *testing.T) {
	cur := outer{Socket: "a", base: base{Ops: 1, Table: inner{Label: "l", Port: 1}}}
	next := outer{Socket: "b", base: base{Ops: 1, Table: inner{Label: "m", Port: 2}}}
	changed := Keep(&cur, &next, []string{"table.label", "socket", "ops"})
	assert.DeepEqual(t, changed, []string{"table.label", "socket"})
	assert.Equal(t, next.Socket, "a")
	assert.Equal(t, next.Table.Label, "l")
	assert.Equal(t, next.Table.Port, 2) // not a kept key

	assert.Assert(t, func() (panicked bool) {
		defer func() { panicked = recover() != nil }()
		Keep(&cur, &next, []string{"nope"})
		return false
	}())
}
