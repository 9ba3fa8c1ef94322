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
type Error struct {
	Kind   Kind
	Reason string
	Err    error
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

// ReasonOf is the client-facing message of err.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "internal error"
}
