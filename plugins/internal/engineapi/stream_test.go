package engineapi_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
)

func TestDemux(t *testing.T) {
	big := strings.Repeat("x", 70000) // more than one read's worth
	stream := bytes.Join([][]byte{
		frame(engineapi.Stdout, "a\n"),
		frame(engineapi.Stderr, "e1\n"),
		frame(engineapi.Stdout, ""), // empty frames happen
		frame(engineapi.Stdout, big),
		frame(engineapi.Stderr, "e2"),
	}, nil)
	for _, tc := range []struct {
		name       string
		stream     []byte
		out, err   string
		wantErr    error  // errors.Is
		wantErrMsg string // or contains
	}{
		{name: "whole", stream: stream, out: "a\n" + big, err: "e1\ne2"},
		{name: "empty", stream: nil},
		{name: "cut in a header", stream: append(frame(engineapi.Stdout, "a"), 1, 0, 0),
			out: "a", wantErr: io.ErrUnexpectedEOF},
		{name: "cut in a payload", stream: append(frame(engineapi.Stdout, "a"), frame(engineapi.Stderr, "hello")[:10]...),
			out: "a", err: "he", wantErr: io.ErrUnexpectedEOF},
		{name: "engine error", stream: append(frame(engineapi.Stdout, "a"), frame(engineapi.Systemerr, "exec failed")...),
			out: "a", wantErr: errdefs.ErrUnavailable, wantErrMsg: "engine: exec failed"},
		{name: "not multiplexed", stream: []byte("plain text from a tty\n"), wantErrMsg: "not a multiplexed stream"},
		{name: "stdin dropped", stream: append(frame(engineapi.Stdin, "in"), frame(engineapi.Stdout, "o")...), out: "o"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(tc.stream)
				if split { // partial frames on every read
					r = iotest.OneByteReader(r)
				}
				var out, errb bytes.Buffer
				err := engineapi.Demux(&out, &errb, r)
				assert.Check(t, is.Equal(out.String(), tc.out), "split %v", split)
				assert.Check(t, is.Equal(errb.String(), tc.err), "split %v", split)
				switch {
				case tc.wantErr == nil && tc.wantErrMsg == "":
					assert.Check(t, err, "split %v", split)
				case tc.wantErr != nil:
					assert.Check(t, is.ErrorIs(err, tc.wantErr), "split %v", split)
				}
				if tc.wantErrMsg != "" {
					assert.Check(t, is.ErrorContains(err, tc.wantErrMsg), "split %v", split)
				}
			}
		})
	}
}

func TestMerge(t *testing.T) {
	stream := bytes.Join([][]byte{
		frame(engineapi.Stdout, "one\n"), frame(engineapi.Stderr, ""), frame(engineapi.Stderr, "two\n"), frame(engineapi.Stdout, "three\n"),
	}, nil)
	got, err := io.ReadAll(engineapi.Merge(io.NopCloser(iotest.OneByteReader(bytes.NewReader(stream)))))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(got), "one\ntwo\nthree\n"))

	got, err = io.ReadAll(engineapi.Merge(io.NopCloser(bytes.NewReader(stream[:len(stream)-3]))))
	assert.Check(t, is.ErrorIs(err, io.ErrUnexpectedEOF))
	assert.Check(t, is.Equal(string(got), "one\ntwo\nthr"))

	closed := &closeCounter{Reader: bytes.NewReader(nil)}
	assert.NilError(t, engineapi.Merge(closed).Close())
	assert.Check(t, is.Equal(closed.n, 1))
}

func TestFrameReader(t *testing.T) {
	f := engineapi.NewFrameReader(bytes.NewReader(append(frame(engineapi.Stderr, "skipped"), frame(engineapi.Stdout, "read")...)))
	stream, size, err := f.Next()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(stream, byte(engineapi.Stderr)))
	assert.Check(t, is.Equal(size, 7))
	stream, size, err = f.Next() // skips the unread payload
	assert.NilError(t, err)
	assert.Check(t, is.Equal(stream, byte(engineapi.Stdout)))
	assert.Check(t, is.Equal(size, 4))
	b, err := io.ReadAll(f)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "read"))
	_, _, err = f.Next()
	assert.Check(t, is.ErrorIs(err, io.EOF))
}

type closeCounter struct {
	io.Reader
	n int
}

func (c *closeCounter) Close() error { c.n++; return nil }
