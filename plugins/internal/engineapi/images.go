package engineapi

import (
	"context"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Image is the part of an image's inspect the plugin reads.
type Image struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Created      time.Time
	Os           string
	Architecture string
	Config       struct {
		User         string
		Labels       map[string]string
		ExposedPorts map[string]struct{} // "18789/tcp"
		Healthcheck  *HealthConfig
	}
}

// ImageInspect inspects the image of reference or ID ref on this engine
// (a swarm node pulls or finds its own copy when it starts a task).
func (c *Client) ImageInspect(ctx context.Context, ref string) (Image, error) {
	// A reference may hold "/" (registry/repo:tag): the engine's route
	// takes the rest of the path as the name. It never holds "..".
	if ref == "" || strings.HasPrefix(ref, "/") || strings.Contains(ref, "..") {
		return Image{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid image reference %q", ref)
	}
	return get[Image](ctx, c, "/images/"+ref+"/json", nil)
}
