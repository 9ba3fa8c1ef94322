package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// StatusOf is the one mapping from domain error kinds to HTTP statuses
// (the API's answers and the web UI's pages).
func StatusOf(kind registry.Kind) int {
	switch kind {
	case registry.KindInvalid:
		return http.StatusBadRequest
	case registry.KindUnauthorized, registry.KindOTPRequired:
		return http.StatusUnauthorized
	case registry.KindForbidden:
		return http.StatusForbidden
	case registry.KindNotFound:
		return http.StatusNotFound
	case registry.KindConflict:
		return http.StatusConflict
	case registry.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case registry.KindUnavailable:
		return http.StatusServiceUnavailable
	case registry.KindBadGateway:
		return http.StatusBadGateway
	case registry.KindTooManyRequests:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// writeError renders err as npm expects: a status and {"error", "reason"}.
// npm prints body.error, so it carries the readable message; a 404 keeps
// CouchDB's "not_found" there. Causes are logged, never sent: they may
// name internal hosts.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := registry.KindOf(err)
	status := StatusOf(kind)
	reason := registry.ReasonOf(err)
	noteOf(r).reason = reason // the audit log says what the client was told
	ev := zerolog.Ctx(r.Context()).Debug()
	if status >= 500 {
		ev = zerolog.Ctx(r.Context()).Error()
	}
	ev.Int("status", status).Err(err).Msg("request failed")
	body := map[string]string{"error": reason, "reason": reason}
	switch status {
	case http.StatusNotFound:
		body["error"] = "not_found"
	case http.StatusUnauthorized:
		if kind == registry.KindOTPRequired {
			// npm-registry-fetch turns exactly this challenge into EOTP:
			// npm prompts for a code (on a terminal) or says to pass --otp.
			w.Header().Set("WWW-Authenticate", "OTP")
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="couchnpm", charset="UTF-8"`)
		}
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfter(err)) // ratelimit.go
	}
	writeJSON(w, status, body)
}

// writeJSON sends a small JSON value.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
