package handlers

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestGetPackumentFull(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "GET", "/foo", nil, "Accept: application/json")
	wantStatus(t, rec, http.StatusOK)
	h := rec.Header()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if v := h.Get("Vary"); v != "Accept, Accept-Encoding, Authorization" {
		t.Errorf("Vary = %q", v)
	}
	if et := h.Get("ETag"); et != `W/"3-abc-full"` {
		t.Errorf("ETag = %q", et)
	}
	if h.Get("Content-Encoding") != "" {
		t.Errorf("gzip without Accept-Encoding")
	}
	if cl := h.Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length = %q, body %d bytes", cl, rec.Body.Len())
	}
	body := decodeJSON(t, rec)
	// Whether a plain read carries _rev is the handler's choice (the
	// command surface needs it); CouchDB's attachments never leak.
	if _, ok := body["_attachments"]; ok {
		t.Errorf("_attachments rendered")
	}
	if body["readme"] != longReadme || body["description"] != "a foo" {
		t.Errorf("root fields missing from the full packument")
	}
	v1 := body["versions"].(map[string]any)["1.0.0"].(map[string]any)
	if got := v1["dist"].(map[string]any)["tarball"]; got != publicURL+"/foo/-/foo-1.0.0.tgz" {
		t.Errorf("dist.tarball = %v", got)
	}
	if _, ok := v1["scripts"]; !ok {
		t.Errorf("full manifest lost scripts")
	}
}

func TestGetPackumentWrite(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	anon := e.do(t, "GET", "/foo?write=true", nil)
	wantStatus(t, anon, http.StatusOK)
	if rev, ok := decodeJSON(t, anon)["_rev"]; ok {
		t.Errorf("_rev = %v sent to an anonymous caller", rev)
	}
	if got := e.reg.localReads(); got != 1 {
		t.Errorf("?write=true read the mirror too (local reads %d, want 1)", got)
	}
	rec := e.do(t, "GET", "/foo?write=true", nil, "Authorization: Bearer cnpm_alice")
	wantStatus(t, rec, http.StatusOK)
	if rev := decodeJSON(t, rec)["_rev"]; rev != "3-abc" {
		t.Errorf("_rev = %v, want 3-abc with ?write=true", rev)
	}
	if et := rec.Header().Get("ETag"); et != `W/"3-abc-write"` {
		t.Errorf("ETag = %q", et)
	}
}

func TestGetPackumentCorgi(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "GET", "/foo", nil, "Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "application/vnd.npm.install-v1+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if et := rec.Header().Get("ETag"); et != `W/"3-abc-corgi"` {
		t.Errorf("ETag = %q", et)
	}
	if v := rec.Header().Get("Vary"); !strings.Contains(v, "Accept") {
		t.Errorf("Vary = %q: the body depends on Accept", v)
	}
	body := decodeJSON(t, rec)
	if got, want := sortedKeys(body), []string{"dist-tags", "modified", "name", "versions"}; !reflect.DeepEqual(got, want) {
		t.Errorf("corgi keys = %v, want %v", got, want)
	}
	v1 := body["versions"].(map[string]any)["1.0.0"].(map[string]any)
	if got, want := sortedKeys(v1), []string{"dependencies", "dist", "name", "version"}; !reflect.DeepEqual(got, want) {
		t.Errorf("corgi version keys = %v, want %v", got, want)
	}
	if got := v1["dist"].(map[string]any)["tarball"]; got != publicURL+"/foo/-/foo-1.0.0.tgz" {
		t.Errorf("dist.tarball = %v", got)
	}
}

func TestGetPackumentConditional(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		status  int
	}{
		{"matching full etag", []string{`If-None-Match: W/"3-abc-full"`}, http.StatusNotModified},
		{"matching strong form", []string{`If-None-Match: "3-abc-full"`}, http.StatusNotModified},
		{"one of a list", []string{`If-None-Match: W/"x", W/"3-abc-full"`}, http.StatusNotModified},
		{"star", []string{`If-None-Match: *`}, http.StatusNotModified},
		{"matching corgi etag", []string{"Accept: application/vnd.npm.install-v1+json", `If-None-Match: W/"3-abc-corgi"`}, http.StatusNotModified},
		{"corgi etag on a full request", []string{`If-None-Match: W/"3-abc-corgi"`}, http.StatusOK},
		{"full etag on a corgi request", []string{"Accept: application/vnd.npm.install-v1+json", `If-None-Match: W/"3-abc-full"`}, http.StatusOK},
		{"older revision", []string{`If-None-Match: W/"2-old-full"`}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			rec := e.do(t, "GET", "/foo", nil, tc.headers...)
			wantStatus(t, rec, tc.status)
			if tc.status == http.StatusNotModified {
				if rec.Body.Len() != 0 {
					t.Errorf("304 with a body: %q", rec.Body.String())
				}
				if rec.Header().Get("ETag") == "" {
					t.Errorf("304 without ETag")
				}
			}
		})
	}
}

func TestGetPackumentGzip(t *testing.T) {
	tests := []struct {
		name           string
		acceptEncoding string
		gzipped        bool
	}{
		{"gzip", "gzip", true},
		{"npm's list", "gzip, deflate", true},
		{"with quality", "br;q=1.0, gzip;q=0.8", true},
		{"wildcard", "*", true},
		{"refused", "gzip;q=0", false},
		{"identity only", "identity", false},
		{"none", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			var headers []string
			if tc.acceptEncoding != "" {
				headers = append(headers, "Accept-Encoding: "+tc.acceptEncoding)
			}
			rec := e.do(t, "GET", "/foo", nil, headers...)
			wantStatus(t, rec, http.StatusOK)
			raw := rec.Body.Bytes()
			if !tc.gzipped {
				if rec.Header().Get("Content-Encoding") != "" {
					t.Fatalf("Content-Encoding = %q", rec.Header().Get("Content-Encoding"))
				}
				if !json.Valid(raw) {
					t.Fatalf("body is not JSON")
				}
				return
			}
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding = %q, want gzip", rec.Header().Get("Content-Encoding"))
			}
			if cl := rec.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(raw)) {
				t.Errorf("Content-Length %s does not match the gzipped body (%d)", cl, len(raw))
			}
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("not gzip: %v", err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(plain, &m); err != nil || m["name"] != "foo" {
				t.Errorf("gunzipped body: %v %.80s", err, plain)
			}
			if len(raw) >= len(plain) {
				t.Errorf("gzip did not shrink the body (%d >= %d)", len(raw), len(plain))
			}
		})
	}
}

func TestGetSmallBodyNotGzipped(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "GET", "/@s/p", nil, "Accept-Encoding: gzip")
	wantStatus(t, rec, http.StatusOK)
	if rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("a %d-byte body was gzipped", rec.Body.Len())
	}
}

// Content-codings are case-insensitive and q=0.0 means "not acceptable"
// (RFC 9110 §12.5.3, §12.4.2); an explicit gzip wins over a refused "*".
func TestAcceptsGzipEdgeCases(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"gzip;q=0.0", false},
		{"gzip; q=0.000", false},
		{"GZIP", true},
		{"*;q=0, gzip", true},
	}
	for _, tc := range tests {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// acceptsGzipBySplit is acceptsGzip as it was written before it stopped
// allocating: the reference the new one must equal.
func acceptsGzipBySplit(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		enc, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, param := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				var err error
				if q, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || !(q >= 0 && q <= 1) {
					q = 0
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
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip, deflate", "gzip;q=0", "*;q=0, gzip", "br;q=1.0, gzip;q=0.8, *;q=0.1",
		"gzip;;q=0", "gzip;q=0;", ",,gzip,", "deflate, *", "identity", "gzip; q=2", "GZip ; Q = 0.5", "x;q=0,gzip;q=0,*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got, want := acceptsGzip(h), acceptsGzipBySplit(h); got != want {
			t.Fatalf("acceptsGzip(%q) = %v, the reference says %v", h, got, want)
		}
	})
}

func TestGetPackumentHead(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	get := e.do(t, "GET", "/foo", nil)
	head := e.do(t, "HEAD", "/foo", nil)
	wantStatus(t, head, http.StatusOK)
	if head.Body.Len() != 0 {
		t.Errorf("HEAD with a body")
	}
	if head.Header().Get("Content-Length") != strconv.Itoa(get.Body.Len()) || head.Header().Get("ETag") != get.Header().Get("ETag") {
		t.Errorf("HEAD headers %v differ from GET's %v", head.Header(), get.Header())
	}
}

func TestGetScopedPackument(t *testing.T) {
	for _, path := range []string{"/@s%2fp", "/@s%2Fp", "/@s/p", "/%40s%2fp"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			rec := e.do(t, "GET", path, nil)
			wantStatus(t, rec, http.StatusOK)
			body := decodeJSON(t, rec)
			if body["name"] != "@s/p" {
				t.Errorf("name = %v", body["name"])
			}
			v := body["versions"].(map[string]any)["1.0.0"].(map[string]any)
			if got := v["dist"].(map[string]any)["tarball"]; got != publicURL+"/@s/p/-/p-1.0.0.tgz" {
				t.Errorf("dist.tarball = %v", got)
			}
		})
	}
}

func TestGetVersion(t *testing.T) {
	tests := []struct {
		name, path, version string
		status              int
	}{
		{"exact", "/foo/1.0.0", "1.0.0", http.StatusOK},
		{"latest tag", "/foo/latest", "1.0.0", http.StatusOK},
		{"beta tag", "/foo/beta", "2.0.0-beta.1", http.StatusOK},
		{"scoped exact", "/@s/p/1.0.0", "1.0.0", http.StatusOK},
		{"scoped encoded tag", "/@s%2fp/latest", "1.0.0", http.StatusOK},
		{"missing version", "/foo/9.9.9", "", http.StatusNotFound},
		{"missing tag", "/foo/next", "", http.StatusNotFound},
		{"unknown package", "/nope/1.0.0", "", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			rec := e.do(t, "GET", tc.path, nil)
			wantStatus(t, rec, tc.status)
			body := decodeJSON(t, rec)
			if tc.status != http.StatusOK {
				if body["error"] != "not_found" {
					t.Errorf("error = %v, want not_found", body["error"])
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if body["version"] != tc.version {
				t.Errorf("version = %v, want %s", body["version"], tc.version)
			}
			dist := body["dist"].(map[string]any)
			if tb, _ := dist["tarball"].(string); !strings.HasPrefix(tb, publicURL+"/") || !strings.HasSuffix(tb, "-"+tc.version+".tgz") {
				t.Errorf("dist.tarball = %v", dist["tarball"])
			}
		})
	}
}

func TestGetTarball(t *testing.T) {
	tests := []struct {
		name, path, key string
	}{
		{"unscoped", "/foo/-/foo-1.0.0.tgz", "foo@1.0.0"},
		{"scoped short file", "/@s/p/-/p-1.0.0.tgz", "@s/p@1.0.0"},
		{"scoped long file", "/@s/p/-/@s/p-1.0.0.tgz", "@s/p@1.0.0"},
		{"encoded scope, short file", "/@s%2fp/-/p-1.0.0.tgz", "@s/p@1.0.0"},
		{"encoded scope, encoded long file", "/@s%2fp/-/@s%2fp-1.0.0.tgz", "@s/p@1.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			want := e.reg.tarballs[tc.key]
			rec := e.do(t, "GET", tc.path, nil, "Accept-Encoding: gzip")
			wantStatus(t, rec, http.StatusOK)
			h := rec.Header()
			if h.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("Content-Type = %q", h.Get("Content-Type"))
			}
			if h.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("Content-Length = %q, want %d", h.Get("Content-Length"), len(want))
			}
			if h.Get("Content-Encoding") != "" {
				t.Errorf("a tarball must be sent as is, got Content-Encoding %q", h.Get("Content-Encoding"))
			}
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Errorf("body: %d bytes, want the %d stored bytes", rec.Body.Len(), len(want))
			}
			if !strings.Contains(h.Get("Cache-Control"), "immutable") || h.Get("ETag") != `"md5-abc"` {
				t.Errorf("Cache-Control %q ETag %q", h.Get("Cache-Control"), h.Get("ETag"))
			}
		})
	}
}

func TestHeadTarball(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "HEAD", "/@s/p/-/p-1.0.0.tgz", nil)
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.Len() != 0 {
		t.Errorf("HEAD with a body")
	}
	if rec.Header().Get("Content-Length") != strconv.Itoa(len("scoped tarball bytes")) {
		t.Errorf("Content-Length = %q", rec.Header().Get("Content-Length"))
	}
	if e.reg.heads != 1 {
		t.Errorf("HEAD opened the tarball instead of a stat (heads = %d)", e.reg.heads)
	}
}

func TestNotFoundAndInvalid(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		errField           string
	}{
		{"unknown package", "GET", "/nope", http.StatusNotFound, "not_found"},
		{"unknown scoped package", "GET", "/@s/nope", http.StatusNotFound, "not_found"},
		{"tarball of another package", "GET", "/foo/-/bar-1.0.0.tgz", http.StatusNotFound, "not_found"},
		{"missing tarball version", "GET", "/foo/-/foo-9.9.9.tgz", http.StatusNotFound, "not_found"},
		{"tarball traversal", "GET", "/foo/-/..%2ffoo-1.0.0.tgz", http.StatusBadRequest, ""}, // a ".." segment once decoded (chain.go)
		{"unknown api endpoint", "GET", "/-/nope", http.StatusNotFound, "not_found"},
		{"too many segments", "GET", "/a/b/c", http.StatusNotFound, "not_found"},
		{"encoded dot dot", "GET", "/%2e%2e", http.StatusBadRequest, ""},
		{"encoded slash unscoped", "GET", "/a%2fb", http.StatusBadRequest, ""},
		{"hidden name", "GET", "/.hidden", http.StatusBadRequest, ""},
		{"node_modules", "GET", "/node_modules", http.StatusBadRequest, ""},
		{"method not allowed", "DELETE", "/foo/1.0.0", http.StatusMethodNotAllowed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			req := httpRequest(t, tc.method, tc.path)
			rec := serve(e, req)
			wantStatus(t, rec, tc.status)
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			body := decodeJSON(t, rec)
			if tc.errField != "" && body["error"] != tc.errField {
				t.Errorf("error = %v, want %q", body["error"], tc.errField)
			}
			if r, _ := body["reason"].(string); r == "" {
				t.Errorf("no reason in %v", body)
			}
			if n := len(e.logs.requestLines(t)); n != 1 {
				t.Errorf("%d request log lines, want 1", n)
			}
		})
	}
}

func TestErrorKindsToStatus(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		status  int
		headers map[string]string
	}{
		{"unavailable", registry.Wrap(registry.KindUnavailable, errors.New("dial tcp 10.9.8.7:5984: connection refused"), "the database cannot be reached"), http.StatusServiceUnavailable, map[string]string{"Retry-After": "5"}},
		{"bad gateway", registry.E(registry.KindBadGateway, "upstream sent garbage"), http.StatusBadGateway, nil},
		{"conflict", registry.E(registry.KindConflict, "conflict"), http.StatusConflict, nil},
		{"forbidden", registry.E(registry.KindForbidden, "no"), http.StatusForbidden, nil},
		{"too large", registry.E(registry.KindTooLarge, "big"), http.StatusRequestEntityTooLarge, nil},
		{"unauthorized", registry.E(registry.KindUnauthorized, "who"), http.StatusUnauthorized, map[string]string{"WWW-Authenticate": `Basic realm="couchnpm", charset="UTF-8"`}},
		{"plain error", errors.New("secret internal detail at 10.9.8.7"), http.StatusInternalServerError, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			e.reg.err = tc.err
			rec := e.do(t, "GET", "/foo", nil)
			wantStatus(t, rec, tc.status)
			for k, v := range tc.headers {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			body := decodeJSON(t, rec)
			if strings.Contains(rec.Body.String(), "10.9.8.7") {
				t.Errorf("the cause leaked to the client: %s", rec.Body.String())
			}
			if body["reason"] != registry.ReasonOf(tc.err) {
				t.Errorf("reason = %v, want %q", body["reason"], registry.ReasonOf(tc.err))
			}
			if tc.status >= 500 && !strings.Contains(e.logs.String(), "request failed") {
				t.Errorf("a %d was not logged with its cause", tc.status)
			}
		})
	}
}

func TestPanicIsA500(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	e.reg.panicWith = "boom: secret panic detail"
	rec := e.do(t, "GET", "/foo", nil)
	wantStatus(t, rec, http.StatusInternalServerError)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	body := decodeJSON(t, rec)
	if body["error"] != "internal error" {
		t.Errorf("body = %v", body)
	}
	for _, leak := range []string{"secret panic detail", "goroutine", ".go:"} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("body leaks %q: %s", leak, rec.Body.String())
		}
	}
	lines := e.logs.requestLines(t)
	if len(lines) != 1 || lines[0]["status"] != float64(500) {
		t.Errorf("request lines = %v, want one with status 500", lines)
	}
	if !strings.Contains(e.logs.String(), "handler panicked") {
		t.Errorf("the panic was not logged")
	}
	// The server keeps serving.
	e.reg.panicWith = nil
	wantStatus(t, e.do(t, "GET", "/foo", nil), http.StatusOK)
}

func TestPing(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	rec := e.do(t, "GET", "/-/ping", nil)
	wantStatus(t, rec, http.StatusOK)
	if strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Errorf("body = %q", rec.Body.String())
	}
	e.pinger.err = registry.E(registry.KindUnavailable, "couchdb down")
	rec = e.do(t, "GET", "/-/ping", nil)
	wantStatus(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

func TestReadWithBadCredentials(t *testing.T) {
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"no credentials", "", http.StatusOK},
		{"good token", "Bearer cnpm_alice", http.StatusOK},
		{"bad token", "Bearer cnpm_wrong", http.StatusUnauthorized},
		{"good basic", basicAuth("alice", "secret"), http.StatusOK},
		{"bad basic", basicAuth("alice", "nope"), http.StatusUnauthorized},
		{"unknown scheme", "Digest abc", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			var headers []string
			if tc.header != "" {
				headers = append(headers, "Authorization: "+tc.header)
			}
			for _, path := range []string{"/foo", "/foo/1.0.0", "/foo/-/foo-1.0.0.tgz"} {
				rec := e.do(t, "GET", path, nil, headers...)
				if rec.Code != tc.status {
					t.Errorf("GET %s: status %d, want %d", path, rec.Code, tc.status)
				}
				if tc.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("GET %s: 401 without WWW-Authenticate", path)
				}
			}
		})
	}
}

func TestReadPassesTheCaller(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	wantStatus(t, e.do(t, "GET", "/foo", nil, "Authorization: Bearer cnpm_alice"), http.StatusOK)
	wantStatus(t, e.do(t, "GET", "/foo", nil), http.StatusOK)
	if len(e.reg.readers) != 2 || e.reg.readers[0].Name != "alice" || !e.reg.readers[1].Anonymous() {
		t.Errorf("readers = %+v, want alice then anonymous", e.reg.readers)
	}
}

// npm publish reads the packument before it publishes; that read must not
// see an upstream package of the same name.
func TestPublishPreReadIsLocal(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	wantStatus(t, e.do(t, "GET", "/foo", nil, "Npm-Command: publish"), http.StatusOK)
	if got := e.reg.localReads(); got != 1 {
		t.Errorf("local reads = %d, want 1", got)
	}
	wantStatus(t, e.do(t, "GET", "/foo", nil, "Npm-Command: install"), http.StatusOK)
	if got := e.reg.localReads(); got != 1 {
		t.Errorf("an install read was local-only (local reads %d)", got)
	}
}

// Answers to authenticated requests may hold restricted packages: shared
// caches must not keep them.
func TestCacheControlPrivateWhenAuthenticated(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	for _, path := range []string{"/foo", "/foo/1.0.0", "/foo/-/foo-1.0.0.tgz"} {
		anon := e.do(t, "GET", path, nil)
		wantStatus(t, anon, http.StatusOK)
		if cc := anon.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "public, ") {
			t.Errorf("anonymous GET %s: Cache-Control %q, want public", path, cc)
		}
		auth := e.do(t, "GET", path, nil, "Authorization: Bearer cnpm_alice")
		wantStatus(t, auth, http.StatusOK)
		if cc := auth.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private, ") {
			t.Errorf("authenticated GET %s: Cache-Control %q, want private", path, cc)
		}
	}
}
