package runtime

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// This file is the one place where error classes cross the plugin
// boundary: toStatus on the plugin side, fromStatus on the agent side, and
// the ErrorClass enum of the batch failures both ways. The message of an
// error always travels as it is.

// errorClasses pairs each class with its gRPC code and its enum value.
// context.Canceled travels as a class of its own so that a canceled call
// stays canceled.
var errorClasses = []struct {
	class error
	code  codes.Code
	enum  pb.ErrorClass
}{
	{ErrNotFound, codes.NotFound, pb.ErrorClass_ERROR_CLASS_NOT_FOUND},
	{ErrAlreadyExists, codes.AlreadyExists, pb.ErrorClass_ERROR_CLASS_ALREADY_EXISTS},
	{ErrInvalidArgument, codes.InvalidArgument, pb.ErrorClass_ERROR_CLASS_INVALID_ARGUMENT},
	{ErrUnavailable, codes.Unavailable, pb.ErrorClass_ERROR_CLASS_UNAVAILABLE},
	{ErrTimeout, codes.DeadlineExceeded, pb.ErrorClass_ERROR_CLASS_TIMEOUT},
	{context.Canceled, codes.Canceled, pb.ErrorClass_ERROR_CLASS_CANCELED},
	{ErrConflict, codes.FailedPrecondition, pb.ErrorClass_ERROR_CLASS_CONFLICT},
	{ErrUnimplemented, codes.Unimplemented, pb.ErrorClass_ERROR_CLASS_UNIMPLEMENTED},
}

// classOf returns the class of err for the wire: one of runtime's classes
// (a context deadline counts as ErrTimeout), context.Canceled,
// ErrUnimplemented, or nil.
func classOf(err error) error {
	if c := Class(err); c != nil {
		return c
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	if errors.Is(err, ErrUnimplemented) {
		return ErrUnimplemented
	}
	return nil
}

// toStatus turns an error of the plugin side into a gRPC status error of
// the code of its class (codes.Unknown for none), keeping its message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Unknown
	c := classOf(err)
	for _, ec := range errorClasses {
		if ec.class == c {
			code = ec.code
		}
	}
	return status.Error(code, err.Error())
}

// fromStatus turns the error of a gRPC call made with ctx back into an error
// of runtime's classes, keeping the server's message:
//
//   - each class's code gives that class back; codes.DeadlineExceeded is
//     ErrTimeout and also matches context.DeadlineExceeded;
//   - codes.Canceled stays canceled, unless ctx is alive and conn is shut
//     down: then it is the connection closing under the call,
//     ErrUnavailable;
//   - codes.Unavailable, whether the plugin said it or the connection broke,
//     is ErrUnavailable;
//   - any other code (Unknown, Internal, ...) is an error of no class.
func fromStatus(ctx context.Context, conn *grpc.ClientConn, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err // not from gRPC
	}
	msg := st.Message()
	switch st.Code() {
	case codes.OK:
		return nil
	case codes.DeadlineExceeded:
		return &wireError{msg: msg, is: []error{ErrTimeout, context.DeadlineExceeded}}
	case codes.Canceled:
		if ctx.Err() == nil && conn != nil && conn.GetState() == connectivity.Shutdown {
			return &wireError{msg: "runtime plugin connection closed: " + msg, is: []error{ErrUnavailable}}
		}
		return &wireError{msg: msg, is: []error{context.Canceled}}
	}
	for _, ec := range errorClasses {
		if ec.code == st.Code() {
			return &wireError{msg: msg, is: []error{ec.class}}
		}
	}
	return &wireError{msg: msg}
}

// wireError is an error that crossed the boundary: the other side's message
// and the classes it belongs to.
type wireError struct {
	msg string
	is  []error
}

func (e *wireError) Error() string   { return e.msg }
func (e *wireError) Unwrap() []error { return e.is }

// toFailures lists the per-container failures of a batch error for the
// wire. ok is false when err is not a *BatchError (the call failed as a
// whole and travels as a status).
func toFailures(err error) (failures []*pb.RefFailure, ok bool) {
	var be *BatchError
	if !errors.As(err, &be) {
		return nil, false
	}
	for ref, ferr := range be.Failed {
		enum := pb.ErrorClass_ERROR_CLASS_UNSPECIFIED
		c := classOf(ferr)
		for _, ec := range errorClasses {
			if ec.class == c {
				enum = ec.enum
			}
		}
		failures = append(failures, &pb.RefFailure{Ref: ref, Class: enum, Message: ferr.Error()})
	}
	return failures, true
}

// fromFailures rebuilds the *BatchError of a batch response; nil when no
// container failed.
func fromFailures(failures []*pb.RefFailure) error {
	if len(failures) == 0 {
		return nil
	}
	be := &BatchError{Failed: make(map[string]error, len(failures))}
	for _, f := range failures {
		werr := &wireError{msg: f.GetMessage()}
		for _, ec := range errorClasses {
			if ec.enum == f.GetClass() {
				werr.is = []error{ec.class}
			}
		}
		if f.GetClass() == pb.ErrorClass_ERROR_CLASS_TIMEOUT {
			werr.is = append(werr.is, context.DeadlineExceeded)
		}
		be.Failed[f.GetRef()] = werr
	}
	return be
}
