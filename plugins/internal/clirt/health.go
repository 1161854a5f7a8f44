package clirt

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// HealthJSON is a healthcheck as both clients' inspect prints it.
type HealthJSON struct {
	Test        []string
	Interval    int64
	Timeout     int64
	StartPeriod int64
	Retries     int
}

// HealthFromConfig turns the engine's healthcheck back into the spec's:
// ["CMD", args...] gives args; ["CMD-SHELL", s] gives what parseShell
// makes of s when it knows it (may be nil), else the equivalent exec form
// ["/bin/sh", "-c", s]; ["NONE"] or none gives nil.
func HealthFromConfig(hc *HealthJSON, parseShell func(string) ([]string, bool)) *runtime.Healthcheck {
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
		cmd := strings.Join(hc.Test[1:], " ")
		if argv, ok := parseShellOK(parseShell, cmd); ok {
			h.Test = argv
		} else {
			h.Test = []string{"/bin/sh", "-c", cmd}
		}
	default:
		h.Test = slices.Clone(hc.Test)
	}
	return h
}

func parseShellOK(parse func(string) ([]string, bool), cmd string) ([]string, bool) {
	if parse == nil {
		return nil, false
	}
	return parse(cmd)
}

// HealthTimings returns the --health-* timing flags both clients take,
// for the values h sets (a zero one is the image's or engine's default).
func HealthTimings(h *runtime.Healthcheck) []string {
	var a []string
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
	return a
}
