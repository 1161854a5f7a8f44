package errdefs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

func TestClass(t *testing.T) {
	named := errdefs.Errorf(errdefs.ErrConflict, "port conflict") // a package's own named error of a class
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"none", errors.New("disk on fire"), nil},
		{"not found", errdefs.Errorf(errdefs.ErrNotFound, "gone"), errdefs.ErrNotFound},
		{"wrapped", fmt.Errorf("op: %w", errdefs.Errorf(errdefs.ErrResourceExhausted, "full")), errdefs.ErrResourceExhausted},
		{"named", fmt.Errorf("op: %w", errdefs.Errorf(named, "port 1 is taken")), errdefs.ErrConflict},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), errdefs.ErrTimeout},
		{"full disk", fmt.Errorf("write: %w", &os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}), errdefs.ErrResourceExhausted},
		{"quota", fmt.Errorf("write: %w", syscall.EDQUOT), errdefs.ErrResourceExhausted},
		{"most specific", errdefs.Errorf(errdefs.ErrUnavailable, "%w", errdefs.Errorf(errdefs.ErrAlreadyExists, "dup")), errdefs.ErrAlreadyExists},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Check(t, is.Equal(errdefs.Class(c.err), c.want))
		})
	}
	err := errdefs.Errorf(named, "port %d is taken", 1)
	assert.Check(t, is.Equal(err.Error(), "port 1 is taken"))
	assert.Check(t, errors.Is(err, named))
}
