package agent

import (
	"testing"

	"gotest.tools/v3/assert"
)

// The cached URLs are those built anew, for ports in and out of the range,
// and a reload of the bind address or the range gives a new cache.
func TestURLCache(t *testing.T) {
	a := &Agent{}
	cfg := DefaultConfig()
	cfg.Instance.PortRange = "20000-20009"
	a.cfg.Store(&cfg)
	c := a.urlCache()
	for _, port := range []int{0, 19999, 20000, 20005, 20009, 20010} {
		assert.Equal(t, c.url(port), buildURL("127.0.0.1", port))
		assert.Equal(t, c.url(port), buildURL("127.0.0.1", port), "asked again")
	}
	assert.Equal(t, c.url(20005), "http://127.0.0.1:20005")
	assert.Check(t, a.urlCache() == c, "same configuration, same cache")

	v6 := cfg
	v6.Instance.BindAddress = "::1"
	a.cfg.Store(&v6)
	assert.Equal(t, a.urlCache().url(20005), "http://[::1]:20005")

	moved := v6
	moved.Instance.PortRange = "30000-30001"
	a.cfg.Store(&moved)
	assert.Equal(t, a.urlCache().url(30001), "http://[::1]:30001")
	assert.Equal(t, a.urlCache().url(20005), "http://[::1]:20005")
}
