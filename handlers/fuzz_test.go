package handlers

// FuzzRequestPath drives handlers.New, over the real registry.Service, the
// real registry.Accounts and in-memory stores, with arbitrary request
// lines: never a 5xx, never a panic, and no name or attachment with a
// path trick ever reaches the store. scripts/test.sh fuzzes it briefly:
//
//	go test -run '^$' -fuzz '^FuzzRequestPath$' -fuzztime 30s ./handlers/

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// memTokens is an in-memory registry.TokenStore (and TokenLister).
type memTokens struct {
	mu sync.Mutex
	m  map[string]*registry.Token
}

func (s *memTokens) PutToken(_ context.Context, t *registry.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *t
	s.m[t.Key] = &cp
	return nil
}

func (s *memTokens) GetToken(_ context.Context, key string) (*registry.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[key]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no token")
	}
	cp := *t
	return &cp, nil
}

func (s *memTokens) DeleteToken(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		return registry.E(registry.KindNotFound, "no token")
	}
	delete(s.m, key)
	return nil
}

func (s *memTokens) ListTokens(_ context.Context, user string) ([]*registry.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*registry.Token
	for _, t := range s.m {
		if t.User == user {
			cp := *t
			out = append(out, &cp)
		}
	}
	return out, nil
}

var fuzzMethods = []string{"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS", "GET"}

func pathSeeds(tb testing.TB) []struct {
	sel    uint8
	target string
	body   []byte
} {
	pub := []byte(publishJSON(tb, "foo", "1.1.0"))
	return []struct {
		sel    uint8
		target string
		body   []byte
	}{
		{0, "/foo", nil},
		{1, "/@s%2fp", nil},
		{8, "/foo/-/foo-1.0.0.tgz", nil},
		{9, "/foo/-/..%2f..%2fetc%2fpasswd", nil},
		{8, "/foo/-/foo-1.0.0.tgz/../x", nil},
		{0, "/%2e%2e", nil},
		{0, "/node_modules", nil},
		{8, "/foo/latest", nil},
		{8, "/foo/v1.0.0", nil},
		{10, "/foo", pub},
		{10, "/foo/-rev/1-r", []byte(`{"_id":"foo","_rev":"1-r","name":"foo","maintainers":[{"name":"bob"}]}`)},
		{11, "/foo/-rev/1-r", nil},
		{11, "/foo/-/foo-1.0.0.tgz/-rev/1-r", nil},
		{8, "/-/package/foo/dist-tags", nil},
		{10, "/-/package/foo/dist-tags/beta", []byte(`"1.0.0"`)},
		{12, "/-/package/foo/access", []byte(`{"access":"restricted"}`)},
		{8, "/-/package/foo/collaborators", nil},
		{8, "/-/v1/search?text=foo&size=5", nil},
		{8, "/-/npm/v1/tokens", nil},
		{12, "/-/npm/v1/tokens", []byte(`{"password":"secret","readonly":true,"cidr_whitelist":["10.0.0.0/8"]}`)},
		{11, "/-/npm/v1/tokens/token/abcdef", nil},
		{2, "/-/user/org.couchdb.user:bob", []byte(`{"name":"bob","password":"secret"}`)},
		{8, "/-/user/org.couchdb.user:alice", nil},
		{3, "/-/user/token/cnpm_x", nil},
		{8, "/-/whoami", nil},
		{8, "/-/ping", nil},
		{4, "/-/v1/login", nil},
		{12, "/-/npm/v1/security/advisories/bulk", []byte(`{}`)},
		{8, "/-/user/alice/package", nil},
		{8, "/-/org/s/package", nil},
		{8, "/-/_view/starredByUser?key=%22alice%22", nil},
		{0, "//foo", nil},
		{0, "/foo?write=true", nil},
		{16, "/foo", nil},
		{24, "/foo", nil},
	}
}

func FuzzRequestPath(f *testing.F) {
	for _, s := range pathSeeds(f) {
		f.Add(s.sel, s.target, s.body)
	}
	f.Fuzz(func(t *testing.T, sel uint8, target string, body []byte) {
		method := fuzzMethods[sel&7]
		raw := method + " " + target + " HTTP/1.1\r\nHost: registry.test\r\n"
		switch (sel >> 3) & 3 {
		case 1:
			raw += "Authorization: Bearer " + fuzzToken + "\r\n"
		case 2:
			raw += "Authorization: Basic YWxpY2U6c2VjcmV0\r\n" // alice:secret
		case 3:
			raw += "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n" // alice:wrong
		}
		if sel&0x20 != 0 {
			raw += "Accept: application/vnd.npm.install-v1+json\r\n"
		}
		raw += fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + string(body))))
		if err != nil {
			return // the server would answer 400 itself
		}
		req.RemoteAddr = "192.0.2.1:1234"

		store := &recordingStore{MemStore: registrytest.NewMemStore()}
		svc := newService(t, registry.Config{Store: store})
		accounts := newAccounts(t, registry.AccountsConfig{Users: fakeUsers{}, Tokens: &memTokens{m: map[string]*registry.Token{
			registry.TokenKey(fuzzToken): {Key: registry.TokenKey(fuzzToken), User: "alice", Email: "alice@example.com"},
		}}, AllowSignup: true})
		logs := &syncBuffer{}
		h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20}, realServices(svc, accounts, accounts), zerolog.New(logs))
		if err := svc.Publish(context.Background(), registry.Identity{Name: "alice"}, "foo", mustPublishBody(t, publishDoc(t, "foo", "1.0.0", fuzzTarball))); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, rec.Code, rec.Body.String())
		}
		if bytes.Contains([]byte(logs.String()), []byte("handler panicked")) {
			t.Fatalf("%s %q: a handler panicked", method, target)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s %q: no nosniff", method, target)
		}
		store.checkReached(t)
	})
}

const fuzzToken = "cnpm_fuzzTokenForAlice"

var fuzzTarball = testkit.Tarball("foo", "1.0.0")
