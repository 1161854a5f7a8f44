// Package errdefs holds the small closed set of error classes shared by
// every layer of zaki-agent: the runtime plugins, the agent, the socket API
// and its client. Errors are wrapped with context where they arise and
// tested with errors.Is; each boundary translates the classes in exactly one
// place (gRPC codes in package runtime, HTTP statuses in package socketapi,
// and back to these sentinels in the client). Packages re-export them
// (runtime.ErrNotFound is errdefs.ErrNotFound), so that callers outside this
// module can test them too.
package errdefs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// The error classes.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrUnavailable     = errors.New("unavailable")
	ErrTimeout         = errors.New("timeout")
	// ErrConflict: the request clashes with what the host holds (a port
	// another user has, a container name taken by a container the agent
	// does not manage); retrying does not help until someone resolves it.
	ErrConflict = errors.New("conflict")
	// ErrResourceExhausted: the host has run out of something the request
	// needs (every port of the range is reserved, the disk is full);
	// another host may have it, this one will not until someone acts.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrDataLoss: state the agent keeps on disk cannot be read (a corrupt
	// file); an operator must repair or restore it.
	ErrDataLoss = errors.New("data loss")
	// ErrInstanceFailed: the user's container itself failed (it exited, or
	// was killed for memory, before it became ready): its image or its
	// spec is at fault, not the agent nor the engine; its logs say why.
	ErrInstanceFailed = errors.New("instance failed")
	// ErrForbidden: the caller may not do this (an image outside the
	// allowed ones, a caller's uid not allowed).
	ErrForbidden = errors.New("forbidden")
	// ErrPullFailed: the engine could not pull an image (no such image in
	// the registry, the registry unreachable or refusing); the engine's
	// reason is in the message.
	ErrPullFailed = errors.New("pull failed")
	// ErrTooManyRequests: the caller already runs as many of these at
	// once as allowed (execs); retry when one ends.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrQuotaExceeded: the user's data takes more disk space than its
	// quota allows; the instance is not run until it takes less.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrNodeUnavailable: the node a user is pinned to (with a cluster
	// runtime: its data lives there) is not ready; the instance is not
	// made on another node, and runs again once its node is back.
	ErrNodeUnavailable = errors.New("node unavailable")
)

// classes lists the error classes, most specific first.
var classes = []error{
	ErrInvalidArgument, ErrForbidden, ErrPullFailed, ErrNotFound, ErrAlreadyExists, ErrConflict,
	ErrTooManyRequests, ErrQuotaExceeded, ErrNodeUnavailable, ErrResourceExhausted, ErrDataLoss, ErrInstanceFailed, ErrTimeout, ErrUnavailable,
}

// Errorf returns an error of class class whose text is the formatted
// message alone (the class is not repeated in it). %w in format wraps as
// fmt.Errorf does.
func Errorf(class error, format string, args ...any) error {
	return &classError{class: class, err: fmt.Errorf(format, args...)}
}

type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

// Class returns the class of err (one of the Err* variables), or nil when
// err belongs to none. A context deadline counts as ErrTimeout, and a full
// file system or quota (ENOSPC, EDQUOT) as ErrResourceExhausted: the host
// ran out of disk, which is no fault of the agent's.
func Class(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range classes {
		if errors.Is(err, c) {
			return c
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return ErrResourceExhausted
	}
	return nil
}
