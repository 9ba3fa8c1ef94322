package registry

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeUsers struct {
	UserStore // nil; keeps the fake building if the interface grows

	mu        sync.Mutex
	users     map[string]*User
	passwords map[string]string
	imported  map[string]string // SetPassword drops these
	created   []string
	// raceCreate makes the next CreateUser fail with a conflict after
	// creating the user, as if another request had created it first.
	raceCreate bool
}

func newFakeUsers() *fakeUsers {
	return &fakeUsers{users: map[string]*User{}, passwords: map[string]string{}, imported: map[string]string{}}
}

func (f *fakeUsers) add(name, password, email string) {
	f.users[name] = &User{Name: name, Email: email}
	f.passwords[name] = password
}

func (f *fakeUsers) GetUser(_ context.Context, name string) (*User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return nil, E(KindNotFound, "no user %s", name)
	}
	cp := *u
	return &cp, nil
}

func (f *fakeUsers) CreateUser(_ context.Context, name, password, email string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[name]; ok {
		return E(KindConflict, "user %s exists", name)
	}
	f.users[name] = &User{Name: name, Email: email}
	f.passwords[name] = password
	if f.raceCreate {
		f.raceCreate = false
		return E(KindConflict, "user %s exists", name)
	}
	f.created = append(f.created, name)
	return nil
}

func (f *fakeUsers) CheckPassword(_ context.Context, name, password string, _ netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.passwords[name]; !ok || p != password {
		return E(KindUnauthorized, "name or password is incorrect")
	}
	return nil
}

type fakeTokens struct {
	TokenStore // nil; keeps the fake building if the interface grows

	mu      sync.Mutex
	tokens  map[string]Token
	seen    []string // JSON of every token record the store was given
	deleted []string
	err     error
}

func newFakeTokens() *fakeTokens { return &fakeTokens{tokens: map[string]Token{}} }

func (f *fakeTokens) PutToken(_ context.Context, t *Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	b, _ := json.Marshal(t)
	f.seen = append(f.seen, string(b))
	f.tokens[t.Key] = *t
	return nil
}

func (f *fakeTokens) GetToken(_ context.Context, key string) (*Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	t, ok := f.tokens[key]
	if !ok {
		return nil, E(KindNotFound, "no token")
	}
	return &t, nil
}

func (f *fakeTokens) DeleteToken(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.seen = append(f.seen, "delete "+key)
	if _, ok := f.tokens[key]; !ok {
		return E(KindNotFound, "no token")
	}
	delete(f.tokens, key)
	f.deleted = append(f.deleted, key)
	return nil
}

// mustAccounts builds Accounts from a config a test knows to be complete.
func mustAccounts(cfg AccountsConfig) *Accounts {
	a, err := NewAccounts(cfg)
	if err != nil {
		panic(err)
	}
	return a
}

// An account service missing a store is refused when it is built.
func TestNewAccountsRequiresStores(t *testing.T) {
	tests := []struct {
		name    string
		cfg     AccountsConfig
		wantErr string // "": built
	}{
		{"both stores", AccountsConfig{Users: newFakeUsers(), Tokens: newFakeTokens()}, ""},
		{"no users", AccountsConfig{Tokens: newFakeTokens()}, "missing Users"},
		{"no tokens", AccountsConfig{Users: newFakeUsers()}, "missing Tokens"},
		{"neither", AccountsConfig{AllowSignup: true}, "missing Users, Tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAccounts(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || a == nil {
					t.Fatalf("NewAccounts: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewAccounts error = %v, want %q", err, tc.wantErr)
			}
			wantKind(t, err, KindInternal)
		})
	}
}

var accountsNow = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// newTestAccounts is Accounts over fresh fakes, with sign-up on or off and
// limited to domains (none: any).
func newTestAccounts(signup bool, domains ...string) (*Accounts, *fakeUsers, *fakeTokens) {
	u, tk := newFakeUsers(), newFakeTokens()
	a := mustAccounts(AccountsConfig{Users: u, Tokens: tk, AllowSignup: signup, SignupEmailDomains: domains})
	a.now = func() time.Time { return accountsNow }
	return a, u, tk
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, "cnpm_") || len(tok) != len("cnpm_")+43 {
			t.Fatalf("token %q: want cnpm_ and 43 base64url characters (256 bits)", tok)
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
	}
	if k := TokenKey("cnpm_x"); len(k) != 64 || k != TokenKey("cnpm_x") || k == TokenKey("cnpm_y") {
		t.Errorf("TokenKey = %q: want a stable 64-hex-digit sha256", k)
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name     string
		signup   bool
		existing bool
		user     string
		password string
		email    string
		race     bool
		kind     Kind // -1: success
		created  bool
	}{
		{"new user with sign-up", true, false, "alice", "Sturdy-pw-42x", "alice@example.com", false, -1, true},
		{"new user without email", true, false, "alice", "Sturdy-pw-42x", "", false, KindInvalid, false},
		{"new user, short password", true, false, "alice", "pw", "alice@example.com", false, KindInvalid, false},
		{"new user, common password", true, false, "alice", "Password123", "alice@example.com", false, KindInvalid, false},
		{"new user, password is the name", true, false, "alicealice", "AliceAlice", "a@example.com", false, KindInvalid, false},
		{"existing user, right password", true, true, "alice", "secret", "", false, -1, false},
		{"existing user, right password, sign-up off", false, true, "alice", "secret", "", false, -1, false},
		{"existing user, wrong password", true, true, "alice", "wrong", "", false, KindUnauthorized, false},
		{"new user, sign-up off", false, false, "alice", "Sturdy-pw-42x", "alice@example.com", false, KindForbidden, false},
		{"invalid user name", true, false, "Alice", "pw", "", false, KindInvalid, false},
		{"empty password", true, false, "alice", "", "", false, KindInvalid, false},
		{"empty password for an existing user", true, true, "alice", "", "", false, KindInvalid, false},
		{"new user with a bad email", true, false, "alice", "Sturdy-pw-42x", "not-an-email", false, KindInvalid, false},
		{"created concurrently, same password", true, false, "alice", "Sturdy-pw-42x", "alice@example.com", true, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, users, tokens := newTestAccounts(tc.signup)
			if tc.existing {
				users.add("alice", "secret", "alice@old.example")
			}
			users.raceCreate = tc.race
			tok, err := a.Login(t.Context(), tc.user, tc.password, tc.email, "", netip.Addr{})
			if tc.kind != -1 {
				wantKind(t, err, tc.kind)
				if len(tokens.tokens) != 0 {
					t.Errorf("a token was stored for a failed login")
				}
				if len(users.created) != 0 {
					t.Errorf("users created: %v", users.created)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if (len(users.created) == 1) != tc.created {
				t.Errorf("created = %v, want created=%v", users.created, tc.created)
			}
			stored, ok := tokens.tokens[TokenKey(tok)]
			if !ok {
				t.Fatalf("no token stored under TokenKey(token)")
			}
			if stored.User != "alice" || !stored.Created.Equal(accountsNow) || stored.ReadOnly || stored.Expires != nil || stored.Name != LoginTokenName {
				t.Errorf("stored token = %+v", stored)
			}
			if tc.existing && stored.Email != "alice@old.example" {
				t.Errorf("token email = %q, want the account's", stored.Email)
			}
			// Only the hash reaches the store.
			for _, rec := range tokens.seen {
				if strings.Contains(rec, tok) || strings.Contains(rec, strings.TrimPrefix(tok, "cnpm_")) {
					t.Errorf("the token store saw the token itself: %s", rec)
				}
			}
			id, err := a.ByToken(t.Context(), tok, netip.MustParseAddr("192.0.2.1"))
			if err != nil || id.Name != "alice" || id.Token == nil {
				t.Errorf("ByToken(new token) = %+v, %v", id, err)
			}
		})
	}
}

func TestLoginStoreErrors(t *testing.T) {
	a, users, tokens := newTestAccounts(true)
	users.add("alice", "secret", "")
	tokens.err = E(KindUnavailable, "tokens db down")
	_, err := a.Login(t.Context(), "alice", "secret", "", "", netip.Addr{})
	wantKind(t, err, KindUnavailable)
}

func TestByToken(t *testing.T) {
	past := accountsNow.Add(-time.Second)
	future := accountsNow.Add(time.Hour)
	tests := []struct {
		name  string
		rec   Token // Key is filled in
		token string
		addr  string
		kind  Kind // -1: success
	}{
		{"plain", Token{User: "alice", Email: "a@x"}, "", "192.0.2.1", -1},
		{"not yet expired", Token{User: "alice", Expires: &future}, "", "192.0.2.1", -1},
		{"expired", Token{User: "alice", Expires: &past}, "", "192.0.2.1", KindUnauthorized},
		{"expires this instant", Token{User: "alice", Expires: &accountsNow}, "", "192.0.2.1", KindUnauthorized},
		{"inside CIDR", Token{User: "alice", CIDR: []string{"10.0.0.0/8"}}, "", "10.1.2.3", -1},
		{"outside CIDR", Token{User: "alice", CIDR: []string{"10.0.0.0/8"}}, "", "192.0.2.1", KindUnauthorized},
		{"second CIDR matches", Token{User: "alice", CIDR: []string{"10.0.0.0/8", "192.0.2.0/24"}}, "", "192.0.2.7", -1},
		{"exact address entry", Token{User: "alice", CIDR: []string{"192.0.2.1"}}, "", "192.0.2.1", -1},
		{"IPv4-mapped client", Token{User: "alice", CIDR: []string{"10.0.0.0/8"}}, "", "::ffff:10.1.2.3", -1},
		{"IPv6 CIDR", Token{User: "alice", CIDR: []string{"2001:db8::/32"}}, "", "2001:db8::1", -1},
		{"unknown client address with CIDR", Token{User: "alice", CIDR: []string{"0.0.0.0/0"}}, "", "", KindUnauthorized},
		{"read-only", Token{User: "alice", ReadOnly: true}, "", "192.0.2.1", -1},
		{"unknown token", Token{}, "cnpm_unknown", "192.0.2.1", KindUnauthorized},
		{"no prefix", Token{}, "abc", "192.0.2.1", KindUnauthorized},
		{"empty", Token{}, "", "192.0.2.1", KindUnauthorized},
		{"too long", Token{}, "cnpm_" + strings.Repeat("a", 300), "192.0.2.1", KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, users, tokens := newTestAccounts(false)
			users.add("alice", "Sturdy-pw-42x", "a@x")
			tok := tc.token
			if tc.rec.User != "" {
				tok = "cnpm_" + strings.ReplaceAll(tc.name, " ", "_")
				rec := tc.rec
				rec.Key = TokenKey(tok)
				tokens.tokens[rec.Key] = rec
			}
			var addr netip.Addr
			if tc.addr != "" {
				addr = netip.MustParseAddr(tc.addr)
			}
			id, err := a.ByToken(t.Context(), tok, addr)
			if tc.kind != -1 {
				wantKind(t, err, tc.kind)
				if !id.Anonymous() {
					t.Errorf("identity %+v returned with an error", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("ByToken: %v", err)
			}
			if id.Name != "alice" || id.Email != tc.rec.Email || id.ReadOnly != tc.rec.ReadOnly || id.Token == nil || id.Token.Key != TokenKey(tok) {
				t.Errorf("identity = %+v", id)
			}
			if tc.rec.ReadOnly {
				wantKind(t, id.CanWrite(), KindForbidden)
			} else if err := id.CanWrite(); err != nil {
				t.Errorf("CanWrite: %v", err)
			}
		})
	}
}

func TestByTokenStoreError(t *testing.T) {
	a, _, tokens := newTestAccounts(false)
	tokens.err = E(KindUnavailable, "down")
	_, err := a.ByToken(t.Context(), "cnpm_x", netip.MustParseAddr("192.0.2.1"))
	wantKind(t, err, KindUnavailable)
}

func TestByPassword(t *testing.T) {
	tests := []struct {
		name, user, password string
		kind                 Kind
	}{
		{"right", "alice", "secret", -1},
		{"wrong password", "alice", "nope", KindUnauthorized},
		{"unknown user", "bob", "secret", KindUnauthorized},
		{"invalid name", "Alice", "secret", KindUnauthorized},
		{"empty password", "alice", "", KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, users, _ := newTestAccounts(false)
			users.add("alice", "secret", "alice@example.com")
			id, err := a.ByPassword(t.Context(), tc.user, tc.password, "", netip.Addr{})
			if tc.kind != -1 {
				wantKind(t, err, tc.kind)
				return
			}
			if err != nil || id.Name != "alice" || id.Email != "alice@example.com" || id.Token != nil || id.ReadOnly {
				t.Errorf("ByPassword = %+v, %v", id, err)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	a, users, tokens := newTestAccounts(true)
	users.add("alice", "secret", "")
	tok, err := a.Login(t.Context(), "alice", "secret", "", "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(t.Context(), tok); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if len(tokens.deleted) != 1 || tokens.deleted[0] != TokenKey(tok) {
		t.Errorf("deleted = %v, want the token's key", tokens.deleted)
	}
	_, err = a.ByToken(t.Context(), tok, netip.MustParseAddr("192.0.2.1"))
	wantKind(t, err, KindUnauthorized)
	if err := a.Logout(t.Context(), tok); err != nil {
		t.Errorf("Logout of a revoked token: %v", err)
	}
	if err := a.Logout(t.Context(), "cnpm_never_issued"); err != nil {
		t.Errorf("Logout of an unknown token: %v", err)
	}
	tokens.err = E(KindUnavailable, "down")
	wantKind(t, a.Logout(t.Context(), "cnpm_x"), KindUnavailable)
}

func TestAccountsUser(t *testing.T) {
	a, users, _ := newTestAccounts(false)
	users.add("alice", "secret", "alice@example.com")
	u, err := a.User(t.Context(), "alice")
	if err != nil || u.Name != "alice" || u.Email != "alice@example.com" {
		t.Errorf("User(alice) = %+v, %v", u, err)
	}
	_, err = a.User(t.Context(), "bob")
	wantKind(t, err, KindNotFound)
	_, err = a.User(t.Context(), "../_users")
	wantKind(t, err, KindNotFound)
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name string
		id   Identity
		kind Kind
	}{
		{"anonymous", Identity{}, KindUnauthorized},
		{"read-only", Identity{Name: "a", ReadOnly: true}, KindForbidden},
		{"writer", Identity{Name: "a"}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.CanWrite()
			if tc.kind == -1 {
				if err != nil {
					t.Errorf("CanWrite: %v", err)
				}
				return
			}
			wantKind(t, err, tc.kind)
		})
	}
	if p := (Identity{Name: "a", Email: "a@x"}).Person(); p != (Person{Name: "a", Email: "a@x"}) {
		t.Errorf("Person = %+v", p)
	}
}

func TestErrors(t *testing.T) {
	cause := E(KindUnavailable, "inner")
	w := Wrap(KindConflict, cause, "outer %d", 1)
	if KindOf(w) != KindConflict || ReasonOf(w) != "outer 1" || w.Error() != "outer 1: inner" {
		t.Errorf("Wrap: kind %d reason %q error %q", KindOf(w), ReasonOf(w), w.Error())
	}
	if KindOf(context.Canceled) != KindInternal || ReasonOf(context.Canceled) != "internal error" {
		t.Errorf("plain errors must be internal with a generic reason")
	}
	if IsKind(nil, KindInternal) {
		t.Errorf("IsKind(nil) = true")
	}
}

// loopUsers never finds the user but always reports that it exists, as a
// lagging replica or a name taken by a non-user document would.
type loopUsers struct {
	fakeUsers
	creates int
}

func (f *loopUsers) GetUser(context.Context, string) (*User, error) {
	return nil, E(KindNotFound, "no user")
}

func (f *loopUsers) CreateUser(context.Context, string, string, string) error {
	f.creates++
	if f.creates > 10 { // the test's own brake: the code has none
		return E(KindInternal, "loop broken by the test")
	}
	return E(KindConflict, "exists")
}

// Login retries a sign-up conflict by calling itself with no bound; when
// the store keeps saying "conflict" and "not found", it recurses until the
// stack overflows (a crash, not an error).
func TestLoginConflictRetryIsBounded(t *testing.T) {
	users := &loopUsers{}
	a := mustAccounts(AccountsConfig{Users: users, Tokens: newFakeTokens(), AllowSignup: true})
	_, err := a.Login(t.Context(), "alice", "pw", "", "", netip.Addr{})
	if users.creates > 2 {
		t.Errorf("CreateUser called %d times for one login (err %v)", users.creates, err)
	}
	if err == nil {
		t.Errorf("login succeeded without an account")
	}
}

// adminUsers adds the operators' methods to fakeUsers.
type adminUsers struct{ *fakeUsers }

func (f adminUsers) SetUserDisabled(_ context.Context, name string, disabled bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return E(KindNotFound, "no user %q", name)
	}
	u.Disabled = disabled
	return nil
}

func (f adminUsers) DeleteUser(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[name]; !ok {
		return E(KindNotFound, "no user %q", name)
	}
	delete(f.users, name)
	delete(f.passwords, name)
	return nil
}

func (f adminUsers) ListUsers(context.Context) ([]*User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*User
	for _, u := range f.users {
		cp := *u
		out = append(out, &cp)
	}
	return out, nil
}

// SetPassword: the fake keeps imported hashes in imported (name → hash).
func (f adminUsers) SetPassword(_ context.Context, name, password string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[name]; !ok {
		return false, E(KindNotFound, "no user %q", name)
	}
	f.passwords[name] = password
	_, had := f.imported[name]
	delete(f.imported, name)
	return had, nil
}

// adminTokens adds ListTokens to fakeTokens.
type adminTokens struct{ *fakeTokens }

func (f adminTokens) ListTokens(_ context.Context, user string) ([]*Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Token
	for _, t := range f.tokens {
		if t.User == user {
			cp := t
			out = append(out, &cp)
		}
	}
	return out, nil
}

func TestUserAdmin(t *testing.T) {
	ctx := t.Context()
	a, users, tokens := newTestAccounts(false)
	admin := NewUserAdmin(adminUsers{users}, adminTokens{tokens})
	addr := netip.MustParseAddr("192.0.2.1")

	// Add: the password policy applies even to operators.
	wantKind(t, admin.Add(ctx, "alice", "short", "alice@example.com"), KindInvalid)
	wantKind(t, admin.Add(ctx, "alice", "Sturdy-pw-42x", ""), KindInvalid)
	wantKind(t, admin.Add(ctx, "Alice", "Sturdy-pw-42x", "alice@example.com"), KindInvalid)
	if err := admin.Add(ctx, "alice", "Sturdy-pw-42x", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, admin.Add(ctx, "alice", "Sturdy-pw-42x", "alice@example.com"), KindConflict)
	if err := admin.Add(ctx, "bob", "Other-pw-77q", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	// With sign-up off, the added account logs in.
	tok1, err := a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{})
	if err != nil {
		t.Fatalf("login of an added account: %v", err)
	}
	tok2, _ := a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{})
	bobTok, _ := a.Login(ctx, "bob", "Other-pw-77q", "", "", netip.Addr{})

	// Disable: tokens revoked, logins refused (after the password check).
	n, err := admin.Disable(ctx, "alice")
	if err != nil || n != 2 {
		t.Fatalf("Disable = %d, %v; want 2 tokens revoked", n, err)
	}
	for _, tok := range []string{tok1, tok2} {
		if _, err := a.ByToken(ctx, tok, addr); !IsKind(err, KindUnauthorized) {
			t.Errorf("a revoked token of a disabled account: %v", err)
		}
	}
	if _, err := a.ByToken(ctx, bobTok, addr); err != nil {
		t.Errorf("another user's token after disabling alice: %v", err)
	}
	_, err = a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{})
	wantKind(t, err, KindForbidden)
	_, err = a.Login(ctx, "alice", "wrong-password", "", "", netip.Addr{})
	wantKind(t, err, KindUnauthorized) // the wrong password says nothing of the state
	_, err = a.ByPassword(ctx, "alice", "Sturdy-pw-42x", "", netip.Addr{})
	wantKind(t, err, KindForbidden)
	_, err = a.checkOrCreate(ctx, "alice", "Sturdy-pw-42x", "", false, netip.Addr{})
	wantKind(t, err, KindForbidden)

	// A token that survived the sweep (issued while it ran) is refused too.
	late, _ := NewToken()
	tokens.tokens[TokenKey(late)] = Token{Key: TokenKey(late), User: "alice"}
	if _, err := a.ByToken(ctx, late, addr); !IsKind(err, KindUnauthorized) || !strings.Contains(ReasonOf(err), "disabled") {
		t.Errorf("a surviving token of a disabled account: %v", err)
	}

	// Enable: logins work again; revoked tokens stay revoked.
	if err := admin.Enable(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ByToken(ctx, tok1, addr); err == nil {
		t.Errorf("a revoked token works again after enable")
	}
	if _, err := a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{}); err != nil {
		t.Errorf("login after enable: %v", err)
	}

	list, err := admin.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("List = %+v, %v", list, err)
	}

	// Delete: tokens revoked, the account gone.
	n, err = admin.Delete(ctx, "bob")
	if err != nil || n != 1 {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if _, err := a.ByToken(ctx, bobTok, addr); !IsKind(err, KindUnauthorized) {
		t.Errorf("bob's token after delete: %v", err)
	}
	_, err = admin.Delete(ctx, "bob")
	wantKind(t, err, KindNotFound)
	_, err = admin.Disable(ctx, "nobody")
	wantKind(t, err, KindNotFound)
}

// A token whose account is gone is refused.
func TestByTokenDeletedAccount(t *testing.T) {
	a, _, tokens := newTestAccounts(false)
	tok, _ := NewToken()
	tokens.tokens[TokenKey(tok)] = Token{Key: TokenKey(tok), User: "ghost"}
	_, err := a.ByToken(t.Context(), tok, netip.Addr{})
	wantKind(t, err, KindUnauthorized)
}

// An operator sets a lost password: the policy applies, the imported hash
// goes, web sessions end, npm tokens stay unless asked.
func TestUserAdminSetPassword(t *testing.T) {
	ctx := t.Context()
	a, users, tokens := newTestAccounts(false)
	admin := NewUserAdmin(adminUsers{users}, adminTokens{tokens})
	addr := netip.MustParseAddr("192.0.2.1")
	for _, u := range []string{"alice", "bob"} {
		if err := admin.Add(ctx, u, "Sturdy-pw-42x", u+"@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	npmTok, err := a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	session := func(user string) string {
		tok, _ := NewToken()
		tokens.tokens[TokenKey(tok)] = Token{Key: TokenKey(tok), User: user, ReadOnly: true, Name: WebSessionTokenName}
		return tok
	}
	aliceSession, bobSession := session("alice"), session("bob")
	users.imported["alice"] = "$2y$10$imported.hash.of.the.old.password.at.the.old.registry"

	tests := []struct {
		name, user, password string
		revokeTokens         bool
		wantKind             Kind
		want                 PasswordReset
	}{
		{name: "too short", user: "alice", password: "short", wantKind: KindInvalid},
		{name: "the user's own name", user: "alice", password: "alice-alice-alice", wantKind: KindInvalid},
		{name: "no such account", user: "nobody", password: "New-sturdy-pw-9", wantKind: KindNotFound},
		{name: "set: imported hash dropped, session ended", user: "alice", password: "New-sturdy-pw-9",
			want: PasswordReset{DroppedImportedHash: true, RevokedSessions: 1}},
		{name: "again with --revoke-tokens", user: "alice", password: "Newer-sturdy-pw-8", revokeTokens: true,
			want: PasswordReset{RevokedTokens: 2}}, // the first login's and the previous case's
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := admin.SetPassword(ctx, tc.user, tc.password, tc.revokeTokens)
			if tc.wantKind != 0 {
				wantKind(t, err, tc.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.want {
				t.Errorf("SetPassword = %+v, want %+v", res, tc.want)
			}
			if _, err := a.Login(ctx, "alice", tc.password, "", "", netip.Addr{}); err != nil {
				t.Errorf("login with the new password: %v", err)
			}
		})
		if t.Failed() {
			return
		}
		switch tc.name {
		case "too short":
			if users.passwords["alice"] != "Sturdy-pw-42x" {
				t.Fatalf("a refused password was stored")
			}
		case "set: imported hash dropped, session ended":
			_, err := a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{})
			wantKind(t, err, KindUnauthorized)
			if _, err := a.ByToken(ctx, aliceSession, addr); !IsKind(err, KindUnauthorized) {
				t.Errorf("alice's web session after set-password: %v", err)
			}
			if _, err := a.ByToken(ctx, npmTok, addr); err != nil {
				t.Errorf("alice's npm token after set-password: %v", err)
			}
			if _, err := a.ByToken(ctx, bobSession, addr); err != nil {
				t.Errorf("bob's web session after alice's set-password: %v", err)
			}
		case "again with --revoke-tokens":
			if _, err := a.ByToken(ctx, npmTok, addr); !IsKind(err, KindUnauthorized) {
				t.Errorf("alice's npm token after --revoke-tokens: %v", err)
			}
		}
	}
}
