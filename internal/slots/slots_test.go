package slots

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestCounter(t *testing.T) {
	var c Counter
	r1, full, _ := c.Take("a", 3, 2)
	assert.Equal(t, full, None)
	_, full, _ = c.Take("a", 3, 2)
	assert.Equal(t, full, None)
	_, full, n := c.Take("a", 3, 2)
	assert.Equal(t, full, PerKey)
	assert.Equal(t, n, 2)
	_, full, _ = c.Take("", 3, 2)
	assert.Equal(t, full, None)
	_, full, n = c.Take("b", 3, 2)
	assert.Equal(t, full, Total)
	assert.Equal(t, n, 3)
	r1()
	r1() // once
	_, full, _ = c.Take("b", 3, 2)
	assert.Equal(t, full, None)
	_, full, _ = c.Take("c", 3, 2)
	assert.Equal(t, full, Total, "a second release of one slot gave back nothing more")
}
