package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

func TestNeedsWriteOTP(t *testing.T) {
	writes := registry.Identity{Name: "alice", TwoFactor: registry.TwoFactorAuthAndWrites}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		id     registry.Identity
		want   bool
	}{
		{"publish", "PUT", "/foo", writes, true},
		{"scoped publish", "PUT", "/@acme%2ffoo", writes, true},
		{"unpublish", "DELETE", "/foo/-rev/1-a", writes, true},
		{"dist-tag add", "PUT", "/-/package/foo/dist-tags/beta", writes, true},
		{"access", "POST", "/-/package/foo/access", writes, true},
		{"token create", "POST", "/-/npm/v1/tokens", writes, true},
		{"token revoke", "DELETE", "/-/npm/v1/tokens/token/abcdef", writes, true},
		{"a write route added later", "PATCH", "/-/something/new", writes, true},
		{"install", "GET", "/foo", writes, false},
		{"HEAD", "HEAD", "/foo/-/foo-1.0.0.tgz", writes, false},
		{"login checks its own", "PUT", "/-/user/org.couchdb.user:alice", writes, false},
		{"logout", "DELETE", "/-/user/token/cnpm_x", writes, false},
		{"profile checks its own", "POST", "/-/npm/v1/user", writes, false},
		{"audit", "POST", "/-/npm/v1/security/advisories/bulk", writes, false},
		{"auth-only", "PUT", "/foo", registry.Identity{Name: "alice", TwoFactor: registry.TwoFactorAuthOnly}, false},
		{"no 2FA", "PUT", "/foo", registry.Identity{Name: "alice"}, false},
		{"already verified (Basic with a code)", "PUT", "/foo", registry.Identity{Name: "alice", TwoFactor: registry.TwoFactorAuthAndWrites, OTPVerified: true}, false},
		{"read-only token: 403 without asking", "PUT", "/foo", registry.Identity{Name: "alice", TwoFactor: registry.TwoFactorAuthAndWrites, ReadOnly: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://registry.test"+tc.path, nil)
			if got := needsWriteOTP(r, tc.id); got != tc.want {
				t.Errorf("needsWriteOTP(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

// tfaUsers is fakeUsers with two-factor state in memory.
type tfaUsers struct {
	fakeUsers
	mu  sync.Mutex
	tfa map[string]*registry.TwoFactor
}

func (u *tfaUsers) GetUser(ctx context.Context, name string) (*registry.User, error) {
	user, err := u.fakeUsers.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if t := u.tfa[name]; t != nil {
		cp := *t
		user.TwoFactor = &cp
	}
	return user, nil
}

func (u *tfaUsers) UpdateTwoFactor(_ context.Context, name string, change registry.TwoFactorChange) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := u.tfa[name]
	if cur != nil {
		cp := *cur
		cur = &cp
	}
	next, err := change(cur)
	if err != nil {
		return err
	}
	u.tfa[name] = next
	return nil
}

func currentOTP(t *testing.T, secret string) string {
	t.Helper()
	c, err := registry.TOTPCode(secret, time.Now().Unix()/30)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTwoFactorOverHTTP drives npm profile's protocol and the write gate
// over the real registry.Accounts.
func TestTwoFactorOverHTTP(t *testing.T) {
	const aliceTok, bobTok = "cnpm_aliceTFA", "cnpm_bobTFA"
	users := &tfaUsers{tfa: map[string]*registry.TwoFactor{}}
	tokens := &memTokens{m: map[string]*registry.Token{
		registry.TokenKey(aliceTok): {Key: registry.TokenKey(aliceTok), User: "alice"},
		registry.TokenKey(bobTok):   {Key: registry.TokenKey(bobTok), User: "bob"},
	}}
	store := &recordingStore{MemStore: registrytest.NewMemStore()}
	svc := newService(t, registry.Config{Store: store, Users: users})
	accounts := newAccounts(t, registry.AccountsConfig{Users: users, Tokens: tokens})
	logs := &syncBuffer{}
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20}, realServices(svc, accounts, accounts), zerolog.New(logs))
	if err := svc.Publish(context.Background(), registry.Identity{Name: "alice"}, "foo", mustPublishBody(t, publishDoc(t, "foo", "1.0.0", fuzzTarball))); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, token, otp, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, "http://registry.test"+path, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.7:1234"
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if otp != "" {
			r.Header.Set("npm-otp", otp)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	rec := do("POST", "/-/npm/v1/user", aliceTok, "", `{"tfa":{"password":"secret","mode":"auth-and-writes"}}`)
	var started struct{ TFA string }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &started) != nil || !strings.HasPrefix(started.TFA, "otpauth://totp/") {
		t.Fatalf("enable: %d %s", rec.Code, rec.Body)
	}
	u, _ := url.Parse(started.TFA)
	secret := u.Query().Get("secret")
	rec = do("POST", "/-/npm/v1/user", aliceTok, "", `{"tfa":["`+currentOTP(t, secret)+`"]}`)
	var confirmed struct{ TFA []string }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &confirmed) != nil || len(confirmed.TFA) != 5 {
		t.Fatalf("confirm: %d %s", rec.Code, rec.Body)
	}

	rec = do("GET", "/-/npm/v1/user", aliceTok, "", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"tfa":{"mode":"auth-and-writes","pending":false}`) || strings.Contains(rec.Body.String(), secret) {
		t.Errorf("profile: %d %s", rec.Code, rec.Body)
	}

	rec = do("PUT", "/-/package/foo/dist-tags/beta", aliceTok, "", `"1.0.0"`)
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != "OTP" || !strings.Contains(rec.Body.String(), "one-time pass") {
		t.Errorf("dist-tag without a code: %d %q %s, want 401, WWW-Authenticate: OTP, a one-time password message", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	rec = do("PUT", "/-/package/foo/dist-tags/beta", aliceTok, "999999", `"1.0.0"`)
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != "OTP" {
		t.Errorf("dist-tag with a wrong code: %d %s", rec.Code, rec.Body)
	}
	if rec := do("PUT", "/-/package/foo/dist-tags/beta", aliceTok, currentOTP(t, secret), `"1.0.0"`); rec.Code != 201 {
		t.Errorf("dist-tag with the code: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/foo", aliceTok, "", ""); rec.Code != 200 {
		t.Errorf("reading needs no code: %d %s", rec.Code, rec.Body)
	}
	// bob, with his own password, changes only his own account.
	if rec := do("POST", "/-/npm/v1/user", bobTok, "", `{"tfa":{"password":"secret","mode":"disable"}}`); rec.Code != 200 {
		t.Errorf("bob's disable: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/-/npm/v1/user", aliceTok, "", `{"tfa":{"password":"secret","mode":"disable"}}`); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != "OTP" {
		t.Errorf("alice's disable without a code: %d %s, want the OTP challenge", rec.Code, rec.Body)
	}
	if rec := do("POST", "/-/npm/v1/user", aliceTok, "", `{"email":"x@example.com"}`); rec.Code != 400 {
		t.Errorf("a profile change other than 2FA: %d %s, want 400", rec.Code, rec.Body)
	}
	if users.tfa["alice"] == nil || users.tfa["alice"].Pending {
		t.Errorf("alice's 2FA after bob's request: %+v", users.tfa["alice"])
	}
	// Wrong codes are guesses: the login limits stop them (10 per user
	// and address), as they stop password guesses.
	limited := false
	for range 12 {
		if rec := do("PUT", "/-/package/foo/dist-tags/guess", aliceTok, "000001", `"1.0.0"`); rec.Code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("12 wrong codes from one address were not limited (429)")
	}
	for _, s := range append([]string{secret}, confirmed.TFA...) {
		if strings.Contains(logs.String(), s) {
			t.Fatal("a two-factor secret or recovery code reached the log")
		}
	}
}

// The OTP challenge is exactly what npm-registry-fetch recognises: the
// header split on commas holds "otp".
func TestOTPChallengeHeader(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "/foo", nil)
	writeError(rec, r, registry.E(registry.KindOTPRequired, "this operation requires a one-time password"))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != "OTP" {
		t.Errorf("got %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	rec = httptest.NewRecorder()
	writeError(rec, r, registry.E(registry.KindUnauthorized, "bad token"))
	if strings.Contains(strings.ToLower(rec.Header().Get("WWW-Authenticate")), "otp") {
		t.Errorf("a plain 401 challenges for an OTP: %q", rec.Header().Get("WWW-Authenticate"))
	}
}
