package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

const smallPublish = `{"_id":"foo","name":"foo","dist-tags":{"latest":"1.1.0"},
 "versions":{"1.1.0":{"name":"foo","version":"1.1.0"}},
 "_attachments":{"foo-1.1.0.tgz":{"content_type":"application/octet-stream","data":"AAAA","length":3}}}`

func TestPublishAccepted(t *testing.T) {
	tests := []struct {
		name, path, pkg, contentType, auth string
	}{
		{"token", "/foo", "foo", "application/json", "Bearer cnpm_alice"},
		{"basic", "/foo", "foo", "application/json", basicAuth("alice", "secret")},
		{"charset", "/foo", "foo", "application/json; charset=utf-8", "Bearer cnpm_alice"},
		{"+json type", "/foo", "foo", "application/vnd.npm+json", "Bearer cnpm_alice"},
		{"no content type", "/foo", "foo", "", "Bearer cnpm_alice"},
		{"scoped encoded", "/@s%2fp", "@s/p", "application/json", "Bearer cnpm_alice"},
		{"scoped plain", "/@s/p", "@s/p", "application/json", "Bearer cnpm_alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			headers := []string{"Authorization: " + tc.auth}
			if tc.contentType != "" {
				headers = append(headers, "Content-Type: "+tc.contentType)
			}
			rec := e.do(t, "PUT", tc.path, strings.NewReader(smallPublish), headers...)
			wantStatus(t, rec, http.StatusCreated)
			body := decodeJSON(t, rec)
			if body["ok"] != true || body["id"] != tc.pkg || body["success"] != true {
				t.Errorf("body = %v", body)
			}
			if len(e.reg.published) != 1 {
				t.Fatalf("published %d times", len(e.reg.published))
			}
			call := e.reg.published[0]
			if call.name != tc.pkg || call.user.Name != "alice" {
				t.Errorf("Publish(%q) as %+v", call.name, call.user)
			}
			if call.body.Attachments["foo-1.1.0.tgz"].Data != "AAAA" || len(call.body.Versions) != 1 {
				t.Errorf("body not decoded: %+v", call.body)
			}
		})
	}
}

func TestPublishRefused(t *testing.T) {
	big := `{"name":"foo","readme":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name       string
		path       string
		headers    []string
		body       string
		chunked    bool // no Content-Length
		status     int
		wwwAuth    bool
		connClose  bool
		registryEr error
	}{
		{name: "no credentials", path: "/foo", headers: []string{"Content-Type: application/json"}, body: smallPublish, status: 401, wwwAuth: true},
		{name: "bad token", path: "/foo", headers: []string{"Authorization: Bearer cnpm_wrong", "Content-Type: application/json"}, body: smallPublish, status: 401, wwwAuth: true},
		{name: "bad password", path: "/foo", headers: []string{"Authorization: " + basicAuth("alice", "x")}, body: smallPublish, status: 401, wwwAuth: true},
		{name: "over the limit by Content-Length", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: application/json"}, body: big, status: 413, connClose: true},
		{name: "over the limit, chunked", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: application/json"}, body: big, chunked: true, status: 413, connClose: true},
		{name: "malformed JSON", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: application/json"}, body: `{"name":`, status: 400},
		{name: "trailing data", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice"}, body: smallPublish + `{"x":1}`, status: 400},
		{name: "wrong content type", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: text/plain"}, body: smallPublish, status: 400},
		{name: "form content type", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: application/x-www-form-urlencoded"}, body: smallPublish, status: 400},
		{name: "invalid name", path: "/_foo", headers: []string{"Authorization: Bearer cnpm_alice", "Content-Type: application/json"}, body: smallPublish, status: 400},
		{name: "registry refuses", path: "/foo", headers: []string{"Authorization: Bearer cnpm_readonly", "Content-Type: application/json"}, body: smallPublish, status: 403, registryEr: registry.E(registry.KindForbidden, "this token is read-only")},
		{name: "registry conflict", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice"}, body: smallPublish, status: 409, registryEr: registry.E(registry.KindConflict, "too many concurrent publishes")},
		{name: "registry unavailable", path: "/foo", headers: []string{"Authorization: Bearer cnpm_alice"}, body: smallPublish, status: 503, registryEr: registry.E(registry.KindUnavailable, "db down")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, zerolog.InfoLevel)
			e.reg.err = tc.registryEr
			req := httpRequest(t, "PUT", tc.path)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length
				req.ContentLength = -1
			} else {
				req.ContentLength = int64(len(tc.body))
			}
			req.Body = io.NopCloser(body)
			for _, h := range tc.headers {
				k, v, _ := strings.Cut(h, ": ")
				req.Header.Set(k, v)
			}
			rec := serve(e, req)
			wantStatus(t, rec, tc.status)
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["reason"] == "" {
				t.Errorf("body = %q", rec.Body.String())
			}
			if tc.wwwAuth && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tc.connClose && rec.Header().Get("Connection") != "close" {
				t.Errorf("413 without Connection: close")
			}
			if tc.registryEr == nil && len(e.reg.published) != 0 {
				t.Errorf("Publish reached the registry")
			}
		})
	}
}

// A 413 must be decided from Content-Length before the body is read.
func TestPublishTooLargeDoesNotReadBody(t *testing.T) {
	e := newEnv(t, zerolog.InfoLevel)
	req := httpRequest(t, "PUT", "/foo")
	req.Header.Set("Authorization", "Bearer cnpm_alice")
	req.ContentLength = 1 << 30
	tr := &trackingReader{}
	req.Body = tr
	rec := serve(e, req)
	wantStatus(t, rec, http.StatusRequestEntityTooLarge)
	if tr.n != 0 {
		t.Errorf("read %d bytes of an oversized body", tr.n)
	}
}

type trackingReader struct{ n int }

func (r *trackingReader) Read(p []byte) (int, error) {
	r.n += len(p)
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
func (r *trackingReader) Close() error { return nil }
