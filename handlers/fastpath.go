package handlers

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// packumentFastPath routes the hottest request, GET or HEAD /{pkg} (npm
// install's packument reads), without the router: gorilla/mux tries every
// route's regular expression in turn and copies the request twice to hand
// over its variables, which was about a tenth of a warm packument hit's CPU
// time. It sits where the router sits in the chain (inside frontDoor,
// authenticate and recordAudit), so logging, metrics, authentication,
// audit and the access rules (the registry's, on every read) are the same
// as for a routed request; the request counts under the router's own
// packument route.
//
// It takes only what the router would send to that route: the method is
// GET or HEAD and the escaped path is exactly "/" followed by what pkgVar
// matches (packumentPath, kept equal to the router by
// TestPackumentFastPathRoutesAsTheRouter). Everything else — other routes,
// a browser's Accept (the package page reads the router's variables),
// paths mux would clean and redirect — goes to the router.
type packumentFastPath struct {
	route *mux.Route // the router's GET /{pkg} route: its metrics label
	serve func(w http.ResponseWriter, r *http.Request, rawName string)
	next  http.Handler // the router
}

func (f *packumentFastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if raw, ok := f.match(r); ok {
		if ex := exchangeOf(r); ex != nil {
			ex.route = f.route
		}
		f.serve(w, r, raw)
		return
	}
	f.next.ServeHTTP(w, r)
}

// match is the package name as it stands in the path (escaped) when the
// fast path takes r.
func (f *packumentFastPath) match(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	if mentionsHTML(headerValue(r.Header, "Accept")) { // perhaps a browser: servePage needs mux.Vars
		return "", false
	}
	return packumentPath(r.URL.EscapedPath())
}

// packumentPath reports whether the router routes the escaped path p to
// "/"+pkgVar, and the variable's value: an unscoped name ([^/@][^/]*) or a
// scoped one (@[^/%]+ then / or %2f or %2F, then [^/]+), in a clean path
// (the router redirects a path with a "." or ".." segment to its cleaned
// form; frontDoor refuses those before anyway).
func packumentPath(p string) (string, bool) {
	if len(p) < 2 || p[0] != '/' {
		return "", false
	}
	name := p[1:]
	if name[0] != '@' {
		if name[0] == '/' || strings.IndexByte(name, '/') >= 0 || name == "." || name == ".." {
			return "", false
		}
		return name, true
	}
	sep := strings.IndexAny(name[1:], "/%") + 1 // the scope ends at the first / or %
	if sep <= 1 {                               // an empty scope, or no separator at all
		return "", false
	}
	rest := name[sep:]
	switch {
	case rest[0] == '/':
		rest = rest[1:]
		if rest == "." || rest == ".." { // a dot segment
			return "", false
		}
	case len(rest) >= 3 && rest[1] == '2' && (rest[2] == 'f' || rest[2] == 'F'):
		rest = rest[3:]
	default:
		return "", false
	}
	if rest == "" || strings.IndexByte(rest, '/') >= 0 {
		return "", false
	}
	return name, true
}

// mentionsHTML reports whether an Accept header names anything with
// "html" in it (case-insensitive); without that wantsHTML is false, so the
// request is no page request (text/html and application/xhtml+xml both
// contain it, and media types are compared lower-cased).
func mentionsHTML(accept string) bool {
	for i := 0; i+4 <= len(accept); i++ {
		if accept[i]|0x20 == 'h' && accept[i+1]|0x20 == 't' && accept[i+2]|0x20 == 'm' && accept[i+3]|0x20 == 'l' {
			return true
		}
	}
	return false
}

// headerValue is h.Get(key) for a key already in canonical form (a
// constant): Get would canonicalize it again on every request.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
