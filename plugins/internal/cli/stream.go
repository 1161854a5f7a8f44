package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// MergeStderr sends the child's stderr into the stream as well,
	// interleaved as the child writes them (one pipe for both), as logs
	// need. Otherwise stderr is kept apart, up to MaxStderr, for the error.
	MergeStderr bool
	// MaxLine caps a line returned by ReadLine (zero: DefaultMaxLine).
	MaxLine int
}

// ErrLineTooLong is returned by ReadLine for a line longer than MaxLine;
// the line is skipped and the stream goes on.
var ErrLineTooLong = errors.New("line too long")

// Stream is the output of a running command. Read and ReadLine are for one
// goroutine; Close may be called from any, any number of times.
//
// When the output ends, Read and ReadLine return io.EOF if the command
// exited with status 0 or the stream was closed, the ctx error (as Run
// reports it) if ctx ended, and an *ExitError otherwise.
type Stream struct {
	r      *Runner
	args   []string
	ctx    context.Context
	cancel context.CancelFunc
	cmd    *exec.Cmd
	pipe   *os.File
	br     *bufio.Reader
	stderr *capBuffer
	max    int

	done    chan struct{} // closed once the command is waited for
	waitErr error
	closed  atomic.Bool
	once    sync.Once
	endErr  error
}

// Stream starts the client with args and returns its output as a stream.
// The child is killed (with its process group) when ctx ends or the stream
// is closed.
func (r *Runner) Stream(ctx context.Context, opts StreamOptions, args ...string) (*Stream, error) {
	sctx, cancel := context.WithCancel(ctx)
	cmd, err := r.command(sctx, args)
	if err != nil {
		cancel()
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", r.Name(args), err)
	}
	s := &Stream{
		r: r, args: args, ctx: ctx, cancel: cancel, cmd: cmd, pipe: pr,
		br:     bufio.NewReaderSize(pr, 64<<10),
		stderr: &capBuffer{max: r.cfg.MaxStderr},
		max:    opts.MaxLine,
		done:   make(chan struct{}),
	}
	if s.max <= 0 {
		s.max = DefaultMaxLine
	}
	cmd.Stdout = pw
	if opts.MergeStderr {
		cmd.Stderr = pw
	} else {
		cmd.Stderr = s.stderr
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		cancel()
		return nil, r.startError(sctx, args, err)
	}
	pw.Close() // the child holds its own copy
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (r *Runner) startError(ctx context.Context, args []string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return r.ctxError(args, ctxErr)
	}
	return fmt.Errorf("%s: start: %w", r.Name(args), err)
}

// Read reads the command's output.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.br.Read(p)
	if err != nil {
		return n, s.end()
	}
	return n, nil
}

// ReadLine returns the next line of output without its line ending. The
// slice is valid until the next call.
func (s *Stream) ReadLine() ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			if line != nil {
				chunk = append(line, chunk...)
			}
			chunk = trimEOL(chunk)
			if tooLong || len(chunk) > s.max {
				return nil, fmt.Errorf("%s: %w: more than %d bytes", s.r.Name(s.args), ErrLineTooLong, s.max)
			}
			return chunk, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(line)+len(chunk) <= s.max {
				line = append(line, chunk...)
			} else {
				tooLong, line = true, nil
			}
		default:
			// The output ended: a last line without a newline still counts.
			if len(chunk) > 0 && !tooLong && len(line)+len(chunk) <= s.max {
				return trimEOL(append(line, chunk...)), nil
			}
			return nil, s.end()
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// end waits for the command and returns how the stream ended.
func (s *Stream) end() error {
	s.once.Do(func() {
		<-s.done
		s.cancel()
		switch {
		case s.closed.Load():
			s.endErr = io.EOF
		case s.waitErr == nil:
			s.endErr = io.EOF
		default:
			s.endErr = s.r.endError(s.ctx, s.args, s.cmd, s.waitErr, []byte(s.stderr.String()))
			if s.endErr == nil {
				s.endErr = io.EOF
			}
		}
	})
	return s.endErr
}

// Close kills the command if it still runs and releases the stream.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		<-s.done
		return nil
	}
	s.cancel()
	<-s.done
	s.pipe.Close()
	return nil
}

// Stderr returns what the command wrote to stderr so far (empty with
// MergeStderr).
func (s *Stream) Stderr() string { return s.stderr.String() }

// Done is closed when the command has exited and been waited for.
func (s *Stream) Done() <-chan struct{} { return s.done }
