package registry

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the client. Each kind maps to exactly one HTTP
// status in the handlers package.
type Kind int

const (
	KindInternal        Kind = iota // a bug or an unexpected state
	KindInvalid                     // the request is malformed or breaks a rule
	KindUnauthorized                // no or bad credentials
	KindForbidden                   // authenticated but not allowed
	KindNotFound                    // no such package, version, user or file
	KindConflict                    // a concurrent change won; retrying may help
	KindTooLarge                    // a body over the configured limit
	KindUnavailable                 // CouchDB (or the upstream) cannot be reached
	KindBadGateway                  // the upstream answered with something unusable
	KindTooManyRequests             // too many failed attempts (login rate limit); retry later
	KindOTPRequired                 // a one-time password (two-factor) is missing or wrong
)

// Error is a domain error: a kind, a message meant for the client, and the
// cause (kept for logs, never shown to clients).
//
// Public, when set, is what clients are told instead of Reason: Reason then
// holds detail only the operator may see (CouchDB's internal address, its
// own error texts). Logs and the operator's own commands use Reason
// (Error, DetailOf); answers to clients use ReasonOf.
type Error struct {
	Kind   Kind
	Reason string
	Err    error
	Public string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a domain error with a formatted reason.
func E(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Wrap builds a domain error that keeps err as its cause.
func Wrap(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err}
}

// KindOf reports the kind of err: the outermost *Error's kind, or
// KindInternal for anything else.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is a domain error of kind k.
func IsKind(err error, k Kind) bool {
	return err != nil && KindOf(err) == k
}

// ReasonOf is the client-facing message of err: never an internal address.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Public != "" {
			return e.Public
		}
		return e.Reason
	}
	return "internal error"
}

// DetailOf is the operator-facing message of err: Reason including what
// clients are not told. For logs and the operator's own commands (serve,
// doctor, user, …), never for an HTTP answer.
func DetailOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "internal error"
}

// WrapDetail builds a domain error whose reason is for the operator only;
// clients are told public instead.
func WrapDetail(kind Kind, err error, public string, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err, Public: public}
}
