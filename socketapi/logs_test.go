package socketapi_test

import (
	"errors"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestParseSince: docker's three forms, to the nanosecond; the bounds.
func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                                    {},
		"2026-12-05T07:00:00Z":                time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC),
		"2026-12-05T08:30:00.000000001+01:00": time.Date(2026, 12, 5, 7, 30, 0, 1, time.UTC),
		"1764921600":                          time.Unix(1764921600, 0),
		"1764921600.5":                        time.Unix(1764921600, 500000000),
		"1764921600.000000001":                time.Unix(1764921600, 1),
		"0":                                   time.Unix(0, 0),
		"10m":                                 now.Add(-10 * time.Minute),
		"1h30m":                               now.Add(-90 * time.Minute),
		"0s":                                  now,
		"87600h":                              now.Add(-87600 * time.Hour),
		"2036-12-01T00:00:00Z":                time.Date(2036, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := socketapi.ParseSince(in, now)
		assert.Check(t, err, "since %q", in)
		assert.Check(t, got.Equal(want), "since %q: got %v, want %v", in, got, want)
	}
	for _, in := range []string{"yesterday", "-10m", "87601h", "10d", "1969-12-31T23:59:59Z", "2037-01-01T00:00:00Z",
		"4102444800", "1764921600.1234567891", "1.2.3", "2026-12-05", "2026-12-05T08:00:00", " 10m", "1e9"} {
		_, err := socketapi.ParseSince(in, now)
		assert.Check(t, errors.Is(err, socketapi.ErrInvalidArgument), "since %q: %v", in, err)
		assert.Check(t, is.ErrorContains(err, "invalid since"), "since %q", in)
	}
}
