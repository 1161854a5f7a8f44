package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// ImageExists reports whether ref is in the engine's image store.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	if err := runtime.ValidateImage(ref); err != nil {
		return false, err
	}
	_, err := d.run(ctx, "image", "inspect", "--format", "{{json .Id}}", ref)
	switch {
	case err == nil:
		return true, nil
	case notFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("image exists %q: %w", ref, err)
	}
}

// PullImage pulls ref, handing each line `docker pull` prints to progress.
func (d *Docker) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	if err := runtime.ValidateImage(ref); err != nil {
		return err
	}
	d.health.forget(ref) // the pulled image may carry another HEALTHCHECK
	s, err := d.cli.Stream(ctx, cli.StreamOptions{}, "pull", ref)
	if err != nil {
		return fmt.Errorf("pull %q: %w", ref, err)
	}
	defer s.Close()
	for {
		line, err := s.ReadLine()
		if errors.Is(err, cli.ErrLineTooLong) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("pull %q: %w", ref, err)
		}
		status := strings.TrimSpace(string(line))
		if status != "" && progress != nil {
			progress(runtime.PullProgress{Ref: ref, Status: status})
		}
	}
}
