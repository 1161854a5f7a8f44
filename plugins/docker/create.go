package docker

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/envfile"
	"github.com/zaki-platform/zaki-agent/runtime"
)

var containerIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Create creates (does not start) a container with `docker create`, and
// returns its ID. The image must be present: the client is told never to
// pull (--pull never), so a missing image is ErrNotFound rather than a
// hidden pull from a registry.
func (d *Docker) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	health, err := d.healthArgs(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("create %q: %w", spec.Name, err)
	}
	args := createArgs(spec, health)

	// The env file lives exactly as long as the docker create call.
	if len(spec.Env) > 0 {
		file, remove, err := envfile.Write(d.tempDir, spec.Env)
		if err != nil {
			return "", fmt.Errorf("create %q: env file: %w", spec.Name, err)
		}
		defer remove()
		args = append(args, "--env-file="+file)
	}

	// The image ends the options; what follows is the container's command,
	// which the client passes on without parsing.
	args = append(args, spec.Image)
	args = append(args, spec.Cmd...)

	res, err := d.run(ctx, args...)
	if err != nil {
		return "", fmt.Errorf("create %q: %w", spec.Name, err)
	}
	lines := strings.Fields(string(res.Stdout))
	if len(lines) == 0 || !containerIDRE.MatchString(lines[len(lines)-1]) {
		return "", fmt.Errorf("create %q: unexpected output %q", spec.Name, res.Stdout)
	}
	return lines[len(lines)-1], nil
}

// createArgs is the argv of `docker create` up to (not including) the env
// file and the image: the options podman's client reads alike too
// (cliargs.CreateFlags), docker's healthcheck flags among them. Every
// caller value is in --flag=value form.
func createArgs(spec runtime.ContainerSpec, health []string) []string {
	return append([]string{"create"}, cliargs.CreateFlags(spec, health)...)
}

// SweepEnvFiles removes the env-file dirs of creates that never finished
// (a plugin killed in the middle of one) and are older than age. It
// returns how many it removed.
func (d *Docker) SweepEnvFiles(age time.Duration) int { return envfile.Sweep(d.tempDir, age) }
