package engineapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// The streams of a multiplexed frame (its first byte).
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
	// Systemerr frames carry the engine's own error, ending the stream.
	Systemerr = 3
)

// A multiplexed stream (logs and exec output of a container without a
// TTY) is a sequence of frames: an 8-byte header, the stream byte, three
// zero bytes and the payload's length as a big-endian uint32, then the
// payload.
const frameHeader = 8

// maxFrame bounds one frame's payload; the engine sends at most 32 KiB.
const maxFrame = 1 << 20

// FrameReader reads the frames of a multiplexed stream one by one.
type FrameReader struct {
	r    io.Reader
	hdr  [frameHeader]byte
	left int // payload bytes of the current frame not read yet
}

// NewFrameReader returns a FrameReader of r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next skips what is left of the current frame and reads the next
// frame's header, returning its stream (Stdout, Stderr; never Systemerr)
// and payload length; read the payload with Read. It returns io.EOF when
// the stream ends between frames, io.ErrUnexpectedEOF when inside one,
// and an ErrUnavailable error with the engine's text for a Systemerr frame.
func (f *FrameReader) Next() (stream byte, size int, err error) {
	if f.left > 0 {
		if _, err := io.CopyN(io.Discard, f.r, int64(f.left)); err != nil {
			return 0, 0, unexpected(err)
		}
		f.left = 0
	}
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, 0, err // io.EOF between frames, io.ErrUnexpectedEOF in a header
	}
	stream = f.hdr[0]
	n := binary.BigEndian.Uint32(f.hdr[4:])
	if stream > Systemerr || f.hdr[1]|f.hdr[2]|f.hdr[3] != 0 || n > maxFrame {
		return 0, 0, errdefs.Errorf(errdefs.ErrUnavailable, "not a multiplexed stream (header % x)", f.hdr)
	}
	if stream == Systemerr {
		msg := make([]byte, n)
		if _, err := io.ReadFull(f.r, msg); err != nil {
			return 0, 0, unexpected(err)
		}
		return 0, 0, errdefs.Errorf(errdefs.ErrUnavailable, "engine: %s", msg)
	}
	f.left = int(n)
	return stream, int(n), nil
}

// Read reads the current frame's payload; it returns io.EOF at the
// frame's end (call Next for the next one).
func (f *FrameReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		return 0, io.EOF
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	if err != nil && (f.left > 0 || !errors.Is(err, io.EOF)) {
		return n, unexpected(err)
	}
	return n, nil
}

// unexpected turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Demux copies a multiplexed stream's payloads from r to stdout and
// stderr until r ends (nil), or a write or read fails (a stream cut
// inside a frame is io.ErrUnexpectedEOF).
func Demux(stdout, stderr io.Writer, r io.Reader) error {
	f := NewFrameReader(r)
	for {
		stream, _, err := f.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		w := stdout
		if stream == Stderr {
			w = stderr
		}
		if stream == Stdin { // the engine sends none; drop it
			w = io.Discard
		}
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("demux: %w", err)
		}
	}
}

// Merge returns rc's payloads as one stream, stdout and stderr
// interleaved in the order the engine sent them. Closing it closes rc.
func Merge(rc io.ReadCloser) io.ReadCloser {
	return &merged{f: NewFrameReader(rc), c: rc}
}

type merged struct {
	f *FrameReader
	c io.Closer
}

func (m *merged) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for m.f.left == 0 {
		if _, _, err := m.f.Next(); err != nil {
			return 0, err
		}
	}
	return m.f.Read(p)
}

func (m *merged) Close() error { return m.c.Close() }
