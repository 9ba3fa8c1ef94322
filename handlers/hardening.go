package handlers

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// htmlCSP is the Content-Security-Policy of HTML pages that set none of
// their own: no scripts, styles only inline or from here, forms post here.
const htmlCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// harden wraps the whole handler (mux's redirects and 404s included):
//   - every response says X-Content-Type-Options: nosniff, so a browser
//     never runs a tarball or JSON document as HTML or script;
//   - HTML responses get a CSP, X-Frame-Options, Referrer-Policy,
//     Cross-Origin-Opener-Policy and Cache-Control no-store, each unless
//     the page set its own;
//   - a path with a "." or ".." segment, raw or percent-encoded
//     ("/pkg/-/..%2f..%2fetc%2fpasswd"), is refused with 400 before
//     routing: no such path is an npm URL, and mux would otherwise answer
//     301 to a cleaned path;
func harden(next http.Handler, log zerolog.Logger) http.Handler {
	badPath := logRequests(log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid path: it has a . or .. segment"))
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w = &htmlHeaders{ResponseWriter: w}
		if hasDotSegment(r.URL) {
			badPath.ServeHTTP(w, r)
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

// htmlHeaders adds the HTML security headers when an HTML response starts.
type htmlHeaders struct {
	http.ResponseWriter
	done bool
}

func (h *htmlHeaders) WriteHeader(status int) {
	if !h.done {
		h.done = true
		hdr := h.Header()
		if mt, _, _ := mime.ParseMediaType(hdr.Get("Content-Type")); mt == "text/html" {
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
	}
	h.ResponseWriter.WriteHeader(status)
}

func (h *htmlHeaders) Write(b []byte) (int, error) {
	if !h.done {
		if len(b) > 0 && h.Header().Get("Content-Type") == "" {
			// What net/http would sniff; nosniff makes browsers trust it.
			h.Header().Set("Content-Type", http.DetectContentType(b))
		}
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (h *htmlHeaders) Unwrap() http.ResponseWriter { return h.ResponseWriter }
