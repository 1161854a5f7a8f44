package docker

import (
	"context"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// PullImage pulls ref, handing each line `docker pull` prints to progress.
func (d *Docker) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	d.health.forget(ref) // the pulled image may carry another HEALTHCHECK
	return d.Engine.PullImage(ctx, ref, progress)
}
