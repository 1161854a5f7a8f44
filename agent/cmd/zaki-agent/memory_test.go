package main

import (
	"testing"

	"gotest.tools/v3/assert"
)

// The soft limit is the floor for a small heap and 1.5 times the live heap
// plus slack for a large one: never below what is live.
func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, memoryFloor},
		{3 << 20, memoryFloor},  // the hot path's heap
		{20 << 20, memoryFloor}, // 10,000 instances
		{40 << 20, 68 << 20},
		{1 << 30, 1<<30 + 1<<29 + memorySlack},
	} {
		got := memoryLimit(tc.live)
		assert.Equal(t, got, tc.want, "live %d MB", tc.live>>20)
		assert.Assert(t, got > int64(tc.live))
	}
}
