package handlers

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// tokenPageAccounts records the token operations the tokens page calls,
// and refuses them to identities that cannot write, as registry.Accounts
// does.
type tokenPageAccounts struct {
	*fakeAccounts
	createdBy []registry.Identity
	requests  []registry.TokenRequest
	revokedBy []registry.Identity
	revoked   []string
	list      []*registry.Token
}

func (a *tokenPageAccounts) CreateToken(_ context.Context, user registry.Identity, req registry.TokenRequest, _ netip.Addr) (string, *registry.Token, error) {
	if err := user.CanWrite(); err != nil {
		return "", nil, err
	}
	a.createdBy, a.requests = append(a.createdBy, user), append(a.requests, req)
	return "cnpm_newsecret", &registry.Token{Key: strings.Repeat("ab", 32), ReadOnly: req.ReadOnly, CIDR: req.CIDR}, nil
}

func (a *tokenPageAccounts) ListTokens(_ context.Context, user registry.Identity) ([]*registry.Token, error) {
	if user.Anonymous() {
		return nil, registry.E(registry.KindUnauthorized, "log in")
	}
	return a.list, nil
}

func (a *tokenPageAccounts) RevokeToken(_ context.Context, user registry.Identity, ref string) error {
	if err := user.CanWrite(); err != nil {
		return err
	}
	a.revokedBy, a.revoked = append(a.revokedBy, user), append(a.revoked, ref)
	return nil
}

func TestWebTokensPage(t *testing.T) {
	e := newEnv(t, zerolog.Disabled)
	acc := &tokenPageAccounts{fakeAccounts: e.accounts}
	acc.tokens["cnpm_session"] = registry.Identity{Name: "alice", ReadOnly: true, Token: &registry.Token{Key: strings.Repeat("cd", 32)}}
	acc.list = []*registry.Token{{Key: strings.Repeat("cd", 32), Name: "web session", ReadOnly: true}, {Key: strings.Repeat("ef", 32)}}
	pages := &fakePages{}
	svc := fakeServices(t, e.reg, acc, e.pinger)
	svc.Tokens = acc
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Pages: pages}, svc, zerolog.Nop())
	const csrf = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	session := "Cookie: " + sessionCookie + "=cnpm_session; " + csrfCookie + "=" + csrf
	form := "Content-Type: application/x-www-form-urlencoded"

	// Anonymous: sent to log in, and back.
	rec := e.do(t, "GET", "/-/web/tokens", nil)
	wantStatus(t, rec, http.StatusSeeOther)
	if loc := rec.Header().Get("Location"); loc != "/-/web/login?next=%2F-%2Fweb%2Ftokens" {
		t.Errorf("anonymous visitor sent to %q", loc)
	}
	rec = e.do(t, "POST", "/-/web/tokens/create", strings.NewReader("csrf="+csrf+"&password=secret"), form, "Cookie: "+csrfCookie+"="+csrf)
	wantStatus(t, rec, http.StatusSeeOther)
	if len(acc.requests) != 0 {
		t.Fatalf("an anonymous post created a token")
	}

	// The list, with the session's own token marked and the revoke asked.
	rec = e.do(t, "GET", "/-/web/tokens?revoke="+strings.Repeat("ef", 32), nil, session)
	wantStatus(t, rec, http.StatusOK)
	p := pages.tokens[len(pages.tokens)-1]
	if len(p.Tokens) != 2 || p.Session == nil || p.Session.Key != strings.Repeat("cd", 32) || p.Revoke == nil || p.Revoke.Key != strings.Repeat("ef", 32) || p.CSRF != csrf {
		t.Errorf("tokens page got %+v", p)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "" && !strings.Contains(cc, "no-store") && !strings.Contains(cc, "no-cache") {
		t.Errorf("Cache-Control %q", cc)
	}

	create := url.Values{"csrf": {csrf}, "password": {"secret"}, "readonly": {"1"}, "cidr": {"10.0.0.0/8, 192.168.1.1"}, "name": {"ci"}, "expires": {"30"}}
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
		want    int
	}{
		{"no csrf", url.Values{"password": {"secret"}}, nil, http.StatusForbidden},
		{"wrong csrf", url.Values{"csrf": {strings.Repeat("0", 64)}, "password": {"secret"}}, nil, http.StatusForbidden},
		{"cross-site", create, []string{"Sec-Fetch-Site: cross-site"}, http.StatusForbidden},
		{"foreign origin", create, []string{"Origin: https://evil.example"}, http.StatusForbidden},
		{"no password", url.Values{"csrf": {csrf}}, nil, http.StatusUnauthorized},
		{"wrong password", url.Values{"csrf": {csrf}, "password": {"nope"}}, nil, http.StatusUnauthorized},
		{"bad expiry", url.Values{"csrf": {csrf}, "password": {"secret"}, "expires": {"-3"}}, nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, "POST", "/-/web/tokens/create", strings.NewReader(tc.form.Encode()), append([]string{form, session}, tc.headers...)...)
			wantStatus(t, rec, tc.want)
			if len(acc.requests) != 0 {
				t.Fatalf("a refused form created a token: %+v", acc.requests)
			}
			if p := pages.tokens[len(pages.tokens)-1]; p.Error == "" || p.Created != "" {
				t.Errorf("page after a refused create: %+v", p)
			}
		})
	}
	// A GET never changes anything (it is left to the pages: a 404 there).
	e.do(t, "GET", "/-/web/tokens/create?"+create.Encode(), nil, session)
	if len(acc.requests) != 0 || pages.calls[len(pages.calls)-1] != "web /-/web/tokens/create" {
		t.Errorf("GET /-/web/tokens/create: %d tokens created, pages %v", len(acc.requests), pages.calls)
	}

	rec = e.do(t, "POST", "/-/web/tokens/create", strings.NewReader(create.Encode()), form, session)
	wantStatus(t, rec, http.StatusOK)
	if len(acc.requests) != 1 {
		t.Fatalf("%d tokens created", len(acc.requests))
	}
	if by, req := acc.createdBy[0], acc.requests[0]; by.Name != "alice" || by.ReadOnly || !req.ReadOnly || req.Password != "secret" ||
		strings.Join(req.CIDR, "|") != "10.0.0.0/8|192.168.1.1" || req.Name != "ci" || req.Expires != 30 {
		t.Errorf("CreateToken(%+v, %+v)", by, req)
	}
	if p := pages.tokens[len(pages.tokens)-1]; p.Created != "cnpm_newsecret" {
		t.Errorf("the new token is not shown: %+v", p)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with the new token has Cache-Control %q", cc)
	}

	// Revoke: the password again, then back to the list.
	revoke := url.Values{"csrf": {csrf}, "key": {strings.Repeat("ef", 32)}}
	rec = e.do(t, "POST", "/-/web/tokens/revoke", strings.NewReader(revoke.Encode()), form, session)
	wantStatus(t, rec, http.StatusUnauthorized)
	if len(acc.revoked) != 0 {
		t.Fatal("revoked without the password")
	}
	if p := pages.tokens[len(pages.tokens)-1]; p.Revoke == nil || p.Revoke.Key != strings.Repeat("ef", 32) {
		t.Errorf("a refused revoke does not ask again: %+v", p)
	}
	revoke.Set("password", "secret")
	rec = e.do(t, "POST", "/-/web/tokens/revoke", strings.NewReader(revoke.Encode()), form, session)
	wantStatus(t, rec, http.StatusSeeOther)
	if loc := rec.Header().Get("Location"); loc != "/-/web/tokens?revoked=efefef" || len(acc.revoked) != 1 || acc.revoked[0] != strings.Repeat("ef", 32) || acc.revokedBy[0].ReadOnly {
		t.Errorf("revoke: Location %q, revoked %v by %+v", loc, acc.revoked, acc.revokedBy)
	}
	// Revoking the session's own token logs the browser out.
	revoke.Set("key", strings.Repeat("cd", 32))
	rec = e.do(t, "POST", "/-/web/tokens/revoke", strings.NewReader(revoke.Encode()), form, session)
	wantStatus(t, rec, http.StatusSeeOther)
	if c := cookieOf(rec, sessionCookie); c == nil || c.MaxAge >= 0 || rec.Header().Get("Location") != "/" {
		t.Errorf("revoking the session: cookie %+v, Location %q", c, rec.Header().Get("Location"))
	}
}
