package handlers

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/mux"

	"github.com/couchnpm/couchnpm/registry"
)

// Pages is the web UI (package web): HTML for browsers at / and /<name>,
// and everything under /-/web/. The handlers resolve the caller; the pages
// read through the registry with that identity.
type Pages interface {
	Home(w http.ResponseWriter, r *http.Request, user registry.Identity)
	Package(w http.ResponseWriter, r *http.Request, user registry.Identity, name string)
	ServeWeb(w http.ResponseWriter, r *http.Request, user registry.Identity)
	// Login shows the log-in form (or the log-out confirmation).
	Login(w http.ResponseWriter, r *http.Request, user registry.Identity, page LoginPage)
	// Tokens shows the logged-in user's tokens page (webtokens.go).
	Tokens(w http.ResponseWriter, r *http.Request, user registry.Identity, page TokensPage)
}

// wantsHTML reports whether the request prefers HTML to JSON: a browser's
// Accept names text/html with a weight at least that of any JSON type.
// npm, pnpm and yarn never name text/html ("*/*" does not count), so they
// keep getting the packument.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if v, ok := acceptVerdicts.Load(accept); ok {
		return v.(bool)
	}
	html := acceptsHTML(accept)
	// Clients send a handful of Accept values: each is parsed once. A
	// flood of distinct ones stops being kept, never grows the map.
	if len(accept) <= maxAcceptKept && acceptVerdictsKept.Add(1) <= maxAcceptVerdicts {
		acceptVerdicts.Store(accept, html)
	}
	return html
}

// acceptVerdicts remembers acceptsHTML by Accept value: every GET of a
// package (npm's included) asks, and parsing the media types allocated
// half as much again as the rest of a warm anonymous page.
var (
	acceptVerdicts     sync.Map // Accept value → bool
	acceptVerdictsKept atomic.Int64
)

// Bounds of acceptVerdicts: values kept, and the longest value kept.
const (
	maxAcceptVerdicts = 256
	maxAcceptKept     = 512
)

// acceptsHTML is wantsHTML's rule on an Accept value.
func acceptsHTML(accept string) bool {
	var html, json float64
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		switch {
		case mt == "text/html" || mt == "application/xhtml+xml":
			html = max(html, q)
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			json = max(json, q)
		}
	}
	return html > 0 && html >= json
}

// servePage answers a package route with its page when a browser asks for
// one; false leaves the request to the API handler.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Pages == nil || !wantsHTML(r) {
		return false
	}
	user, name, err := packageRequest(r, func(r *http.Request) (registry.Identity, error) { return s.pageIdentity(w, r) })
	if err != nil {
		writeError(w, r, err)
		return true
	}
	s.cfg.Pages.Package(w, r, user, name)
	return true
}

// pageUser is the start of every web page handler: 404 without the web
// UI, else the browser's user (its session cookie). ok false: the answer
// is written.
func (s *Server) pageUser(w http.ResponseWriter, r *http.Request) (user registry.Identity, ok bool) {
	if s.cfg.Pages == nil {
		s.notFound(w, r)
		return user, false
	}
	user, err := s.pageIdentity(w, r)
	if err != nil {
		writeError(w, r, err)
		return user, false
	}
	return user, true
}

// home is GET /: the home page for browsers, 404 for everyone else.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if !wantsHTML(r) {
		s.notFound(w, r)
		return
	}
	if user, ok := s.pageUser(w, r); ok {
		s.cfg.Pages.Home(w, r, user)
	}
}

// webPages serves /-/web/… (search, version pages, static files).
func (s *Server) webPages(w http.ResponseWriter, r *http.Request) {
	if user, ok := s.pageUser(w, r); ok {
		s.cfg.Pages.ServeWeb(w, r, user)
	}
}

// versionPage sends a browser asking for /<name>/<version> to that
// version's page; false leaves the request to the API handler.
func (s *Server) versionPage(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Pages == nil || !wantsHTML(r) {
		return false
	}
	name, err := packageName(r)
	if err != nil {
		writeError(w, r, err)
		return true
	}
	version, err := url.PathUnescape(mux.Vars(r)["version"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid version in the URL"))
		return true
	}
	// Each part escaped: the redirect stays on this site.
	target := "/-/web/package/" + url.PathEscape(name) + "/v/" + url.PathEscape(version)
	if scope, pkg, ok := strings.Cut(name, "/"); ok {
		target = "/-/web/package/" + url.PathEscape(scope) + "/" + url.PathEscape(pkg) + "/v/" + url.PathEscape(version)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return true
}
