package registry

import (
	"errors"
	"fmt"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// Each of the registry's errors is itself (errors.Is) and of its errdefs
// class, wrapped or not, and its text is the message alone.
func TestErrorClasses(t *testing.T) {
	cases := []struct {
		named, class error
	}{
		{ErrInvalid, errdefs.ErrInvalidArgument},
		{ErrPortConflict, errdefs.ErrConflict},
		{ErrNoFreePort, errdefs.ErrResourceExhausted},
		{ErrLocked, errdefs.ErrConflict},
		{ErrCorrupt, errdefs.ErrDataLoss},
		{ErrClosed, errdefs.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.named.Error(), func(t *testing.T) {
			err := fmt.Errorf("op: %w", errdefs.Errorf(c.named, "what went wrong"))
			assert.Check(t, errors.Is(err, c.named))
			assert.Check(t, errors.Is(err, c.class))
			assert.Check(t, is.Equal(errdefs.Class(err), c.class))
			assert.Check(t, is.Equal(errdefs.Class(c.named), c.class))
			assert.Check(t, is.Equal(err.Error(), "op: what went wrong"))
		})
	}
	// A real one: a full port range.
	r := openT(t, "", Options{})
	_, err := r.ReservePort("alice", 18790, 18790)
	assert.NilError(t, err)
	_, err = r.ReservePort("bob", 18790, 18790)
	assert.Check(t, is.ErrorIs(err, ErrNoFreePort))
	assert.Check(t, is.Equal(errdefs.Class(err), errdefs.ErrResourceExhausted))
}
