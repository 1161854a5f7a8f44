package podman

import (
	"context"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
)

// identify returns the ID and name of each ref that names a container
// (by name, ID or ID prefix); refs that name none are left out. Podman
// names a failed container of a batch by its full ID, not as given.
func (p *Podman) identify(ctx context.Context, refs []string) (map[string]clirt.Identity, error) {
	out := map[string]clirt.Identity{}
	if len(refs) == 0 {
		return out, nil
	}
	args := append([]string{"container", "inspect", "--format", "{{.Id}} {{.Name}}", "--"}, refs...)
	res, err := p.RunClient(ctx, args...)
	if err != nil && !clirt.NotFound(err) {
		return nil, err
	}
	for line := range strings.SplitSeq(string(res.Stdout), "\n") {
		id, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		for _, r := range refs {
			if r == name || strings.HasPrefix(id, r) {
				out[r] = clirt.Identity{ID: id, Name: name}
			}
		}
	}
	return out, nil
}
