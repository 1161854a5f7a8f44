package socketapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

// The error classes of the API, tested with errors.Is. The first
// thirteen are the agent's own (package internal/errdefs); the others arise in the
// API layer alone. The agent's errdefs.ErrDataLoss (a corrupt file of its
// own) is answered as internal.
var (
	ErrNotFound          = errdefs.ErrNotFound
	ErrAlreadyExists     = errdefs.ErrAlreadyExists
	ErrInvalidArgument   = errdefs.ErrInvalidArgument
	ErrUnavailable       = errdefs.ErrUnavailable
	ErrTimeout           = errdefs.ErrTimeout
	ErrConflict          = errdefs.ErrConflict
	ErrResourceExhausted = errdefs.ErrResourceExhausted
	ErrInstanceFailed    = errdefs.ErrInstanceFailed
	// ErrForbidden: the caller's uid/gid is not allowed, the request came
	// from a browser (Origin or Referer header), or the image is not one
	// of the allowed.
	ErrForbidden       = errdefs.ErrForbidden
	ErrPullFailed      = errdefs.ErrPullFailed
	ErrTooManyRequests = errdefs.ErrTooManyRequests
	// ErrQuotaExceeded: the user's data is over instance.dataQuota; the
	// instance is stopped (data kept) until it is under.
	ErrQuotaExceeded = errdefs.ErrQuotaExceeded
	// ErrNodeUnavailable: with a cluster runtime, the node the user is
	// pinned to (where its data lives) is not ready; retry once it is
	// back: the instance is never made on another node.
	ErrNodeUnavailable = errdefs.ErrNodeUnavailable
	// ErrTooLarge: the request body is larger than the agent accepts.
	ErrTooLarge = errors.New("too large")
	// ErrMethodNotAllowed: the path exists, the method does not.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrInternal: anything else the agent failed at.
	ErrInternal = errors.New("internal error")
)

// The error codes of the API's error body, one per class.
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeForbidden          = "forbidden"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeConflict           = "conflict"
	CodeTooLarge           = "too_large"
	CodeRuntimeUnavailable = "runtime_unavailable"
	CodeResourceExhausted  = "resource_exhausted"
	CodeInstanceFailed     = "instance_failed"
	CodePullFailed         = "pull_failed"
	CodeTooManyRequests    = "too_many_requests"
	CodeQuotaExceeded      = "quota_exceeded"
	CodeNodeUnavailable    = "node_unavailable"
	CodeTimeout            = "timeout"
	CodeInternal           = "internal"
)

// errorKind ties a class to its code and HTTP status: the one table both
// the server and the client translate with. Two classes share "conflict"
// (the wire does not tell them apart: the client's error is of both), and
// three share 503, told apart by their codes: runtime_unavailable passes
// (retry), resource_exhausted lasts until someone widens the port range
// or frees disk space (place the user on another host), node_unavailable
// lasts until the node the user is pinned to is back.
type errorKind struct {
	class  error
	code   string
	status int
}

var errorKinds = []errorKind{
	{ErrInvalidArgument, CodeInvalidArgument, http.StatusBadRequest},
	{ErrForbidden, CodeForbidden, http.StatusForbidden},
	{ErrNotFound, CodeNotFound, http.StatusNotFound},
	{ErrMethodNotAllowed, CodeMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrAlreadyExists, CodeConflict, http.StatusConflict},
	{ErrConflict, CodeConflict, http.StatusConflict},
	{ErrTooLarge, CodeTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnavailable, CodeRuntimeUnavailable, http.StatusServiceUnavailable},
	{ErrResourceExhausted, CodeResourceExhausted, http.StatusServiceUnavailable},
	{ErrNodeUnavailable, CodeNodeUnavailable, http.StatusServiceUnavailable},
	{ErrTooManyRequests, CodeTooManyRequests, http.StatusTooManyRequests},
	{ErrQuotaExceeded, CodeQuotaExceeded, http.StatusInsufficientStorage},
	{ErrInstanceFailed, CodeInstanceFailed, http.StatusBadGateway},
	{ErrPullFailed, CodePullFailed, http.StatusBadGateway},
	{ErrTimeout, CodeTimeout, http.StatusGatewayTimeout},
	{ErrInternal, CodeInternal, http.StatusInternalServerError},
}

// ErrorBody is the body of every error response:
// {"error": {"code": "not_found", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error the API answered with. It matches its class with
// errors.Is (errors.Is(err, socketapi.ErrNotFound)), and its text is the
// agent's message.
type Error struct {
	Status  int    // HTTP status
	Code    string // one of the Code* constants (or an unknown code from a newer agent)
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error's classes.
func (e *Error) Unwrap() []error { return classesOfCode(e.Code, e.Status) }

// Errorf returns an error of class class whose text is the formatted
// message; %w wraps as fmt.Errorf does.
func Errorf(class error, format string, args ...any) error {
	return errdefs.Errorf(class, format, args...)
}

// HTTPError translates err for the wire: its status and its body. An
// error of no known class is internal.
func HTTPError(err error) (status int, body ErrorBody) {
	k := kindOf(err)
	msg := "internal error"
	if err != nil {
		msg = err.Error()
	}
	return k.status, ErrorBody{Error: ErrorDetail{Code: k.code, Message: msg}}
}

func kindOf(err error) errorKind {
	// errdefs knows the order among its own classes (a deadline is a
	// timeout); the API's classes come after.
	if c := errdefs.Class(err); c != nil {
		for _, k := range errorKinds {
			if k.class == c {
				return k
			}
		}
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.class) {
			return k
		}
	}
	return errorKinds[len(errorKinds)-1]
}

// ClassOfCode returns the class of an error code, falling back on the
// HTTP status for a code it does not know. For "conflict" it is
// ErrAlreadyExists; the client's *Error is of ErrConflict too.
func ClassOfCode(code string, status int) error { return classesOfCode(code, status)[0] }

// classesOfCode is the one translation back from the wire: the classes
// of an error code, or for a code it does not know (a newer agent's) the
// first class of the status.
func classesOfCode(code string, status int) []error {
	var cs []error
	for _, k := range errorKinds {
		if k.code == code {
			cs = append(cs, k.class)
		}
	}
	if len(cs) > 0 {
		return cs
	}
	return []error{kindOfStatus(status).class}
}

// kindOfStatus returns the first kind of an HTTP status (internal for an
// unknown one).
func kindOfStatus(status int) errorKind {
	for _, k := range errorKinds {
		if k.status == status {
			return k
		}
	}
	return errorKinds[len(errorKinds)-1]
}

// StatusOfCode returns the HTTP status of an error code (500 for an
// unknown one).
func StatusOfCode(code string) int {
	for _, k := range errorKinds {
		if k.code == code {
			return k.status
		}
	}
	return http.StatusInternalServerError
}

// Codes lists every error code with its HTTP status, as documented.
func Codes() map[string]int {
	m := make(map[string]int, len(errorKinds))
	for _, k := range errorKinds {
		m[k.code] = k.status
	}
	return m
}

// errorFromResponse builds the client's error from a status and body.
func errorFromResponse(status int, body []byte, decode func([]byte, any) error) error {
	var eb ErrorBody
	if err := decode(body, &eb); err == nil && eb.Error.Code != "" {
		return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	// Not our error body (a proxy, a bug): keep what we can.
	code := kindOfStatus(status).code
	msg := fmt.Sprintf("unexpected response %d %s", status, http.StatusText(status))
	if len(body) > 0 && len(body) < 512 {
		msg += ": " + string(body)
	}
	return &Error{Status: status, Code: code, Message: msg}
}
