package podman

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
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
	return append([]string{"--health-cmd=" + string(test)}, clirt.HealthTimings(h)...), nil
}
