package registry

import "github.com/zaki-platform/zaki-agent/internal/errdefs"

// The errors the registry returns, tested with errors.Is. Each is also of
// one of the classes of package internal/errdefs (errdefs.Class names it),
// which is how it reaches the API. A write that fails for another reason
// (a full disk, an I/O error) wraps the underlying error instead, so
// errors.Is(err, syscall.ENOSPC) holds for a full disk.
var (
	// ErrInvalid: a user ID, record field or port range the registry
	// refuses.
	ErrInvalid = errdefs.ErrInvalidArgument
	// ErrPortConflict (errdefs.ErrConflict): a port that belongs to another
	// user, or a record whose port is not the one its user has reserved.
	ErrPortConflict = errdefs.Errorf(errdefs.ErrConflict, "port conflict")
	// ErrNoFreePort (errdefs.ErrResourceExhausted): every port of the
	// requested range is reserved.
	ErrNoFreePort = errdefs.Errorf(errdefs.ErrResourceExhausted, "no free port")
	// ErrUIDConflict (errdefs.ErrConflict): a uid that belongs to another
	// user, or a record whose uid is not the one its user has reserved.
	ErrUIDConflict = errdefs.Errorf(errdefs.ErrConflict, "uid conflict")
	// ErrNoFreeUID (errdefs.ErrResourceExhausted): every uid of the
	// requested range is reserved or refused.
	ErrNoFreeUID = errdefs.Errorf(errdefs.ErrResourceExhausted, "no free uid")
	// ErrLocked (errdefs.ErrConflict): another process (or another
	// Registry) holds the state dir.
	ErrLocked = errdefs.Errorf(errdefs.ErrConflict, "state dir in use")
	// ErrCorrupt (errdefs.ErrDataLoss): registry.json (or the legacy file)
	// cannot be decoded; it was left as it is.
	ErrCorrupt = errdefs.Errorf(errdefs.ErrDataLoss, "corrupt registry file")
	// ErrClosed (errdefs.ErrUnavailable): the Registry was closed (the
	// agent is stopping).
	ErrClosed = errdefs.Errorf(errdefs.ErrUnavailable, "registry closed")
)
