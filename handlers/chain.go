package handlers

import (
	"bufio"
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

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
//	fast         GET /{pkg} without the router's search (fastpath.go);
//	             nil: none
//	router       gorilla/mux; its only middleware, noteRoute, tells the
//	             front door which route matched (for the metrics label)
func chain(router *mux.Router, fast *packumentFastPath, log zerolog.Logger, accounts Accounts, audit auditlog.Recorder, obs RequestObserver, lim *loginLimiter) http.Handler {
	router.Use(noteRoute)
	h := http.Handler(router)
	if fast != nil {
		fast.next = router
		h = fast
	}
	if audit != nil {
		h = recordAudit(audit)(h)
	}
	h = authenticate(accounts, lim)(h)
	return frontDoor(h, log, routeLabels(router, obs))
}

// exchange is what the chain learns of one request while it is served: the
// answer's status and size (from the ResponseWriter wrapper), the route
// that matched (from noteRoute or the fast path), who the caller is (from
// authenticate) and the audit note (from recordAudit). One context value
// holds it all: each context value costs a copy of the request.
type exchange struct {
	status int   // the final status sent; 0 = nothing sent yet
	bytes  int64 // body bytes written
	route  *mux.Route
	auth   authResult // middleware.go
	note   *auditNote // auditlog.go; nil: the audit log is off
	rec    recorder   // the ResponseWriter wrapper, allocated with the exchange
}

type exchangeKey struct{}

// exchangeOf is the request's exchange; nil outside the chain.
func exchangeOf(r *http.Request) *exchange {
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	return ex
}

// withExchange is r and its exchange, one added when r has none (a
// middleware used outside frontDoor, in tests).
func withExchange(r *http.Request) (*http.Request, *exchange) {
	if ex := exchangeOf(r); ex != nil {
		return r, ex
	}
	ex := &exchange{}
	return r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)), ex
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

// recorder is the one ResponseWriter wrapper (frontDoor puts it around
// every answer). It records the status and the bytes in its exchange and
// adds the HTML security headers (htmlSecurityHeaders) as the answer
// starts. It lives inside the exchange: one allocation per request for
// both, and no closures (a per-request hook wrapper such as httpsnoop
// allocated a dozen times per request on the packument hot path).
//
// It offers the optional interfaces couchnpm's handlers use — Flusher,
// Hijacker and io.ReaderFrom (sendfile-capable streaming of tarballs) —
// over any writer: each goes to the wrapped writer's own when it has one
// (Hijack and Flush through http.ResponseController, so a writer that
// cannot answers http.ErrNotSupported or does nothing), and Unwrap lets
// http.ResponseController reach the rest (deadlines, full duplex).
type recorder struct {
	w  http.ResponseWriter
	ex *exchange
}

// wrap makes ex the recorder of w's answer.
func (ex *exchange) wrap(w http.ResponseWriter) http.ResponseWriter {
	ex.rec = recorder{w: w, ex: ex}
	return &ex.rec
}

// begin notes the answer's status once, as it starts.
func (rec *recorder) begin(status int) {
	if rec.ex.status == 0 {
		rec.ex.status = status
		htmlSecurityHeaders(rec.w.Header())
	}
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

// Unwrap is for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

func (rec *recorder) WriteHeader(code int) {
	// 1xx are interim (103 Early Hints); the answer follows.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		rec.begin(code)
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.ex.status == 0 && len(b) > 0 {
		if h := rec.w.Header(); noContentType(h) {
			// What net/http would sniff, set before the HTML headers are
			// decided; nosniff makes browsers trust it.
			h.Set("Content-Type", http.DetectContentType(b))
		}
	}
	rec.begin(http.StatusOK)
	n, err := rec.w.Write(b)
	rec.ex.bytes += int64(n)
	return n, err
}

func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := rec.w.(io.ReaderFrom)
	if !ok || (rec.ex.status == 0 && noContentType(rec.w.Header())) {
		// net/http would sniff the type after our headers are decided:
		// go through Write, which sniffs first.
		return io.Copy(writerOnly{rec}, src)
	}
	rec.begin(http.StatusOK)
	n, err := rf.ReadFrom(src)
	rec.ex.bytes += n
	return n, err
}

func (rec *recorder) Flush() {
	rec.begin(http.StatusOK)
	_ = http.NewResponseController(rec.w).Flush()
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rec.w).Hijack()
}

// noContentType is h.Get("Content-Type") == "" without canonicalizing the
// key on every write.
func noContentType(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) == 0 || ct[0] == ""
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
	ct := hdr["Content-Type"]
	if len(ct) == 0 || !mentionsHTML(ct[0]) { // no need to parse (the packument hot path)
		return
	}
	if mt, _, _ := mime.ParseMediaType(ct[0]); mt != "text/html" {
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
	labels, _ := obs.(*labelledObserver)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := headerValue(r.Header, "X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		// Canonical keys set directly: Header.Set would canonicalize them
		// on every request (the packument hot path).
		h := w.Header()
		h["X-Request-Id"] = []string{id}
		h["X-Content-Type-Options"] = nosniff
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
			if labels != nil {
				labels.observe(ex.route, r.Method, status, d)
			} else if obs != nil {
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

// nosniff is the shared value of X-Content-Type-Options (never modified).
var nosniff = []string{"nosniff"}

// hasDotSegment reports whether the path, decoded, has a "." or ".."
// segment. It scans without allocating: the path is decoded only when it
// has a % in it.
func hasDotSegment(u *url.URL) bool {
	p := u.EscapedPath()
	if strings.IndexByte(p, '%') >= 0 {
		if dec, err := url.PathUnescape(p); err == nil {
			p = dec
		}
	}
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
