package runtime

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// The closed set of error classes a Runtime returns (see package errdefs,
// where they are defined for every layer). Implementations wrap them with
// context (Errorf, or fmt.Errorf with %w); callers test them with
// errors.Is. Each boundary translates them in exactly one place: to gRPC
// codes and back in this package, to HTTP statuses in socketapi.
var (
	ErrNotFound        = errdefs.ErrNotFound
	ErrAlreadyExists   = errdefs.ErrAlreadyExists
	ErrInvalidArgument = errdefs.ErrInvalidArgument
	ErrUnavailable     = errdefs.ErrUnavailable
	ErrTimeout         = errdefs.ErrTimeout
	ErrConflict        = errdefs.ErrConflict
)

// ErrUnimplemented is the error of an optional interface (Cluster) that
// the runtime behind a gRPC client shim does not implement: the plugin
// answered codes.Unimplemented. It is runtime's own, not one of errdefs'
// classes: it never reaches a user, the agent falls back (one local node).
var ErrUnimplemented = errors.New("unimplemented")

// Errorf returns an error of class class whose text is the formatted
// message alone (the class is not repeated in it). %w in format wraps as
// fmt.Errorf does.
func Errorf(class error, format string, args ...any) error {
	return errdefs.Errorf(class, format, args...)
}

// Class returns the class of err (one of the Err* variables), or nil when
// err belongs to none. A context deadline counts as ErrTimeout.
func Class(err error) error { return errdefs.Class(err) }

// UnknownOCIRuntime is the error of a container asking for an OCI runtime
// (ContainerSpec.OCIRuntime) that engine does not know: ErrUnavailable,
// since the host must be set up first (registered with the engine, for
// docker in daemon.json's "runtimes") before any container can run there.
func UnknownOCIRuntime(engine, name string) error {
	return Errorf(ErrUnavailable, "the OCI runtime %q is not registered with %s on this host: register it with the engine (see the README's Runtimes section), or run the instance on a host that has it", name, engine)
}

// BatchError reports the containers of a batch operation (Stop, Remove)
// that failed, by the reference the caller gave. errors.Is sees through it
// to each failure.
type BatchError struct {
	Failed map[string]error
}

func (e *BatchError) Error() string {
	refs := make([]string, 0, len(e.Failed))
	for ref := range e.Failed {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	parts := make([]string, 0, len(refs))
	for _, ref := range refs {
		parts = append(parts, fmt.Sprintf("%s: %v", ref, e.Failed[ref]))
	}
	return fmt.Sprintf("%d of the containers failed: %s", len(refs), strings.Join(parts, "; "))
}

// Unwrap returns the individual failures.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// FailedRefs returns the references that failed in err: all of refs when
// err is not a *BatchError (the call failed as a whole), none when err is
// nil.
func FailedRefs(err error, refs []string) map[string]error {
	if err == nil {
		return nil
	}
	var be *BatchError
	if errors.As(err, &be) {
		return be.Failed
	}
	m := make(map[string]error, len(refs))
	for _, r := range refs {
		m[r] = err
	}
	return m
}
