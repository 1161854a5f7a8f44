package agent

import (
	"context"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// PullImage pulls ref from its registry even when it is present, so that
// a tag moved in the registry is brought to this host (POST
// /v1/images/pull). ref must be a valid reference (ErrInvalidArgument)
// the config allows: the default image or one matching
// instance.allowedImages (ErrForbidden).
//
// It shares the image puller of ensure: a pull of ref already in flight
// is joined (its progress is passed on from then), else one is started;
// either way one pull per image at a time, bounded by pullTimeoutSeconds
// and pullStallSeconds, logged and sent as image.pull events as an
// ensure's. It fails as an ensure's pull does: ErrPullFailed with the
// engine's reason, ErrUnavailable when the engine does not answer,
// ErrTimeout past the bounds or when ctx ends first (the pull goes on for
// the others). Progress, when set, receives its status lines; it is
// called from the pull's goroutine and must not block.
//
// It returns the ID the tag resolves to once pulled (asked of the engine
// after the pull, and remembered: instances made from another ID of the
// tag are stale from then on).
func (a *Agent) PullImage(ctx context.Context, ref string, progress func(runtime.PullProgress)) (imageID string, err error) {
	if err := a.conf().checkImage(ref); err != nil {
		return "", err
	}
	return a.images.join(ctx, ref, progress, false)
}
