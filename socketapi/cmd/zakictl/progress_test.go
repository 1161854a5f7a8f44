package main

import (
	"bytes"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// TestProgressBar: on a terminal the pull's lines make one line redrawn
// in place, counting layers done ("Pull complete", "Already exists") of
// layers seen; off a terminal each line is printed as it is.
func TestProgressBar(t *testing.T) {
	const img = "alpine/openclaw:latest"
	lines := []string{
		"latest: Pulling from alpine/openclaw",
		"0123456789ab: Pulling fs layer",
		"ba9876543210: Already exists",
		"0123456789ab: Downloading [=====>    ] 1MB/2MB",
		"cafecafecafe: Pulling fs layer",
		"0123456789ab: Pull complete",
		"Digest: sha256:00",
	}
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, width: 200, seen: map[string]bool{}, done: map[string]bool{}}
	for _, l := range lines {
		p.show(socketapi.PullProgress{Image: img, Status: l})
	}
	p.end()
	out := b.String()
	assert.Check(t, is.Equal(strings.Count(out, "\r"), len(lines)))
	assert.Check(t, strings.HasSuffix(out, "\n"))
	assert.Check(t, is.Equal(strings.Count(out, "\n"), 1))
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	assert.Check(t, is.Equal(frames[0], "pull "+img+" [                    ] 0/0 layers  latest: Pulling from alpine/openclaw\x1b[K"))
	assert.Check(t, is.Equal(frames[2], "pull "+img+" [==========          ] 1/2 layers  ba9876543210: Already exists\x1b[K"))
	assert.Check(t, is.Equal(frames[6], "pull "+img+" [=============       ] 2/3 layers  Digest: sha256:00\x1b[K"))

	// Cut to the terminal's width.
	p = &progress{w: &b, tty: true, width: 30, seen: map[string]bool{}, done: map[string]bool{}}
	b.Reset()
	p.show(socketapi.PullProgress{Image: img, Status: lines[1]})
	assert.Check(t, is.Equal(b.String(), "\rpull alpine/openclaw:latest [\x1b[K"))
	p.end()

	// Not a terminal: the lines as they come, nothing to end.
	b.Reset()
	p = newProgress(&b)
	assert.Check(t, !p.tty)
	p.show(socketapi.PullProgress{Image: img, Status: lines[0]})
	p.end()
	assert.Check(t, is.Equal(b.String(), "pull "+img+": "+lines[0]+"\n"))
}
