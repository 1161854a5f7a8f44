package docker

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestHealthCache(t *testing.T) {
	var c healthCache
	now := time.Now()
	_, ok := c.get("img", now)
	assert.Assert(t, !ok, "empty cache hit")

	c.put("img", []string{"CMD", "/probe"}, now)
	got, ok := c.get("img", now.Add(healthCacheTTL/2))
	assert.Assert(t, ok)
	assert.DeepEqual(t, got, []string{"CMD", "/probe"})
	got[0] = "changed" // a copy: the cache keeps its own
	got, _ = c.get("img", now)
	assert.Equal(t, got[0], "CMD")

	c.put("none", nil, now) // an image without HEALTHCHECK is cached too
	got, ok = c.get("none", now)
	assert.Assert(t, ok && got == nil)

	_, ok = c.get("img", now.Add(healthCacheTTL+time.Second))
	assert.Assert(t, !ok, "expired entry hit")

	c.forget("none")
	_, ok = c.get("none", now)
	assert.Assert(t, !ok, "forgotten entry hit")
}
