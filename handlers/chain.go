package handlers

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/auditlog"
	"github.com/couchnpm/couchnpm/registry"
)

// chain is the one middleware chain, built once in New around the router,
// outermost first:
//
//	frontDoor    request id and logger, the one ResponseWriter wrapper,
//	             security headers, dot segments refused; in a defer:
//	             panics recovered, one log line and one metrics
//	             observation for every request (mux's 404/405 and panics
//	             included)
//	authenticate credentials resolved once, password checks under the
//	             login limiter lim (middleware.go)
//	recordAudit  writes and refused credentials recorded (auditlog.go)
//	router       gorilla/mux; its only middleware, noteRoute, tells the
//	             front door which route matched (for the metrics label)
func chain(router *mux.Router, log zerolog.Logger, accounts Accounts, audit auditlog.Recorder, obs RequestObserver, lim *loginLimiter) http.Handler {
	router.Use(noteRoute)
	h := http.Handler(router)
	if audit != nil {
		h = recordAudit(audit)(h)
	}
	h = authenticate(accounts, lim)(h)
	return frontDoor(h, log, obs)
}

// exchange is what the chain learns of one request while it is served: the
// answer's status and size (from the ResponseWriter wrapper) and the route
// that matched (from noteRoute).
type exchange struct {
	status int   // the final status sent; 0 = nothing sent yet
	bytes  int64 // body bytes written
	route  *mux.Route
}

type exchangeKey struct{}

// exchangeOf is the request's exchange; nil outside the chain.
func exchangeOf(r *http.Request) *exchange {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	return ex
}

// statusOr is the status sent, or def when the handler has sent nothing
// (net/http then answers 200).
func (ex *exchange) statusOr(def int) int {
	if ex.status == 0 {
		return def
	}
	return ex.status
}

// noteRoute records the matched route; mux runs it only on a match.
func noteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ex := exchangeOf(r); ex != nil {
			ex.route = mux.CurrentRoute(r)
		}
		next.ServeHTTP(w, r)
	})
}

// wrap is the one ResponseWriter wrapper. It records the status and the
// bytes in ex and adds the HTML security headers (htmlSecurityHeaders) as
// the answer starts. httpsnoop keeps the writer's optional interfaces
// (Flusher, Hijacker, io.ReaderFrom, …) and Unwrap for
// http.ResponseController.
func (ex *exchange) wrap(w http.ResponseWriter) http.ResponseWriter {
	begin := func(status int) {
		if ex.status == 0 {
			ex.status = status
			htmlSecurityHeaders(w.Header())
		}
	}
	var wrapped http.ResponseWriter
	wrapped = httpsnoop.Wrap(w, httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				// 1xx are interim (103 Early Hints); the answer follows.
				if code >= 200 || code == http.StatusSwitchingProtocols {
					begin(code)
				}
				next(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				if ex.status == 0 && len(b) > 0 && w.Header().Get("Content-Type") == "" {
					// What net/http would sniff, set before the HTML
					// headers are decided; nosniff makes browsers trust it.
					w.Header().Set("Content-Type", http.DetectContentType(b))
				}
				begin(http.StatusOK)
				n, err := next(b)
				ex.bytes += int64(n)
				return n, err
			}
		},
		ReadFrom: func(next httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
			return func(src io.Reader) (int64, error) {
				if ex.status == 0 && w.Header().Get("Content-Type") == "" {
					// net/http would sniff the type after our headers are
					// decided: go through Write, which sniffs first.
					return io.Copy(writerOnly{wrapped}, src)
				}
				begin(http.StatusOK)
				n, err := next(src)
				ex.bytes += n
				return n, err
			}
		},
		Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
			return func() {
				begin(http.StatusOK)
				next()
			}
		},
	})
	return wrapped
}

// writerOnly hides every method but Write (so io.Copy does not call
// ReadFrom back).
type writerOnly struct{ io.Writer }

// htmlCSP is the Content-Security-Policy of HTML pages that set none of
// their own: no scripts, styles only inline or from here, forms post here.
const htmlCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// htmlSecurityHeaders gives an HTML answer a CSP, X-Frame-Options,
// Referrer-Policy, Cross-Origin-Opener-Policy and Cache-Control no-store,
// each unless the page set its own.
func htmlSecurityHeaders(hdr http.Header) {
	if mt, _, _ := mime.ParseMediaType(hdr.Get("Content-Type")); mt != "text/html" {
		return
	}
	for k, v := range map[string]string{
		"Content-Security-Policy":    htmlCSP,
		"X-Frame-Options":            "DENY",
		"Referrer-Policy":            "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Cache-Control":              "no-store",
	} {
		if hdr.Get(k) == "" {
			hdr.Set(k, v)
		}
	}
}

// frontDoor is the outside of the chain (see chain). Every response says
// X-Content-Type-Options: nosniff, so a browser never runs a tarball or a
// JSON document as HTML or script. A path with a "." or ".." segment, raw
// or percent-encoded ("/pkg/-/..%2f..%2fetc%2fpasswd"), is refused with 400
// before routing: no such path is an npm URL, and mux would otherwise
// answer 301 to a cleaned path. Paths are logged with secrets cut out
// (redactPath); headers never are.
func frontDoor(next http.Handler, base zerolog.Logger, obs RequestObserver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		ex := &exchange{}
		reqLog := base.With().Str("req_id", id).Logger()
		ctx := context.WithValue(reqLog.WithContext(r.Context()), exchangeKey{}, ex)
		r = r.WithContext(ctx)
		w = ex.wrap(w)
		// The context's logger, not a copy: authenticate adds the user to
		// it (UpdateContext) and the request line must carry it.
		log := zerolog.Ctx(ctx)
		defer func() {
			p := recover()
			path := redactPath(r.URL.EscapedPath())
			switch {
			case p == http.ErrAbortHandler: //nolint:errorlint // the sentinel is panicked, not wrapped
				// A response cut short on purpose (a tarball stream that
				// failed verification): log it, then let net/http drop the
				// connection.
				log.Warn().Str("method", r.Method).Str("path", path).
					Int64("bytes", ex.bytes).Str("remote", r.RemoteAddr).Msg("response aborted")
			case p != nil:
				log.Error().Interface("panic", p).Str("path", path).Msg("handler panicked")
				if ex.status == 0 {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error", "reason": "internal error"})
				}
			}
			status := ex.statusOr(http.StatusOK)
			d := time.Since(start)
			if obs != nil {
				obs.ObserveRequest(routeLabel(ex.route), r.Method, status, d)
			}
			if p == http.ErrAbortHandler { //nolint:errorlint // as above
				panic(p)
			}
			ev := log.Info()
			if status >= 500 {
				ev = log.Warn()
			}
			ev.Str("method", r.Method).Str("path", path).
				Int("status", status).Int64("bytes", ex.bytes).
				Float64("duration_ms", float64(d.Microseconds())/1000).
				Str("remote", r.RemoteAddr).Msg("request")
		}()
		if hasDotSegment(r.URL) {
			writeError(w, r, registry.E(registry.KindInvalid, "invalid path: it has a . or .. segment"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hasDotSegment reports whether the path, decoded, has a "." or ".."
// segment.
func hasDotSegment(u *url.URL) bool {
	p := u.EscapedPath()
	if dec, err := url.PathUnescape(p); err == nil {
		p = dec
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
