package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// The docker client cannot express an exec-form healthcheck: --health-cmd
// takes one string and always stores ["CMD-SHELL", string], which the
// engine runs as `/bin/sh -c string`, and no flag sets the test as a list.
// An image without /bin/sh (a FROM scratch image such as the gateway
// stand-in) can therefore never pass a --health-cmd check. The engine does
// keep an image's own exec-form HEALTHCHECK test when the container sets
// only the timings, so Create:
//
//   - when the spec's test is the image's own exec-form HEALTHCHECK test,
//     passes only the timing flags: the container keeps the exec form and
//     no shell is needed;
//   - otherwise passes --health-cmd="exec 'arg0' 'arg1' ...": each argument
//     quoted for the shell, and exec so that the probe is the shell's own
//     process. The image then needs /bin/sh (alpine/openclaw has it).
//
// A nil Healthcheck is --no-healthcheck (the design's "empty = none"), so
// that an image's own HEALTHCHECK does not sneak in. A zero duration or
// retry count takes the image's HEALTHCHECK value, if it has one (the
// engine merges them), else the engine's default, and reads back as that.
//
// Read back, ["CMD", args...] gives args; a ["CMD-SHELL", s] that Create
// wrote gives the original args; any other ["CMD-SHELL", s] gives the
// equivalent exec form ["/bin/sh", "-c", s].

// healthArgs returns the healthcheck flags of docker create for spec.
func (d *Docker) healthArgs(ctx context.Context, spec runtime.ContainerSpec) ([]string, error) {
	h := spec.Healthcheck
	if h == nil {
		return []string{"--no-healthcheck"}, nil
	}
	timing := clirt.HealthTimings(h)
	imageTest, err := d.imageHealthTest(ctx, spec.Image)
	if err != nil && !clirt.NotFound(err) {
		return nil, err
	}
	if slices.Equal(imageTest, append([]string{"CMD"}, h.Test...)) {
		if len(timing) == 0 {
			// Nothing to say: the image's healthcheck applies as it is.
			// (The client sends no healthcheck without a --health-* flag.)
			return nil, nil
		}
		return timing, nil
	}
	return append([]string{"--health-cmd=" + shellCommand(h.Test)}, timing...), nil
}

// imageHealthTest returns the test of the image's own HEALTHCHECK (nil if
// it has none).
func (d *Docker) imageHealthTest(ctx context.Context, image string) ([]string, error) {
	if test, ok := d.health.get(image, time.Now()); ok {
		return test, nil
	}
	test, err := d.readImageHealthTest(ctx, image)
	if err == nil {
		d.health.put(image, test, time.Now())
	}
	return test, err
}

// readImageHealthTest asks the engine for the test of the image's own
// HEALTHCHECK.
func (d *Docker) readImageHealthTest(ctx context.Context, image string) ([]string, error) {
	res, err := d.RunClient(ctx, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)
	if err != nil {
		return nil, fmt.Errorf("image healthcheck: %w", err)
	}
	var hc *struct{ Test []string }
	if err := json.Unmarshal(res.Stdout, &hc); err != nil {
		return nil, fmt.Errorf("image healthcheck: parse: %w", err)
	}
	if hc == nil {
		return nil, nil
	}
	return hc.Test, nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellCommand is argv as one POSIX shell command: "exec" and each
// argument, quoted unless it is plainly safe.
func shellCommand(argv []string) string {
	parts := []string{"exec"}
	for _, a := range argv {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseShellCommand reverses shellCommand; ok is false for any string it
// did not make.
func parseShellCommand(s string) (argv []string, ok bool) {
	rest, found := strings.CutPrefix(s, "exec ")
	if !found {
		return nil, false
	}
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(rest); {
		c := rest[i]
		switch {
		case c == ' ':
			if !inWord {
				return nil, false // two spaces: not ours
			}
			argv = append(argv, cur.String())
			cur.Reset()
			inWord = false
			i++
		case c == '\'':
			end := strings.IndexByte(rest[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			cur.WriteString(rest[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '\\' && i+1 < len(rest) && rest[i+1] == '\'':
			cur.WriteByte('\'')
			inWord = true
			i += 2
		case shellSafe.MatchString(string(c)):
			cur.WriteByte(c)
			inWord = true
			i++
		default:
			return nil, false
		}
	}
	if !inWord {
		return nil, false
	}
	argv = append(argv, cur.String())
	if shellCommand(argv) != s {
		return nil, false
	}
	return argv, true
}
