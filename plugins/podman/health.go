package podman

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// healthArgs returns the healthcheck flags of podman create. Unlike
// docker's client, podman's --health-cmd takes a JSON array, which it
// stores as the exec form ["CMD", args...]: no shell is needed, whatever
// the image. Two quirks of podman 4.3's parser:
//
//   - an array of one element is stored as the shell form ["CMD-SHELL",
//     arg] (the image then needs /bin/sh, and it reads back as ["/bin/sh",
//     "-c", arg]);
//   - an array whose first element is CMD, CMD-SHELL or NONE is split on
//     spaces as text, which breaks it: such a test is refused.
//
// A nil Healthcheck is --no-healthcheck (the design's "empty = none"), so
// that an image's own HEALTHCHECK does not sneak in. A zero duration or
// retry count is podman's default (interval 30s, timeout 30s, start
// period 0s, retries 3), and reads back as that.
func healthArgs(h *runtime.Healthcheck) ([]string, error) {
	if h == nil {
		return []string{"--no-healthcheck"}, nil
	}
	switch strings.ToUpper(h.Test[0]) {
	case "CMD", "CMD-SHELL", "NONE":
		return nil, runtime.Errorf(runtime.ErrInvalidArgument, "healthcheck command %q: podman reads a first word CMD, CMD-SHELL or NONE as a keyword", h.Test[0])
	}
	test, err := json.Marshal(h.Test)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	a := []string{"--health-cmd=" + string(test)}
	if h.Interval > 0 {
		a = append(a, "--health-interval="+h.Interval.String())
	}
	if h.Timeout > 0 {
		a = append(a, "--health-timeout="+h.Timeout.String())
	}
	if h.StartPeriod > 0 {
		a = append(a, "--health-start-period="+h.StartPeriod.String())
	}
	if h.Retries > 0 {
		a = append(a, "--health-retries="+strconv.Itoa(h.Retries))
	}
	return a, nil
}

// healthFromConfig turns podman's healthcheck back into the spec's:
// ["CMD", args...] gives args, ["CMD-SHELL", s] the equivalent exec form
// ["/bin/sh", "-c", s], ["NONE"] or none gives nil.
func healthFromConfig(hc *healthJSON) *runtime.Healthcheck {
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	h := &runtime.Healthcheck{
		Interval:    time.Duration(hc.Interval),
		Timeout:     time.Duration(hc.Timeout),
		StartPeriod: time.Duration(hc.StartPeriod),
		Retries:     hc.Retries,
	}
	switch hc.Test[0] {
	case "CMD":
		h.Test = slices.Clone(hc.Test[1:])
	case "CMD-SHELL":
		h.Test = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		h.Test = slices.Clone(hc.Test)
	}
	return h
}

// healthJSON is a healthcheck as podman's inspect prints it.
type healthJSON struct {
	Test        []string
	Interval    int64
	Timeout     int64
	StartPeriod int64
	Retries     int
}
