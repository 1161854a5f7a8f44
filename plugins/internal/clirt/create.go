package clirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/plugins/internal/envfile"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Create creates (does not start) a container and returns its ID. The
// image must be present: CreateArgs tells the client never to pull, so a
// missing image is ErrNotFound rather than a hidden pull.
func (e *Engine) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	args, err := e.d.CreateArgs(ctx, spec)
	if err != nil {
		return "", err
	}

	// The env file is in memory, a descriptor the client inherits: nothing
	// of it is on disk, and it ends with the call (or the process).
	var files []*os.File
	if len(spec.Env) > 0 {
		f, err := envfile.Open(spec.Env)
		if err != nil {
			return "", fmt.Errorf("create %q: env file: %w", spec.Name, err)
		}
		defer f.Close()
		files = []*os.File{f}
		args = append(args, "--env-file="+envfile.Path)
	}

	// The image ends the options; what follows is the container's command,
	// which the client passes on without parsing.
	args = append(args, spec.Image)
	args = append(args, spec.Cmd...)

	res, err := e.RunClientFiles(ctx, files, args...)
	var ee *cli.ExitError
	if err != nil && spec.OCIRuntime != "" && errors.As(err, &ee) && e.d.UnknownOCIRuntime.MatchString(ee.Stderr) {
		return "", fmt.Errorf("create %q: %w", spec.Name, runtime.UnknownOCIRuntime(e.d.Name, spec.OCIRuntime))
	}
	if err != nil {
		return "", fmt.Errorf("create %q: %w", spec.Name, err)
	}
	lines := strings.Fields(string(res.Stdout))
	if len(lines) == 0 || !ContainerIDRE.MatchString(lines[len(lines)-1]) {
		return "", fmt.Errorf("create %q: unexpected output %q", spec.Name, res.Stdout)
	}
	return lines[len(lines)-1], nil
}
