package bench

import (
	"slices"
	"time"
)

// Samples are measured durations.
type Samples []time.Duration

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100), 0
// for no samples.
func (s Samples) Percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(float64(len(c))*p/100+0.999999) - 1
	return c[min(max(i, 0), len(c)-1)]
}

// Mean returns the average, 0 for no samples.
func (s Samples) Mean() time.Duration {
	if len(s) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(len(s))
}

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
