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

// ImageExists reports whether ref is in the engine's image store.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	if err := runtime.ValidateImage(ref); err != nil {
		return false, err
	}
	_, err := e.RunClient(ctx, slices.Concat(e.d.ImageExistsArgs, []string{ref})...)
	var ee *cli.ExitError
	switch {
	case err == nil:
		return true, nil
	case e.d.AbsentExitCode != 0 && errors.As(err, &ee) && ee.ExitCode == e.d.AbsentExitCode && ee.Class == nil:
		return false, nil
	case NotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("image exists %q: %w", ref, err)
	}
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
