package swarm

import (
	"context"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// ImageID returns the ID of image ref in the manager's own image store,
// "" when it has none. Each node keeps its own images: loading the image
// on every node (or a registry they pull from) is provisioning
// (docs/swarm-nodes.md), and this ID is the nodes' only when they were
// given the same image.
func (r *Runtime) ImageID(ctx context.Context, ref string) (string, error) {
	if err := runtime.ValidateImage(ref); err != nil {
		return "", err
	}
	img, err := r.api.ImageInspect(ctx, ref)
	if runtime.Class(err) == runtime.ErrNotFound {
		return "", nil
	}
	if err != nil {
		return "", wrap(err, "image "+ref)
	}
	return img.ID, nil
}

// PullImage pulls ref into the manager's engine only. A task's node finds
// the image in its own store (its engine run with
// DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1) or pulls it itself when the task
// starts: getting images onto the nodes is provisioning.
func (r *Runtime) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) error {
	if err := runtime.ValidateImage(ref); err != nil {
		return err
	}
	var cb func(engineapi.PullStatus)
	if progress != nil {
		cb = func(s engineapi.PullStatus) {
			line := s.Status
			if s.ID != "" {
				line = s.ID + ": " + line
			}
			progress(runtime.PullProgress{Ref: ref, Status: line})
		}
	}
	if err := r.api.PullImage(ctx, ref, cb); err != nil {
		return wrap(err, "pull "+ref)
	}
	return nil
}

// EnsureNetwork succeeds without a network: the swarm runtime runs its
// tasks on each node's default bridge, where the node's engine
// (--icc=false) and its iptables rules keep tenants apart
// (docs/swarm-nodes.md). A swarm-scoped network would drop
// enable_icc=false silently, and failed for good after a node crash.
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	return ctx.Err()
}

// RemoveNetwork succeeds: there is no network (see EnsureNetwork).
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	if err := runtime.ValidateName(name); err != nil {
		return err
	}
	return ctx.Err()
}
