package handlers

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// recordingStore is memStore (e2e_test.go) remembering every name and
// attachment that reached it, to prove that no hostile path does.
type recordingStore struct {
	*registrytest.MemStore
	mu    sync.Mutex
	names []string // "name" or "name/attachment"
}

func (s *recordingStore) note(name, att string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if att != "" {
		name += "\x00" + att
	}
	s.names = append(s.names, name)
}

func (s *recordingStore) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

func (s *recordingStore) PeekPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return s.GetPackument(ctx, name)
}

func (s *recordingStore) GetPackument(ctx context.Context, name string) (*registry.Packument, error) {
	s.note(name, "")
	return s.MemStore.GetPackument(ctx, name)
}

func (s *recordingStore) PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error) {
	s.note(p.ID, "")
	for att := range p.Attachments {
		s.note(p.ID, att)
	}
	return s.MemStore.PutPackument(ctx, p)
}

func (s *recordingStore) OpenTarball(ctx context.Context, name, att string) (*registry.Tarball, error) {
	s.note(name, att)
	return s.MemStore.OpenTarball(ctx, name, att)
}

func (s *recordingStore) StatTarball(ctx context.Context, name, att string) (*registry.Tarball, error) {
	s.note(name, att)
	return s.MemStore.StatTarball(ctx, name, att)
}

// checkReached fails when a name or attachment that reached the store is
// not a valid name, or its tarball name, or carries a path trick.
func (s *recordingStore) checkReached(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.names {
		name, att, _ := strings.Cut(n, "\x00")
		if err := registry.ValidateName(name); err != nil {
			t.Fatalf("the store was asked for invalid name %q: %v", name, err)
		}
		// ".." inside a name ("a..b") is a legal name, not a path step;
		// a "." or ".." segment, a backslash or an escape is never.
		for _, seg := range strings.FieldsFunc(n, func(r rune) bool { return r == '/' || r == 0 }) {
			if seg == "." || seg == ".." {
				t.Fatalf("the store was asked for %q", n)
			}
		}
		if strings.ContainsAny(n, "\\%") {
			t.Fatalf("the store was asked for %q", n)
		}
		if att != "" {
			if v, err := registry.VersionFromTarball(name, att); err != nil || registry.TarballName(name, v) != att {
				t.Fatalf("the store was asked for attachment %q of %s", att, name)
			}
		}
	}
}

// fakeUsers gives the command surface the accounts alice and bob.
type fakeUsers struct{}

func (fakeUsers) GetUser(_ context.Context, name string) (*registry.User, error) {
	if name == "alice" || name == "bob" {
		return &registry.User{Name: name, Email: name + "@example.com"}, nil
	}
	return nil, registry.E(registry.KindNotFound, "no user %s", name)
}
func (fakeUsers) CreateUser(context.Context, string, string, string) error { return nil }
func (fakeUsers) CheckPassword(_ context.Context, name, password string, _ netip.Addr) error {
	if (name == "alice" || name == "bob") && password == "secret" {
		return nil
	}
	return registry.E(registry.KindUnauthorized, "name or password is incorrect")
}

func (fakeUsers) UpdateTwoFactor(context.Context, string, registry.TwoFactorChange) error {
	return nil
}

// realEnv is handlers.New over the real registry.Service and an
// in-memory store, with foo@1.0.0 published by alice.
type realEnv struct {
	h        http.Handler
	store    *recordingStore
	accounts *fakeAccounts
	logs     *syncBuffer
}

const realLimit = 1 << 20 // MaxPublishBytes of realEnv

func newRealHandler(t testing.TB, cfg Config) *realEnv {
	t.Helper()
	store := &recordingStore{MemStore: registrytest.NewMemStore()}
	svc := newService(t, registry.Config{Store: store})
	e := &realEnv{store: store, accounts: newFakeAccounts(), logs: &syncBuffer{}}
	cfg.PublicURL = "http://registry.test"
	if cfg.MaxPublishBytes == 0 {
		cfg.MaxPublishBytes = realLimit
	}
	e.h = mustNew(t, cfg, realServices(svc, e.accounts, noTokens(t)), zerolog.New(e.logs))
	tgz := testkit.Tarball("foo", "1.0.0")
	if err := svc.Publish(context.Background(), registry.Identity{Name: "alice"}, "foo", mustPublishBody(t, publishDoc(t, "foo", "1.0.0", tgz))); err != nil {
		t.Fatalf("seed publish: %v", err)
	}
	return e
}

func mustPublishBody(t testing.TB, doc map[string]any) *registry.PublishBody {
	t.Helper()
	raw, _ := json.Marshal(doc)
	b, err := registry.DecodePublishBody(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishDoc is npm's publish body for name@version with tarball tgz (the
// shape of npmPublishBody in e2e_test.go), as a map that cases can bend.
func publishDoc(t testing.TB, name, version string, tgz []byte) map[string]any {
	t.Helper()
	s1 := sha1.Sum(tgz) //nolint:gosec
	s512 := sha512.Sum512(tgz)
	return map[string]any{
		"_id": name, "name": name, "description": "desc of " + version,
		"dist-tags": map[string]any{"latest": version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version, "description": "desc of " + version,
			"_id": name + "@" + version,
			"dist": map[string]any{
				"shasum":    hex.EncodeToString(s1[:]),
				"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"tarball":   "http://localhost:4873/" + name + "/-/" + name + "-" + version + ".tgz",
			},
		}},
		"access": nil,
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{
			"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz),
		}},
	}
}

func publishJSON(t testing.TB, name, version string) string {
	t.Helper()
	b, err := json.Marshal(publishDoc(t, name, version, testkit.Tarball(name, version)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *realEnv) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// rawRequest builds a request for a raw target (no cleaning, any bytes).
func rawRequest(t testing.TB, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", body)
	req.Method = method
	u, err := url.ParseRequestURI(target) // as the server parses it: no dot-segment removal
	if err != nil {
		t.Fatalf("target %q: %v", target, err)
	}
	req.URL = u
	req.RequestURI = target
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}

func TestBadRequests(t *testing.T) {
	tgz := testkit.Tarball("foo", "1.1.0")
	other := testkit.Tarball("foo", "6.6.6")
	enc := func(doc map[string]any) string {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good := func() map[string]any { return publishDoc(t, "foo", "1.1.0", tgz) }
	bend := func(f func(d map[string]any)) string { d := good(); f(d); return enc(d) }
	version := func(d map[string]any) map[string]any {
		return d["versions"].(map[string]any)["1.1.0"].(map[string]any)
	}
	att := func(d map[string]any) map[string]any { return d["_attachments"].(map[string]any) }
	goodBody := enc(good())
	long := strings.Repeat("a", 215)
	auth := "Bearer cnpm_alice"

	tests := []struct {
		name, method, path string
		contentType        string // "" : application/json
		body               string
		status             int
		msg                string
	}{
		// names
		{"uppercase new name", "PUT", "/Foo", "", enc(publishDoc(t, "Foo", "1.0.0", testkit.Tarball("Foo", "1.0.0"))), 400, "must be lowercase"},
		{"dot-dot name", "GET", "/..", "", "", 400, ". or .. segment"},
		{"dot-dot name, encoded", "GET", "/%2e%2e", "", "", 400, ". or .. segment"},
		{"dot-dot name, encoded, publish", "PUT", "/%2E%2E", "", goodBody, 400, ". or .. segment"},
		{"leading dot", "GET", "/.foo", "", "", 400, "cannot start with . or _"},
		{"node_modules", "GET", "/node_modules", "", "", 400, "reserved"},
		{"node_modules publish", "PUT", "/node_modules", "", goodBody, 400, "reserved"},
		{"215 characters", "GET", "/" + long, "", "", 400, "longer than 214"},
		{"215 characters, publish", "PUT", "/" + long, "", goodBody, 400, "longer than 214"},
		{"core module name", "PUT", "/http", "", enc(publishDoc(t, "http", "1.0.0", testkit.Tarball("http", "1.0.0"))), 400, "core module"},
		{"invalid UTF-8 in the URL name", "GET", "/fo%FFo", "", "", 400, "URL-safe"},
		{"encoded slash in an unscoped name", "GET", "/a%2fb", "", "", 400, "scoped name"},
		// path traversal
		{"tarball traversal, encoded slashes", "GET", "/foo/-/..%2f..%2fetc%2fpasswd", "", "", 400, ". or .. segment"},
		{"tarball traversal, dot segment", "GET", "/foo/-/foo-1.0.0.tgz/../x", "", "", 400, ". or .. segment"},
		{"tarball traversal, scoped", "GET", "/@s%2fp/-/@s%2f..%2f..%2fx", "", "", 400, ". or .. segment"},
		{"tarball of another package", "GET", "/foo/-/bar-1.0.0.tgz", "", "", 404, "no tarball"},
		{"tarball with a NUL", "GET", "/foo/-/foo-1.0.0.tgz%00", "", "", 404, "no tarball"},
		{"single dot segment", "GET", "/foo/./1.0.0", "", "", 400, ". or .. segment"},
		// publish bodies: names and versions that disagree
		{"body names another package", "PUT", "/foo", "", bend(func(d map[string]any) { d["name"] = "bar" }), 400, `the body's "name" is "bar" but the URL names package "foo"`},
		{"update body: name and _id name other packages", "PUT", "/nc-bad", "", `{"_id":"x1","name":"y2"}`, 400, `the body's "name" is "y2" but the URL names package "nc-bad"`},
		{"update body: _id names another package", "PUT", "/nc-bad", "", `{"_id":"x1"}`, 400, `the body's "_id" is "x1" but the URL names package "nc-bad"`},
		{"first publish without versions or tarballs", "PUT", "/nc-new", "", `{"_id":"nc-new","name":"nc-new","dist-tags":{"latest":"1.0.0"}}`, 400, `the publish body has no versions: a first publish needs "versions"`},
		{"publish with tarballs but no versions", "PUT", "/foo", "", bend(func(d map[string]any) { delete(d, "versions") }), 400, `the publish body has no versions: "versions" must hold`},
		{"_id names another package", "PUT", "/foo", "", bend(func(d map[string]any) { d["_id"] = "bar" }), 400, "_id"},
		{"manifest names another package", "PUT", "/foo", "", bend(func(d map[string]any) { version(d)["name"] = "bar" }), 400, "the manifest names package"},
		{"manifest version differs from its key", "PUT", "/foo", "", bend(func(d map[string]any) { version(d)["version"] = "1.2.0" }), 400, "the manifest says version"},
		{"attachment of another version", "PUT", "/foo", "", bend(func(d map[string]any) {
			a := att(d)
			a["foo-1.2.0.tgz"] = a["foo-1.1.0.tgz"]
			delete(a, "foo-1.1.0.tgz")
		}), 400, "has no tarball attachment"},
		{"attachment of another package", "PUT", "/foo", "", bend(func(d map[string]any) {
			a := att(d)
			a["bar-1.1.0.tgz"] = a["foo-1.1.0.tgz"]
			delete(a, "foo-1.1.0.tgz")
		}), 400, "is not a tarball of foo"},
		{"attachment name with a path", "PUT", "/foo", "", bend(func(d map[string]any) {
			a := att(d)
			a["../foo-1.1.0.tgz"] = a["foo-1.1.0.tgz"]
			delete(a, "foo-1.1.0.tgz")
		}), 400, "is not a tarball of foo"},
		{"missing attachments", "PUT", "/newpkg", "", enc(func() map[string]any {
			d := publishDoc(t, "newpkg", "1.0.0", testkit.Tarball("newpkg", "1.0.0"))
			delete(d, "_attachments")
			return d
		}()), 400, "one tarball per version"},
		{"extra attachment", "PUT", "/foo", "", bend(func(d map[string]any) {
			att(d)["foo-1.2.0.tgz"] = map[string]any{"data": base64.StdEncoding.EncodeToString(tgz)}
		}), 400, "exactly one tarball per version"},
		{"attachment without data", "PUT", "/foo", "", bend(func(d map[string]any) {
			att(d)["foo-1.1.0.tgz"] = map[string]any{"content_type": "application/octet-stream"}
		}), 400, "has no data"},
		{"attachment not base64", "PUT", "/foo", "", bend(func(d map[string]any) {
			att(d)["foo-1.1.0.tgz"].(map[string]any)["data"] = "!!!!"
		}), 400, "not valid base64"},
		{"attachment length differs", "PUT", "/foo", "", bend(func(d map[string]any) {
			att(d)["foo-1.1.0.tgz"].(map[string]any)["length"] = 3
		}), 400, "length says"},
		{"tarball does not match integrity", "PUT", "/foo", "", bend(func(d map[string]any) {
			att(d)["foo-1.1.0.tgz"].(map[string]any)["data"] = base64.StdEncoding.EncodeToString(other)
			delete(att(d)["foo-1.1.0.tgz"].(map[string]any), "length")
		}), 400, "does not match the tarball"},
		{"manifest not an object", "PUT", "/foo", "", bend(func(d map[string]any) { d["versions"].(map[string]any)["1.1.0"] = 5 }), 400, "must be a JSON object"},
		{"invalid version", "PUT", "/foo", "", bend(func(d map[string]any) {
			d["versions"] = map[string]any{"1.1": version(d)}
		}), 400, "strict semver"},
		{"version-like dist-tag", "PUT", "/foo", "", bend(func(d map[string]any) { d["dist-tags"] = map[string]any{"v1.1.0": "1.1.0"} }), 400, "must not look like a version"},
		{"republish", "PUT", "/foo", "", enc(publishDoc(t, "foo", "1.0.0", testkit.Tarball("foo", "1.0.0"))), 403, "previously published"},
		// hostile JSON
		{"100k nested arrays", "PUT", "/foo", "", `{"name":"foo","x":` + strings.Repeat("[", 100_000), 400, "nests deeper"},
		{"100k nested objects", "PUT", "/foo", "", strings.Repeat(`{"a":`, 10_000), 400, "nests deeper"},
		{"duplicate _attachments", "PUT", "/foo", "", strings.Replace(goodBody, `"_attachments":`, `"_attachments":{},"_attachments":`, 1), 400, "duplicate key"},
		{"lone surrogate escape in a manifest string", "PUT", "/foo", "", strings.Replace(goodBody, `"description":"desc of 1.1.0"`, `"description":"\ud800"`, 1), 400, "surrogate"},
		{"duplicate version", "PUT", "/foo", "", strings.Replace(goodBody, `"versions":{`, `"versions":{"1.1.0":{"name":"foo","version":"1.1.0"},`, 1), 400, "duplicate key"},
		{"duplicate attachment", "PUT", "/foo", "", strings.Replace(goodBody, `"_attachments":{`, `"_attachments":{"foo-1.1.0.tgz":{"data":"AAAA"},`, 1), 400, "duplicate key"},
		{"duplicate attachment data", "PUT", "/foo", "", strings.Replace(goodBody, `"content_type":`, `"data":"AAAA","content_type":`, 1), 400, "duplicate key"},
		{"duplicate name", "PUT", "/foo", "", strings.Replace(goodBody, `"name":"foo"`, `"name":"foo","name":"bar"`, 1), 400, "duplicate key"},
		{"invalid UTF-8 in the body's name", "PUT", "/foo", "", strings.Replace(goodBody, `"name":"foo"`, "\"name\":\"fo\xffo\"", 1), 400, "not valid UTF-8"},
		{"invalid UTF-8 in a manifest string", "PUT", "/foo", "", strings.Replace(goodBody, `"description":"desc of 1.1.0"`, "\"description\":\"\xc3(\"", 1), 400, "not valid UTF-8"},
		{"trailing brace", "PUT", "/foo", "", goodBody + "}", 400, "data after"},
		{"trailing document", "PUT", "/foo", "", goodBody + goodBody, 400, "data after"},
		{"not an object", "PUT", "/foo", "", `[` + goodBody + `]`, 400, "must be a JSON object"},
		{"empty body", "PUT", "/foo", "", "", 400, "empty"},
		{"wrong field type", "PUT", "/foo", "", `{"versions":[]}`, 400, "not valid JSON"},
		// content type
		{"text/plain", "PUT", "/foo", "text/plain", goodBody, 400, "expected a JSON body"},
		{"form", "PUT", "/foo", "application/x-www-form-urlencoded", goodBody, 400, "expected a JSON body"},
		{"malformed content type", "PUT", "/foo", "application/json; charset", goodBody, 400, "expected a JSON body"},
		// the couch login
		{"login body not JSON", "PUT", "/-/user/org.couchdb.user:bob", "", "{", 400, "not valid JSON"},
		{"login names another user", "PUT", "/-/user/org.couchdb.user:bob", "", `{"name":"carol","password":"x"}`, 400, "the body names user"},
		{"login invalid user name", "PUT", "/-/user/org.couchdb.user:Bob", "", `{"name":"Bob","password":"x"}`, 400, "lowercase"},
		{"login without password", "PUT", "/-/user/org.couchdb.user:bob", "", `{"name":"bob"}`, 400, "password is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRealHandler(t, Config{})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := rawRequest(t, tc.method, tc.path, body)
			req.Header.Set("Authorization", auth)
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			start := time.Now()
			rec := e.serve(req)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if rec.Code != tc.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, rec.Code, tc.status, rec.Body.String())
			}
			var m map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatalf("body is not a JSON error: %q", rec.Body.String())
			}
			if !strings.Contains(m["reason"], tc.msg) {
				t.Errorf("reason = %q, want it to contain %q", m["reason"], tc.msg)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff")
			}
			e.store.checkReached(t)
			if tc.method == "PUT" {
				p, err := e.store.MemStore.GetPackument(context.Background(), "foo")
				if err != nil || len(p.Versions) != 1 {
					t.Errorf("the refused publish changed foo: %v", p.SortedVersions())
				}
			}
		})
	}
}

// A valid publish still goes through the same environment.
func TestBadRequestsBaseline(t *testing.T) {
	e := newRealHandler(t, Config{})
	req := rawRequest(t, "PUT", "/foo", strings.NewReader(publishJSON(t, "foo", "1.1.0")))
	req.Header.Set("Authorization", "Bearer cnpm_alice")
	req.Header.Set("Content-Type", "application/json")
	if rec := e.serve(req); rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	e.store.checkReached(t)
}

// Keys are matched case-sensitively: a "VERSIONS" or "_ATTACHMENTS" next to
// the real ones is an unknown key, ignored, and cannot publish what the
// checks on "versions" and "_attachments" did not see.
func TestPublishKeysAreCaseSensitive(t *testing.T) {
	e := newRealHandler(t, Config{})
	evil := publishDoc(t, "foo", "6.6.6", testkit.Tarball("foo", "6.6.6"))
	doc := publishDoc(t, "foo", "1.1.0", testkit.Tarball("foo", "1.1.0"))
	doc["VERSIONS"] = evil["versions"]
	doc["_ATTACHMENTS"] = evil["_attachments"]
	doc["Dist-Tags"] = map[string]any{"latest": "6.6.6"}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	req := rawRequest(t, "PUT", "/foo", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer cnpm_alice")
	req.Header.Set("Content-Type", "application/json")
	if rec := e.serve(req); rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	p, err := e.store.MemStore.GetPackument(context.Background(), "foo")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.SortedVersions(); !slices.Equal(got, []string{"1.0.0", "1.1.0"}) {
		t.Errorf("versions = %v, want [1.0.0 1.1.0]", got)
	}
	if p.DistTags["latest"] != "1.1.0" {
		t.Errorf("latest = %q, want 1.1.0", p.DistTags["latest"])
	}
	for att := range p.Attachments {
		if strings.Contains(att, "6.6.6") {
			t.Errorf("attachment %s was stored", att)
		}
	}
	e.store.checkReached(t)
}

// countingBody is an endless chunked body that counts what was read.
type countingBody struct {
	mu sync.Mutex
	n  int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range p {
		p[i] = ' '
	}
	if len(p) > 0 {
		p[0] = '[' // keeps the JSON open: never a complete document
	}
	c.n += int64(len(p))
	return len(p), nil
}
func (c *countingBody) Close() error { return nil }

// An oversized body without Content-Length is cut at the limit: 413, and
// the handler reads at most the limit plus a little, never to the end.
func TestBodyOverLimitNotReadToTheEnd(t *testing.T) {
	for _, path := range []string{"/foo", "/newpkg", "/foo/-rev/1-r"} {
		t.Run(path, func(t *testing.T) {
			e := newRealHandler(t, Config{})
			body := &countingBody{}
			req := rawRequest(t, "PUT", path, nil)
			req.Body = body
			req.ContentLength = -1
			req.Header.Set("Authorization", "Bearer cnpm_alice")
			req.Header.Set("Content-Type", "application/json")
			rec := e.serve(req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413: %s", rec.Code, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), "larger than this registry accepts") {
				t.Errorf("body %s", rec.Body.String())
			}
			t.Logf("read %d bytes of an endless body (limit %d)", body.n, realLimit)
			const slack = 4096
			if body.n > realLimit+slack {
				t.Errorf("read %d bytes of the body; the limit is %d", body.n, realLimit)
			}
			if rec.Header().Get("Connection") != "close" {
				t.Errorf("413 without Connection: close")
			}
		})
	}
}

// The login body is bounded too: a huge login body is refused without
// being read to the end.
func TestLoginBodyNotReadToTheEnd(t *testing.T) {
	e := newRealHandler(t, Config{})
	body := &countingBody{}
	req := rawRequest(t, "PUT", "/-/user/org.couchdb.user:bob", nil)
	req.Body = body
	req.ContentLength = -1
	rec := e.serve(req)
	if rec.Code/100 != 4 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if body.n > 64<<10+4096 {
		t.Errorf("read %d bytes of the login body", body.n)
	}
}
