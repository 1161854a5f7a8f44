// Package ctxwait holds the one wait that gives way to a context, shared
// by the agent and the runtime plugins.
package ctxwait

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
