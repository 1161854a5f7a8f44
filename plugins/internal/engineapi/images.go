package engineapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// PullStatus is one message of an image pull's progress stream.
type PullStatus struct {
	ID       string `json:"id"`     // the layer, when the line is about one
	Status   string `json:"status"` // "Pulling fs layer", "Downloading", ...
	Progress string `json:"progress"`
	Error    string `json:"error"` // set on the last message of a failed pull
}

// PullImage pulls ref (name, name:tag or name@digest) into this engine,
// calling progress (when not nil) with each message of the engine's
// progress stream, in order, until the pull ends. A pull the engine
// refuses at once (an unknown registry, a bad reference) fails with the
// answer's class; one that fails in the middle, as the stream's last
// message says, is ErrUnavailable, or ErrNotFound when the engine says
// the image or its tag does not exist.
func (c *Client) PullImage(ctx context.Context, ref string, progress func(PullStatus)) error {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid image reference %q", ref)
	}
	q := url.Values{"fromImage": {ref}}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/images/create", query: q})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lim := &resetLimit{r: resp.Body}
	dec := json.NewDecoder(lim)
	for {
		lim.n = maxEvent
		var m PullStatus
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("pull %s: %w", ref, ctx.Err())
			}
			return errdefs.Errorf(errdefs.ErrUnavailable, "pull %s: %w", ref, err)
		}
		if m.Error != "" {
			class := errdefs.ErrUnavailable
			if strings.Contains(m.Error, "not found") || strings.Contains(m.Error, "does not exist") {
				class = errdefs.ErrNotFound
			}
			return errdefs.Errorf(class, "pull %s: engine: %s", ref, m.Error)
		}
		if progress != nil {
			progress(m)
		}
	}
}
