package handlers

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Every response, whatever produced it, says nosniff.
func TestNosniffEverywhere(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/-/ping"},
		{"GET", "/foo"},
		{"GET", "/foo/-/foo-1.0.0.tgz"},
		{"HEAD", "/foo/-/foo-1.0.0.tgz"},
		{"GET", "/nope"},
		{"GET", "/-/nope"},
		{"PATCH", "/foo"},      // mux's 405
		{"GET", "//foo"},       // mux's redirect
		{"GET", "/foo/../bar"}, // refused dot segment
		{"GET", "/-/whoami"},   // 401
	} {
		rec := serve(e, httpRequest(t, tc.method, tc.path))
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options = %q", tc.method, tc.path, rec.Code, got)
		}
	}
}

func TestHTMLSecurityHeaders(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		}
		if r.URL.Path != "/sniffed" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		_, _ = w.Write([]byte("<!doctype html><html><body>hi</body></html>"))
	})
	h := frontDoor(page, zerolog.Nop(), nil)
	for _, path := range []string{"/page", "/sniffed"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		for k, want := range map[string]string{
			"Content-Security-Policy":    htmlCSP,
			"X-Frame-Options":            "DENY",
			"Referrer-Policy":            "no-referrer",
			"X-Content-Type-Options":     "nosniff",
			"Cross-Origin-Opener-Policy": "same-origin",
			"Cache-Control":              "no-store",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	// A page's own policy wins.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/own", nil))
	if got := rec.Header().Get("Content-Security-Policy"); got != "default-src 'self'" {
		t.Errorf("own CSP replaced: %q", got)
	}
	// JSON gets no HTML headers.
	e := newEnv(t, zerolog.InfoLevel)
	rec = serve(e, httpRequest(t, "GET", "/foo"))
	if rec.Header().Get("Content-Security-Policy") != "" || rec.Header().Get("X-Frame-Options") != "" {
		t.Errorf("JSON response has HTML headers: %v", rec.Header())
	}
}

func TestDotSegmentsRefused(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	for _, target := range []string{
		"/..", "/.", "/foo/..", "/foo/.", "/%2e%2e", "/%2E%2e/x", "/.%2e", "/foo/-/%2e%2e%2ffoo-1.0.0.tgz",
		"/@s%2f..", "/-/user/org.couchdb.user:alice/../../x", "/-/npm/v1/tokens/token/..",
	} {
		rec := serve(e, rawRequest(t, "GET", target, nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), ". or .. segment") {
			t.Errorf("GET %s: %d %s", target, rec.Code, rec.Body.String())
		}
	}
	// Dots inside segments are fine.
	for _, target := range []string{"/foo/-/foo-1.0.0.tgz", "/foo/1.0.0", "/@s%2fp/-/p-1.0.0.tgz", "/foo..bar"} {
		if rec := serve(e, rawRequest(t, "GET", target, nil)); rec.Code == http.StatusBadRequest {
			t.Errorf("GET %s: 400 %s", target, rec.Body.String())
		}
	}
	// The refusal is logged like any request.
	if !strings.Contains(e.logs.String(), `"status":400`) {
		t.Errorf("refused path not logged")
	}
}

// The refusal happens on the path as the server parsed it off the wire.
func TestDotSegmentsFromTheWire(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	raw := "GET /foo/-/foo-1.0.0.tgz/../../x HTTP/1.1\r\nHost: r\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.1:1"
	if rec := serve(e, req); rec.Code != http.StatusBadRequest {
		t.Errorf("status %d", rec.Code)
	}
}
