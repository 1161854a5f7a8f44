package registry

import (
	"errors"
	"fmt"
)

// The closed set of error classes the registry returns, tested with
// errors.Is. A write that fails for another reason (a full disk, an I/O
// error) wraps the underlying error instead, so errors.Is(err,
// syscall.ENOSPC) holds for a full disk.
var (
	// ErrInvalid: a user ID, record field or port range the registry refuses.
	ErrInvalid = errors.New("invalid argument")
	// ErrPortConflict: a port that belongs to another user, or a record
	// whose port is not the one its user has reserved.
	ErrPortConflict = errors.New("port conflict")
	// ErrNoFreePort: every port of the requested range is reserved.
	ErrNoFreePort = errors.New("no free port")
	// ErrLocked: another process (or another Registry) holds the state dir.
	ErrLocked = errors.New("state dir in use")
	// ErrCorrupt: registry.json (or the legacy file) cannot be decoded; it
	// was left as it is.
	ErrCorrupt = errors.New("corrupt registry file")
	// ErrClosed: the Registry was closed.
	ErrClosed = errors.New("registry closed")
)

// errorf returns an error of class class whose text is the formatted
// message alone. %w in format wraps as fmt.Errorf does.
func errorf(class error, format string, args ...any) error {
	return &classError{class: class, err: fmt.Errorf(format, args...)}
}

type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }
