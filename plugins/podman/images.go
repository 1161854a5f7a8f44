package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// ImageExists reports whether ref is in podman's image store, with
// `podman image exists` (exit 1: it is not). A short name resolves
// against local images only: "zaki/gateway-stub:latest" finds
// "localhost/zaki/gateway-stub:latest".
func (p *Podman) ImageExists(ctx context.Context, ref string) (bool, error) {
	if err := runtime.ValidateImage(ref); err != nil {
		return false, err
	}
	_, err := p.run(ctx, "image", "exists", "--", ref)
	var ee *cli.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode == 1 && ee.Class == nil:
		return false, nil
	case notFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("image exists %q: %w", ref, err)
	}
}

// pullTail is how many of the last output lines of a failed pull are
// kept for its error.
const pullTail = 8

// PullImage pulls ref, handing each line `podman pull` prints to
// progress. Podman prints its progress on stderr, so the stream merges
// both, and a failure is classified from its last lines. A registry on
// this host (localhost, a loopback address) is pulled from without TLS
// verification (--tls-verify=false), as docker trusts 127.0.0.0/8 by
// default; every other registry keeps podman's settings
// (registries.conf).
func (p *Podman) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	if err := runtime.ValidateImage(ref); err != nil {
		return err
	}
	args := []string{"pull"}
	if loopbackRegistry(ref) {
		args = append(args, "--tls-verify=false")
	}
	args = append(args, "--", ref)
	s, err := p.stream(ctx, cli.StreamOptions{MergeStderr: true}, args...)
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
			if errors.As(err, &ee) {
				text := strings.Join(tail, "\n")
				err = &cli.ExitError{Command: ee.Command, ExitCode: ee.ExitCode, Stderr: cli.TrimStderr([]byte(text)), Class: classify(text)}
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

// loopbackRegistry reports whether ref names a registry on this host:
// its first path element has a dot or a port, or is localhost, and the
// host is localhost or a loopback address.
func loopbackRegistry(ref string) bool {
	domain, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(domain, ".:") || domain == "localhost" || strings.HasPrefix(domain, "[")) {
		return false
	}
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
