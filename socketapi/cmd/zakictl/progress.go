package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

var pullCmd = &command{
	name: "pull", args: "IMAGE", nargs: 1,
	summary: "pull IMAGE again from its registry, even when the host has it",
	help: `
Brings a moved tag (a new release pushed as alpine/openclaw:latest) to this
host. IMAGE must be the agent's default image or match its allowedImages.
Running instances are not touched: one whose image changed is made anew at
its next cold ensure. A pull of IMAGE already under way (a first ensure)
is joined, not repeated.

The pull's progress goes to standard error: a progress bar on a terminal
(layers done of layers seen), one line per status otherwise. When done it
prints "IMAGE pulled" (with --json, the agent's answer). Exits 1 when the
pull fails (pull_failed: the engine's reason, e.g. no such tag), the image
is not allowed (forbidden), or the engine does not answer.

Examples:
  zakictl pull alpine/openclaw:latest
  zakictl pull alpine/openclaw:2026.1 --json`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			p := newProgress(c.stderr)
			res, err := c.client.PullImage(ctx, args[0], p.show)
			p.end()
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(res)
			}
			fmt.Fprintf(c.stdout, "%s pulled\n", res.Image)
			return nil
		}
	},
}

// progress shows the status lines of an image pull on w: on a terminal
// one line redrawn in place, a bar of the layers done out of those seen;
// otherwise each status line as it is ("pull IMAGE: STATUS").
type progress struct {
	w     io.Writer
	tty   bool
	width int
	drawn bool
	image string
	seen  map[string]bool
	done  map[string]bool
	last  string
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, seen: map[string]bool{}, done: map[string]bool{}}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			p.tty = true
			p.width = 80
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 20 {
				p.width = int(ws.Col)
			}
		}
	}
	return p
}

// show takes one status line.
func (p *progress) show(pp socketapi.PullProgress) {
	if !p.tty {
		fmt.Fprintf(p.w, "pull %s: %s\n", pp.Image, pp.Status)
		return
	}
	p.count(pp)
	p.draw()
}

// count notes the layer a status line is about: "<id>: Pulling fs
// layer", "<id>: Downloading", ... until "<id>: Pull complete" or "<id>:
// Already exists".
func (p *progress) count(pp socketapi.PullProgress) {
	p.image = pp.Image
	p.last = pp.Status
	id, status, ok := strings.Cut(pp.Status, ": ")
	if !ok || !isLayerID(id) {
		return
	}
	p.seen[id] = true
	if strings.HasPrefix(status, "Pull complete") || strings.HasPrefix(status, "Already exists") {
		p.done[id] = true
	}
}

// isLayerID tells a layer's short ID (12 hex digits) from a tag.
func isLayerID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// line is what draw shows: the image, the bar, the count and the last
// status, cut to width.
func (p *progress) line() string {
	const barWidth = 20
	n, total := len(p.done), len(p.seen)
	filled := 0
	if total > 0 {
		filled = n * barWidth / total
	}
	s := fmt.Sprintf("pull %s [%s%s] %d/%d layers  %s", p.image,
		strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), n, total, p.last)
	if r := []rune(s); p.width > 0 && len(r) > p.width-1 {
		s = string(r[:p.width-1])
	}
	return s
}

func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r%s\x1b[K", p.line())
	p.drawn = true
}

// end closes the drawn line, if any.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
