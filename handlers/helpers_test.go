package handlers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

const publicURL = "https://npm.example.com"

// fakeRegistry serves fixed packuments and tarballs and records publishes.
type fakeRegistry struct {
	Registry // nil; keeps the fake building if the interface grows

	mu        sync.Mutex
	local     int // PackumentForWrite calls
	packs     map[string]*registry.Packument
	tarballs  map[string][]byte // "name@version"
	err       error             // returned by every call when set
	panicWith any               // every call panics with it when set
	published []publishCall
	heads     int
	readers   []registry.Identity
}

type publishCall struct {
	user registry.Identity
	name string
	body *registry.PublishBody
}

func (f *fakeRegistry) Packument(_ context.Context, user registry.Identity, name string) (*registry.Packument, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	f.readers = append(f.readers, user)
	if f.err != nil {
		return nil, f.err
	}
	p, ok := f.packs[name]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no package %s", name)
	}
	return p, nil
}

// SharedPackument is Packument.
func (f *fakeRegistry) SharedPackument(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error) {
	return f.Packument(ctx, user, name)
}

// PackumentForWrite is Packument, counted: the fake has no mirror.
func (f *fakeRegistry) PackumentForWrite(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error) {
	f.mu.Lock()
	f.local++
	f.mu.Unlock()
	return f.Packument(ctx, user, name)
}

func (f *fakeRegistry) localReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local
}

func (f *fakeRegistry) Tarball(_ context.Context, user registry.Identity, name, file string, head bool) (*registry.Tarball, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	if f.err != nil {
		return nil, f.err
	}
	v, err := registry.VersionFromTarball(name, file)
	if err != nil {
		return nil, err
	}
	b, ok := f.tarballs[name+"@"+v]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no tarball")
	}
	if head {
		f.heads++
		return &registry.Tarball{Size: int64(len(b)), Digest: "md5-abc"}, nil
	}
	return &registry.Tarball{Body: io.NopCloser(bytes.NewReader(b)), Size: int64(len(b)), Digest: "md5-abc"}, nil
}

func (f *fakeRegistry) Publish(_ context.Context, user registry.Identity, name string, body *registry.PublishBody) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	if f.err != nil {
		return f.err
	}
	f.published = append(f.published, publishCall{user, name, body})
	return nil
}

// fakeAccounts knows tokens and passwords.
type fakeAccounts struct {
	Accounts // nil; keeps the fake building if the interface grows

	mu        sync.Mutex
	tokens    map[string]registry.Identity
	passwords map[string]string
	signup    bool
	loggedOut []string
	logins    []string
	err       error
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{
		tokens: map[string]registry.Identity{
			"cnpm_alice":    {Name: "alice", Email: "alice@example.com"},
			"cnpm_readonly": {Name: "alice", ReadOnly: true},
		},
		passwords: map[string]string{"alice": "secret"},
		signup:    true,
	}
}

func (f *fakeAccounts) Login(_ context.Context, name, password, email, _ string, _ netip.Addr) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if err := registry.ValidateUsername(name); err != nil {
		return "", err
	}
	if password == "" {
		return "", registry.E(registry.KindInvalid, "a password is required")
	}
	p, ok := f.passwords[name]
	switch {
	case !ok && !f.signup:
		return "", registry.E(registry.KindForbidden, "sign-up is disabled")
	case !ok:
		f.passwords[name] = password
	case p != password:
		return "", registry.E(registry.KindUnauthorized, "name or password is incorrect")
	}
	f.logins = append(f.logins, name)
	tok := fmt.Sprintf("cnpm_issued_%s_%d", name, len(f.logins))
	f.tokens[tok] = registry.Identity{Name: name, Email: email}
	return tok, nil
}

func (f *fakeAccounts) User(_ context.Context, name string) (*registry.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.passwords[name]; !ok {
		return nil, registry.E(registry.KindNotFound, "no user %s", name)
	}
	return &registry.User{Name: name, Email: name + "@example.com"}, nil
}

func (f *fakeAccounts) ByToken(_ context.Context, token string, _ netip.Addr) (registry.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return registry.Identity{}, f.err
	}
	id, ok := f.tokens[token]
	if !ok {
		return registry.Identity{}, registry.E(registry.KindUnauthorized, "invalid or revoked token")
	}
	return id, nil
}

func (f *fakeAccounts) ByPassword(_ context.Context, name, password, _ string, _ netip.Addr) (registry.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.passwords[name]; !ok || p != password {
		return registry.Identity{}, registry.E(registry.KindUnauthorized, "name or password is incorrect")
	}
	return registry.Identity{Name: name}, nil
}

func (f *fakeAccounts) Logout(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.loggedOut = append(f.loggedOut, token)
	delete(f.tokens, token)
	return nil
}

type fakePinger struct{ err error }

func (p fakePinger) Ping(context.Context) error { return p.err }

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines parses the JSON log lines.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// requestLines are the per-request access log lines.
func (b *syncBuffer) requestLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range b.lines(t) {
		if l["message"] == "request" {
			out = append(out, l)
		}
	}
	return out
}

type env struct {
	reg      *fakeRegistry
	accounts *fakeAccounts
	pinger   *fakePinger
	logs     *syncBuffer
	h        http.Handler
}

// newEnv builds the handler over fakes, logging at level (Debug catches
// everything).
func newEnv(t *testing.T, level zerolog.Level) *env {
	t.Helper()
	e := &env{
		reg:      &fakeRegistry{packs: map[string]*registry.Packument{}, tarballs: map[string][]byte{}},
		accounts: newFakeAccounts(),
		pinger:   &fakePinger{},
		logs:     &syncBuffer{},
	}
	for _, doc := range []string{fooDoc, scopedDoc} {
		var p registry.Packument
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatalf("fixture: %v", err)
		}
		e.reg.packs[p.Name] = &p
	}
	e.reg.tarballs["foo@1.0.0"] = bytes.Repeat([]byte("foo-tarball-bytes "), 1000)
	e.reg.tarballs["@s/p@1.0.0"] = []byte("scoped tarball bytes")
	log := zerolog.New(e.logs).Level(level)
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096}, fakeServices(t, e.reg, e.accounts, e.pinger), log)
	return e
}

// do serves one request. headers are "Key: value" strings.
func (e *env) do(t *testing.T, method, target string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ": ")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %q", err, rec.Body.String())
	}
	return m
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
}

var longReadme = strings.Repeat("This readme is long enough to be worth compressing. ", 60)

var fooDoc = `{
  "_id": "foo", "_rev": "3-abc", "name": "foo", "description": "a foo",
  "readme": ` + mustQuote(longReadme) + `,
  "dist-tags": {"latest": "1.0.0", "beta": "2.0.0-beta.1"},
  "maintainers": [{"name": "alice"}],
  "time": {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z",
           "1.0.0": "2024-01-01T00:00:00.000Z", "2.0.0-beta.1": "2024-02-01T00:00:00.000Z"},
  "versions": {
    "1.0.0": {"name": "foo", "version": "1.0.0", "scripts": {"test": "tap"}, "dependencies": {"a": "1"},
              "dist": {"shasum": "aa", "integrity": "sha512-bb", "tarball": "/foo/-/foo-1.0.0.tgz"}},
    "2.0.0-beta.1": {"name": "foo", "version": "2.0.0-beta.1",
              "dist": {"shasum": "cc", "integrity": "sha512-dd", "tarball": "/foo/-/foo-2.0.0-beta.1.tgz"}}
  },
  "_attachments": {"foo-1.0.0.tgz": {"content_type": "application/octet-stream", "digest": "md5-abc", "length": 18000, "stub": true}}
}`

var scopedDoc = `{
  "_id": "@s/p", "_rev": "1-xyz", "name": "@s/p",
  "dist-tags": {"latest": "1.0.0"}, "maintainers": [{"name": "alice"}],
  "time": {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "1.0.0": "2024-01-01T00:00:00.000Z"},
  "versions": {"1.0.0": {"name": "@s/p", "version": "1.0.0", "dist": {"shasum": "ee", "tarball": "/@s/p/-/p-1.0.0.tgz"}}}
}`

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// httpRequest builds a request without httptest.NewRequest's panics on
// odd paths.
func httpRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://registry.test"+target, nil)
	if err != nil {
		t.Fatalf("NewRequest(%s): %v", target, err)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	req.RequestURI = target
	return req
}

func serve(e *env, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// newService builds a registry for a test from cfg (registrytest.NewService)
// whose accounts, unless cfg names others, are fakeUsers.
func newService(t testing.TB, cfg registry.Config) *registry.Service {
	t.Helper()
	if cfg.Users == nil {
		cfg.Users = fakeUsers{}
	}
	return registrytest.NewService(t, cfg)
}

// realServices are the Services of a real registry svc.
func realServices(svc *registry.Service, accounts Accounts, tokens TokenCommands) Services {
	return Services{Registry: svc, Commands: svc, Orgs: svc, Accounts: accounts, Tokens: tokens, DB: fakePinger{}}
}

// fakeServices are the Services around reg, a fake serving packages only:
// the command surface is a registry over an empty store, and npm token
// works on no tokens.
func fakeServices(t testing.TB, reg Registry, accounts Accounts, db Pinger) Services {
	cmds := newService(t, registry.Config{})
	return Services{Registry: reg, Commands: cmds, Orgs: cmds, Accounts: accounts, Tokens: noTokens(t), DB: db}
}

// noTokens is npm token over an empty token store.
func noTokens(t testing.TB) *registry.Accounts {
	return newAccounts(t, registry.AccountsConfig{Users: fakeUsers{}, Tokens: &memTokens{m: map[string]*registry.Token{}}})
}

// newAccounts builds the account service from cfg, failing the test when
// it cannot.
func newAccounts(t testing.TB, cfg registry.AccountsConfig) *registry.Accounts {
	t.Helper()
	a, err := registry.NewAccounts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mustNew is New for a test.
func mustNew(t testing.TB, cfg Config, svc Services, log zerolog.Logger) http.Handler {
	t.Helper()
	h, err := New(cfg, svc, log)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
