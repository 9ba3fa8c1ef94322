package handlers

import (
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

const corgiType = "application/vnd.npm.install-v1+json"

// packageName reads the package name from the route, accepting both
// "@scope%2fname" and "@scope/name".
func packageName(r *http.Request) (string, error) {
	return packageNameOf(mux.Vars(r)["pkg"])
}

// packageNameOf is the package name written raw in a path (escaped).
func packageNameOf(raw string) (string, error) {
	name, err := url.PathUnescape(raw)
	if err != nil {
		return "", registry.E(registry.KindInvalid, "invalid package name in the URL")
	}
	if err := registry.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

// packageRequest resolves the caller (through who: identity, or
// requireUser for writes) and the package named in the route.
func packageRequest(r *http.Request, who func(*http.Request) (registry.Identity, error)) (registry.Identity, string, error) {
	user, err := who(r)
	if err != nil {
		return user, "", err
	}
	name, err := packageName(r)
	return user, name, err
}

func (s *Server) packument(w http.ResponseWriter, r *http.Request) {
	if s.servePage(w, r) { // a browser: the package page (pages.go)
		return
	}
	s.servePackument(w, r, mux.Vars(r)["pkg"])
}

// servePackument answers GET or HEAD of the packument named raw (as
// written in the path) for an API client: from the router (packument) or
// straight from the chain's fast path (fastpath.go), which never sends a
// request that may be a browser's. It is the warm hit of npm install:
// header values are set under their canonical keys, shared where they are
// constant.
func (s *Server) servePackument(w http.ResponseWriter, r *http.Request, raw string) {
	user, err := identity(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	name, err := packageNameOf(raw)
	if err != nil {
		writeError(w, r, err)
		return
	}
	write := r.URL.RawQuery != "" && r.URL.Query().Get("write") == "true"
	var p *registry.Packument
	if write || headerValue(r.Header, "Npm-Command") == "publish" {
		// Reads before a write (npm publish's version check, the
		// read-modify-write of deprecate, owner, unpublish) concern the
		// private package only: an upstream package of the same name must
		// not leak into them (dependency confusion).
		p, err = s.reg.PackumentForWrite(r.Context(), user, name)
	} else {
		p, err = s.reg.SharedPackument(r.Context(), user, name) // read and rendered only
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	abbreviated := strings.Contains(headerValue(r.Header, "Accept"), corgiType)
	// CouchDB's _rev reaches only those who may write with it: npm's
	// read-modify-write flows (owner reads it without ?write=true).
	withRev := !user.Anonymous() && (write || p.HasMaintainer(user.Name))
	kind := "full"
	if abbreviated {
		kind = "corgi"
	} else if withRev {
		kind = "write"
	}
	etag := `W/"` + p.Rev + "-" + kind + `"`
	h := w.Header()
	h["Etag"] = []string{etag}
	h["Vary"] = varyPackument
	if user.Anonymous() {
		h["Cache-Control"] = publicNoCache
	} else {
		h["Cache-Control"] = privateNoCache
	}
	if m := p.Time["modified"]; m != "" {
		h["X-Modified"] = []string{m}
	}
	if etagMatches(headerValue(r.Header, "If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if abbreviated {
		h["Content-Type"] = corgiContentType
	} else {
		h["Content-Type"] = jsonContentType
	}
	s.writePackument(w, r, p, kind, withRev) // fast path: bodies.go
}

// Shared header values of packument responses (never modified); the
// Cache-Control values are cacheControl's.
var (
	varyPackument    = []string{"Accept, Accept-Encoding, Authorization"}
	publicNoCache    = []string{"public, no-cache"}
	privateNoCache   = []string{"private, no-cache"}
	corgiContentType = []string{corgiType}
	jsonContentType  = []string{"application/json"}
	gzipEncoding     = []string{"gzip"}
)

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	if s.versionPage(w, r) { // a browser: the version page (pages.go)
		return
	}
	user, name, err := packageRequest(r, identity)
	if err != nil {
		writeError(w, r, err)
		return
	}
	spec, err := url.PathUnescape(mux.Vars(r)["version"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid version in the URL"))
		return
	}
	p, err := s.reg.SharedPackument(r.Context(), user, name) // read and rendered only
	if err != nil {
		writeError(w, r, err)
		return
	}
	v, err := registry.ResolveVersion(p, spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	body, err := s.render.Version(p, v)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl(user, "no-cache"))
	w.Header().Set("Vary", "Accept-Encoding")
	writeBody(w, r, body)
}

// tarballFirstChunk is how much of a tarball is read before its status is
// sent (see tarball).
const tarballFirstChunk = 64 << 10

func (s *Server) tarball(w http.ResponseWriter, r *http.Request) {
	user, name, err := packageRequest(r, identity)
	if err != nil {
		writeError(w, r, err)
		return
	}
	file, err := url.PathUnescape(mux.Vars(r)["file"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "invalid file name in the URL"))
		return
	}
	head := r.Method == http.MethodHead
	// A revalidation (If-None-Match) asks for the digest first: known from
	// the packument, it costs no CouchDB request, and a match no body.
	inm := r.Header.Get("If-None-Match")
	t, err := s.reg.Tarball(r.Context(), user, name, file, head || inm != "")
	if err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = octetStream
	// A version's tarball never changes: its number is burned forever.
	if user.Anonymous() {
		h["Cache-Control"] = publicImmutable
	} else {
		h["Cache-Control"] = privateImmutable
	}
	if t.Digest != "" {
		h["Etag"] = []string{`"` + t.Digest + `"`}
		if inm != "" && etagMatches(inm, `"`+t.Digest+`"`) {
			closeTarball(t)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if inm != "" && !head {
		closeTarball(t)
		if t, err = s.reg.Tarball(r.Context(), user, name, file, false); err != nil {
			writeError(w, r, err)
			return
		}
	}
	defer closeTarball(t)
	if t.Size >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(t.Size, 10)}
	}
	if head {
		w.WriteHeader(http.StatusOK)
		return
	}
	if t.Data != nil { // from memory: complete, verified when it was kept
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(t.Data); err == nil {
			s.countDownload(name, file) // downloads.go
		}
		return
	}
	// The first chunk is read before the status goes out, so that a store
	// or upstream that fails early (CouchDB gone, a mirrored download that
	// failed verification) gets a clean 503 or 502 instead of a cut
	// connection; most tarballs fit in it whole.
	first := make([]byte, tarballFirstChunk)
	n, err := io.ReadFull(t.Body, first)
	whole := false
	switch {
	case err == nil: // more follows
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF): // the whole tarball
		whole = true
		if t.Size >= 0 && int64(n) != t.Size {
			writeError(w, r, registry.E(registry.KindUnavailable, "the tarball %s was cut short (%d of %d bytes); retry", file, n, t.Size))
			return
		}
	default:
		if registry.KindOf(err) == registry.KindInternal {
			err = registry.Wrap(registry.KindUnavailable, err, "the tarball %s could not be read; retry", file)
		}
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(first[:n]); err != nil {
		return // the client went away
	}
	if whole {
		// Done: reading the finished body again could only fail (the
		// store's connection gone) and cut a response already complete.
		s.countDownload(name, file) // downloads.go
		return
	}
	if n, err := io.Copy(w, t.Body); err != nil {
		zerolog.Ctx(r.Context()).Warn().Int64("sent", n).Err(err).Msg("tarball stream broke")
		// Cut the connection: a short body must never look complete (a
		// streamed upstream tarball that failed verification ends here).
		panic(http.ErrAbortHandler)
	}
	s.countDownload(name, file) // downloads.go
}

// Shared header values of tarball responses (never modified).
var (
	octetStream      = []string{"application/octet-stream"}
	publicImmutable  = []string{"public, max-age=31536000, immutable"}
	privateImmutable = []string{"private, max-age=31536000, immutable"}
)

func closeTarball(t *registry.Tarball) {
	if t.Body != nil {
		t.Body.Close()
		t.Body = nil
	}
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	user, name, err := packageRequest(r, requireUser)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := checkJSONContentType(r); err != nil {
		writeError(w, r, err)
		return
	}
	if r.ContentLength > s.cfg.MaxPublishBytes {
		// Refuse before reading a byte; the server closes the connection
		// rather than draining an oversized body.
		w.Header().Set("Connection", "close")
		writeError(w, r, registry.E(registry.KindTooLarge, "the publish body is %d bytes; this registry accepts at most %d", r.ContentLength, s.cfg.MaxPublishBytes))
		return
	}
	update, err := registry.DecodeUpdateBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxPublishBytes))
	if err != nil {
		if registry.IsKind(err, registry.KindTooLarge) {
			w.Header().Set("Connection", "close")
		}
		writeError(w, r, err)
		return
	}
	// command surface: without tarballs this is deprecate, star, owner or
	// a single-version unpublish, not a publish.
	if !update.IsPublish() {
		classifyUpdate(noteOf(r), r, update) // auditlog.go
		s.update(w, r, user, name, update)
		return
	}
	body := &update.PublishBody
	noteOf(r).target = versionList(body.Versions)
	if body.Access == nil { // npm ≥ 11 sends null unless --access is given
		access := s.cmds.DefaultAccess()
		body.Access = &access
	}
	if err := s.reg.Publish(r.Context(), user, name, body); err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("pkg", name).Int("versions", len(body.Versions)).Msg("published")
	writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "id": name, "success": true})
}

func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return registry.E(registry.KindInvalid, "expected a JSON body (Content-Type application/json), got %q", ct)
	}
	return nil
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == want {
			return true
		}
	}
	return false
}

// gzipMin is the size below which compressing costs more than it saves.
const gzipMin = 1024

// writeBody sends a prepared body, gzipped when the client accepts it.
func writeBody(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(body) >= gzipMin && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		gz := gzip.NewWriter(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0 // -1: not named
	// strings.Cut, not strings.Split: no allocation on the packument hot
	// path.
	for rest, more := header, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		enc, params, _ := strings.Cut(part, ";")
		q := 1.0
		for params != "" {
			var param string
			param, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				var err error
				if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || !(q >= 0 && q <= 1) {
					q = 0 // a malformed weight accepts nothing
				}
			}
		}
		switch enc = strings.TrimSpace(enc); {
		case strings.EqualFold(enc, "gzip"):
			gzipQ = max(gzipQ, q)
		case enc == "*":
			starQ = max(starQ, q)
		}
	}
	if gzipQ >= 0 { // an explicit gzip wins over "*"
		return gzipQ > 0
	}
	return starQ > 0
}

// cacheControl marks answers to authenticated requests private: they may
// be restricted packages, which a shared cache must never hand to anyone
// else. Anonymous callers only ever see public packages.
func cacheControl(user registry.Identity, directives string) string {
	if user.Anonymous() {
		return "public, " + directives
	}
	return "private, " + directives
}
