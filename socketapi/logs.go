package socketapi

import (
	"regexp"
	"strconv"
	"time"
)

// maxSince is how far back from now a relative since may reach, and how
// far ahead of now an absolute one: ten years, the bound of every duration
// the agent takes.
const maxSince = 10 * 365 * 24 * time.Hour

// unixSecondsRE is Unix seconds, with up to nine decimals.
var unixSecondsRE = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]{1,9}))?$`)

// ParseSince reads a logs call's since, in the forms docker logs --since
// takes: an RFC 3339 time (2026-12-05T08:00:00Z, fractions and offsets
// allowed), Unix seconds (1764921600, or 1764921600.5), or a duration back
// from now (10m, 2h, 1h30m: Go's units, ns to h). "" is the zero time (no
// bound). The time must lie between the Unix epoch and ten years from now,
// a duration within ten years; anything else is an ErrInvalidArgument
// naming the forms.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	var (
		t   time.Time
		err error
	)
	if m := unixSecondsRE.FindStringSubmatch(v); m != nil {
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		var nsec int64
		if m[2] != "" {
			frac := m[2] + "000000000"[len(m[2]):]
			nsec, _ = strconv.ParseInt(frac, 10, 64)
		}
		t = time.Unix(sec, nsec)
	} else if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil {
			return time.Time{}, Errorf(ErrInvalidArgument, "invalid since %q: want an RFC 3339 time (2026-12-05T08:00:00Z), Unix seconds (1764921600) or a duration back from now (10m, 2h)", v)
		}
		if d < 0 || d > maxSince {
			return time.Time{}, Errorf(ErrInvalidArgument, "invalid since %q: a duration back from now must be from 0 to ten years (87600h)", v)
		}
		return now.Add(-d), nil
	}
	if t.Before(time.Unix(0, 0)) || t.After(now.Add(maxSince)) {
		return time.Time{}, Errorf(ErrInvalidArgument, "invalid since %q: want a time from 1970-01-01T00:00:00Z to ten years from now", v)
	}
	return t, nil
}
