package clirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// ImageID returns the ID of the image ref names, "" when there is none.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	if err := runtime.ValidateImage(ref); err != nil {
		return "", err
	}
	out, err := e.RunClient(ctx, slices.Concat(e.d.ImageIDArgs, []string{ref})...)
	switch {
	case err == nil:
		id := ImageID(strings.Trim(strings.TrimSpace(string(out.Stdout)), `"`))
		if id == "" {
			return "", fmt.Errorf("image id %q: %w", ref, runtime.Errorf(runtime.ErrUnavailable, "%s printed no image ID", e.d.Name))
		}
		return id, nil
	case NotFound(err):
		return "", nil
	default:
		return "", fmt.Errorf("image id %q: %w", ref, err)
	}
}

// ImageID spells an engine's image ID as the runtime does: "sha256:<hex>"
// (podman prints the hex alone).
func ImageID(id string) string {
	if id == "" || strings.Contains(id, ":") {
		return id
	}
	return "sha256:" + id
}

// pullTail is how many of the last output lines of a failed pull are
// kept for its error, when progress and errors share the stream.
const pullTail = 8

// PullImage pulls ref, handing each line the client prints to progress.
func (e *Engine) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	if err := runtime.ValidateImage(ref); err != nil {
		return err
	}
	s, err := e.Stream(ctx, cli.StreamOptions{MergeStderr: e.d.PullOnStderr}, e.d.PullArgs(ref)...)
	if err != nil {
		return fmt.Errorf("pull %q: %w", ref, err)
	}
	defer s.Close()
	var tail []string
	for {
		line, err := s.ReadLine()
		if errors.Is(err, cli.ErrLineTooLong) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			var ee *cli.ExitError
			if e.d.PullOnStderr && errors.As(err, &ee) {
				text := strings.Join(tail, "\n")
				err = &cli.ExitError{Command: ee.Command, ExitCode: ee.ExitCode, Stderr: cli.TrimStderr([]byte(text)), Class: e.d.Classify(text)}
			}
			return fmt.Errorf("pull %q: %w", ref, err)
		}
		status := strings.TrimSpace(string(line))
		if status == "" {
			continue
		}
		if tail = append(tail, status); len(tail) > pullTail {
			tail = tail[1:]
		}
		if progress != nil {
			progress(runtime.PullProgress{Ref: ref, Status: status})
		}
	}
}
