package registry

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// UpdateTwoFactor keeps the fake's accounts' two-factor state in memory,
// with the "return cur: no write" rule of the real store.
func (f *fakeUsers) UpdateTwoFactor(_ context.Context, name string, change TwoFactorChange) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return E(KindNotFound, "no user %s", name)
	}
	var cur *TwoFactor
	if u.TwoFactor != nil {
		cp := *u.TwoFactor
		cur = &cp
	}
	next, err := change(cur)
	if err != nil {
		return err
	}
	if next != cur || next == nil {
		u.TwoFactor = next
	}
	return nil
}

// RFC 6238, appendix B: the SHA1 rows (8 digits, ASCII key
// "12345678901234567890").
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	secret := b32.EncodeToString(key)
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		step := totpStepAt(time.Unix(tc.unix, 0))
		if got := hotp(key, step, 8); got != tc.want {
			t.Errorf("T=%d: got %s, want %s", tc.unix, got, tc.want)
		}
		// Six digits are the same value modulo 10^6.
		got6, err := TOTPCode(secret, step)
		if err != nil || got6 != tc.want[2:] {
			t.Errorf("T=%d six digits: got %s (%v), want %s", tc.unix, got6, err, tc.want[2:])
		}
	}
}

func TestMatchTOTPWindow(t *testing.T) {
	secret := b32.EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1111111111, 0)
	cur := totpStepAt(now)
	code := func(step int64) string { c, _ := TOTPCode(secret, step); return c }
	for _, tc := range []struct {
		name string
		code string
		ok   bool
	}{
		{"current step", code(cur), true},
		{"previous step (slow typist)", code(cur - 1), true},
		{"next step (clock ahead)", code(cur + 1), true},
		{"two steps old", code(cur - 2), false},
		{"two steps ahead", code(cur + 2), false},
		{"wrong code", "000000", code(cur) == "000000"},
		{"eight digits", "94287082", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := matchTOTP(secret, tc.code, now); ok != tc.ok {
				t.Errorf("matchTOTP(%q) = %v, want %v", tc.code, ok, tc.ok)
			}
		})
	}
}

// twoFactorEnv is alice (with two tokens) and bob, at a settable time.
type twoFactorEnv struct {
	a          *Accounts
	users      *fakeUsers
	now        time.Time
	alice      Identity // token 1
	alice2     Identity // token 2
	bob        Identity
	aliceToken string
}

func newTwoFactorEnv(t *testing.T) *twoFactorEnv {
	t.Helper()
	a, users, _ := newTestAccounts(false)
	users.add("alice", "Sturdy-pw-42x", "alice@example.com")
	users.add("bob", "Other-pw-77q", "bob@example.com")
	env := &twoFactorEnv{a: a, users: users, now: time.Unix(1_800_000_000, 0)}
	a.now = func() time.Time { return env.now }
	login := func(name, pw string) (Identity, string) {
		tok, err := a.Login(t.Context(), name, pw, "", "", netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		id, err := a.ByToken(t.Context(), tok, netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return id, tok
	}
	env.alice, env.aliceToken = login("alice", "Sturdy-pw-42x")
	env.alice2, _ = login("alice", "Sturdy-pw-42x")
	env.bob, _ = login("bob", "Other-pw-77q")
	return env
}

// enable turns on 2FA for alice in mode and returns the secret and the
// recovery codes.
func (e *twoFactorEnv) enable(t *testing.T, mode string) (string, []string) {
	t.Helper()
	ans, err := e.a.SetTwoFactor(t.Context(), e.alice, TwoFactorRequest{Password: "Sturdy-pw-42x", Mode: mode}, "", netip.Addr{})
	if err != nil {
		t.Fatalf("enable: %v", err)
	}
	u, err := url.Parse(ans.OTPAuthURL)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("enable answered %q, want an otpauth://totp/ URL", ans.OTPAuthURL)
	}
	secret := u.Query().Get("secret")
	if user, _ := e.users.GetUser(t.Context(), "alice"); user.TwoFactor.Active() || !user.TwoFactor.Pending {
		t.Fatalf("after the first step 2FA is %+v, want pending", user.TwoFactor)
	}
	if _, err := e.a.SetTwoFactor(t.Context(), e.alice, TwoFactorRequest{Codes: []string{"123"}}, "", netip.Addr{}); !errors.Is(err, ErrWrongOTP) {
		t.Fatalf("confirming with a wrong code: %v, want a wrong OTP", err)
	}
	ans, err = e.a.SetTwoFactor(t.Context(), e.alice, TwoFactorRequest{Codes: []string{e.code(t, secret, 0)}}, "", netip.Addr{})
	if err != nil || len(ans.Recovery) != recoveryCodes || ans.Mode != mode {
		t.Fatalf("confirm: %+v, %v", ans, err)
	}
	e.now = e.now.Add(totpStep * time.Second) // the confirming code is used up
	return secret, ans.Recovery
}

func (e *twoFactorEnv) code(t *testing.T, secret string, offset int64) string {
	t.Helper()
	c, err := TOTPCode(secret, totpStepAt(e.now)+offset)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refresh re-reads an identity as the next request would see it.
func (e *twoFactorEnv) refresh(t *testing.T, id Identity) Identity {
	t.Helper()
	u, _ := e.users.GetUser(t.Context(), id.Name)
	id.TwoFactor, id.OTPVerified = "", false
	if u.TwoFactor.Active() {
		id.TwoFactor = u.TwoFactor.Mode
	}
	return id
}

func TestTwoFactorAuthAndWrites(t *testing.T) {
	e := newTwoFactorEnv(t)
	secret, recovery := e.enable(t, TwoFactorAuthAndWrites)
	ctx := t.Context()
	alice, alice2 := e.refresh(t, e.alice), e.refresh(t, e.alice2)

	stored, _ := e.users.GetUser(ctx, "alice")
	for _, r := range recovery {
		if strings.Contains(strings.Join(stored.TwoFactor.Recovery, ","), r) {
			t.Fatal("a recovery code is stored in clear")
		}
	}
	if id, err := e.a.ByToken(ctx, e.aliceToken, netip.MustParseAddr("127.0.0.1")); err != nil || id.TwoFactor != TwoFactorAuthAndWrites {
		t.Fatalf("ByToken: %+v %v, want the mode on the identity", id, err)
	}
	if err := alice.CanWrite(); !IsKind(err, KindOTPRequired) {
		t.Errorf("CanWrite without a code: %v, want KindOTPRequired", err)
	}

	steps := []struct {
		name    string
		id      Identity
		otp     string
		wantErr error // nil: accepted
	}{
		{"no code", alice, "", errOTPRequired},
		{"wrong code", alice, "000000", errOTPWrong},
		{"current code", alice, e.code(t, secret, 0), nil},
		{"same code, same token (npm unpublish writes twice)", alice, e.code(t, secret, 0), nil},
		{"same code, another token: replay", alice2, e.code(t, secret, 0), errOTPReplayed},
		{"previous step after a later one: replay", alice2, e.code(t, secret, -1), errOTPReplayed},
		{"next step", alice2, e.code(t, secret, 1), nil},
		{"recovery code", alice, recovery[0], nil},
		{"recovery code again", alice2, recovery[0], errOTPWrong},
		{"recovery code in upper case, another one", alice2, strings.ToUpper(recovery[1]), nil},
		{"a made-up recovery code", alice, strings.Repeat("ab", 32), errOTPWrong},
		{"too long", alice, strings.Repeat("1", 100), errOTPWrong},
	}
	for _, s := range steps {
		id, err := e.a.VerifyWrite(ctx, s.id, s.otp)
		if s.wantErr == nil {
			if err != nil || !id.OTPVerified || id.CanWrite() != nil {
				t.Errorf("%s: %v (verified %v), want accepted", s.name, err, id.OTPVerified)
			}
			continue
		}
		if err != s.wantErr { //nolint:errorlint // the sentinels themselves
			t.Errorf("%s: %v, want %v", s.name, err, s.wantErr)
		}
	}

	// bob has no 2FA: nothing is asked of him.
	if _, err := e.a.VerifyWrite(ctx, e.bob, ""); err != nil {
		t.Errorf("bob without 2FA: %v", err)
	}
	// A read-only token of alice still cannot write, code or not.
	ro := alice
	ro.ReadOnly, ro.OTPVerified = true, true
	if err := ro.CanWrite(); !IsKind(err, KindForbidden) {
		t.Errorf("read-only token with a code: %v, want forbidden", err)
	}
}

func TestTwoFactorLogin(t *testing.T) {
	for _, mode := range []string{TwoFactorAuthOnly, TwoFactorAuthAndWrites} {
		t.Run(mode, func(t *testing.T) {
			e := newTwoFactorEnv(t)
			secret, _ := e.enable(t, mode)
			ctx := t.Context()
			if _, err := e.a.Login(ctx, "alice", "Sturdy-pw-42x", "", "", netip.Addr{}); err != errOTPRequired { //nolint:errorlint
				t.Errorf("login without a code: %v, want an OTP challenge", err)
			}
			if _, err := e.a.Login(ctx, "alice", "wrong-password", "", e.code(t, secret, 0), netip.Addr{}); !IsKind(err, KindUnauthorized) {
				t.Errorf("wrong password with a right code: %v, want unauthorized", err)
			}
			if _, err := e.a.Login(ctx, "alice", "Sturdy-pw-42x", "", e.code(t, secret, 0), netip.Addr{}); err != nil {
				t.Errorf("login with a code: %v", err)
			}
			if _, err := e.a.Login(ctx, "alice", "Sturdy-pw-42x", "", e.code(t, secret, 0), netip.Addr{}); !errors.Is(err, ErrWrongOTP) {
				t.Errorf("a second login with the same code: %v, want refused (replay)", err)
			}
			if _, err := e.a.ByPassword(ctx, "alice", "Sturdy-pw-42x", "", netip.Addr{}); !IsKind(err, KindOTPRequired) {
				t.Errorf("Basic credentials without a code: %v, want an OTP challenge", err)
			}
			id, err := e.a.ByPassword(ctx, "alice", "Sturdy-pw-42x", e.code(t, secret, 1), netip.Addr{})
			if err != nil || !id.OTPVerified {
				t.Errorf("Basic credentials with a code: %+v %v", id, err)
			}
			// auth-only asks nothing for writes.
			if mode == TwoFactorAuthOnly {
				if err := e.refresh(t, e.alice).CanWrite(); err != nil {
					t.Errorf("auth-only write: %v", err)
				}
			}
		})
	}
}

func TestSetTwoFactorRules(t *testing.T) {
	e := newTwoFactorEnv(t)
	ctx := t.Context()
	pw := "Sturdy-pw-42x"
	set := func(id Identity, req TwoFactorRequest, otp string) error {
		_, err := e.a.SetTwoFactor(ctx, id, req, otp, netip.Addr{})
		return err
	}
	if err := set(e.alice, TwoFactorRequest{Password: "wrong", Mode: TwoFactorAuthOnly}, ""); !IsKind(err, KindUnauthorized) {
		t.Errorf("enable with a wrong password: %v", err)
	}
	if err := set(e.alice, TwoFactorRequest{Mode: TwoFactorAuthOnly}, ""); !IsKind(err, KindUnauthorized) {
		t.Errorf("enable without a password: %v", err)
	}
	if err := set(e.alice, TwoFactorRequest{Password: pw, Mode: "sms"}, ""); !IsKind(err, KindInvalid) {
		t.Errorf("unknown mode: %v", err)
	}
	if err := set(e.alice, TwoFactorRequest{Codes: []string{"123456"}}, ""); !IsKind(err, KindInvalid) {
		t.Errorf("confirm without a set-up: %v", err)
	}
	ro := e.alice
	ro.ReadOnly = true
	if err := set(ro, TwoFactorRequest{Password: pw, Mode: TwoFactorAuthOnly}, ""); !IsKind(err, KindForbidden) {
		t.Errorf("enable with a read-only token: %v", err)
	}
	if err := set(Identity{}, TwoFactorRequest{Password: pw, Mode: TwoFactorAuthOnly}, ""); !IsKind(err, KindUnauthorized) {
		t.Errorf("anonymous enable: %v", err)
	}

	secret, recovery := e.enable(t, TwoFactorAuthOnly)
	alice := e.refresh(t, e.alice)
	// Bob, with his own password, only ever changes his own account.
	if err := set(e.bob, TwoFactorRequest{Password: "Other-pw-77q", Mode: "disable"}, ""); err != nil {
		t.Errorf("bob disabling (his own, off): %v", err)
	}
	if u, _ := e.users.GetUser(ctx, "alice"); !u.TwoFactor.Active() {
		t.Fatal("bob's request turned off alice's 2FA")
	}
	if err := set(alice, TwoFactorRequest{Password: pw, Mode: "disable"}, ""); err != errOTPRequired { //nolint:errorlint
		t.Errorf("disable without a code: %v, want an OTP challenge", err)
	}
	if err := set(alice, TwoFactorRequest{Password: pw, Mode: TwoFactorAuthAndWrites}, e.code(t, secret, 0)); err != nil {
		t.Errorf("mode change with a code: %v", err)
	}
	if u, _ := e.users.GetUser(ctx, "alice"); u.TwoFactor.Mode != TwoFactorAuthAndWrites || u.TwoFactor.Secret != secret {
		t.Errorf("after the mode change: %+v, want auth-and-writes, same secret", u.TwoFactor)
	}
	// A lost device: a recovery code turns it off.
	if err := set(alice, TwoFactorRequest{Password: pw, Mode: "disable"}, recovery[2]); err != nil {
		t.Errorf("disable with a recovery code: %v", err)
	}
	if u, _ := e.users.GetUser(ctx, "alice"); u.TwoFactor != nil {
		t.Errorf("after disable: %+v, want off", u.TwoFactor)
	}
	// A pending set-up is not in force and is dropped without a code.
	if _, err := e.a.SetTwoFactor(ctx, e.alice, TwoFactorRequest{Password: pw, Mode: TwoFactorAuthOnly}, "", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Login(ctx, "alice", pw, "", "", netip.Addr{}); err != nil {
		t.Errorf("login while a set-up is pending: %v, want no code asked", err)
	}
	if err := set(e.alice, TwoFactorRequest{Password: pw, Mode: "disable"}, ""); err != nil {
		t.Errorf("dropping a pending set-up: %v", err)
	}
}

func TestResetTwoFactor(t *testing.T) {
	e := newTwoFactorEnv(t)
	e.enable(t, TwoFactorAuthAndWrites)
	admin := NewUserAdmin(adminUsers{e.users}, adminTokens{newFakeTokens()})
	if was, err := admin.ResetTwoFactor(t.Context(), "alice"); err != nil || !was {
		t.Fatalf("reset: %v %v", was, err)
	}
	if u, _ := e.users.GetUser(t.Context(), "alice"); u.TwoFactor != nil {
		t.Errorf("after the reset: %+v", u.TwoFactor)
	}
	if _, err := e.a.Login(t.Context(), "alice", "Sturdy-pw-42x", "", "", netip.Addr{}); err != nil {
		t.Errorf("login after the reset: %v", err)
	}
	if was, err := admin.ResetTwoFactor(t.Context(), "bob"); err != nil || was {
		t.Errorf("reset of an account without 2FA: %v %v", was, err)
	}
	if _, err := admin.ResetTwoFactor(t.Context(), "nobody"); !IsKind(err, KindNotFound) {
		t.Errorf("reset of an unknown account: %v", err)
	}
}

func TestWebLoginRefusesTwoFactorAccounts(t *testing.T) {
	e := newTwoFactorEnv(t)
	e.enable(t, TwoFactorAuthOnly)
	if _, err := e.a.checkOrCreate(t.Context(), "alice", "Sturdy-pw-42x", "", false, netip.Addr{}); err != errWebLoginTwoFactor { //nolint:errorlint
		t.Errorf("web login of a 2FA account: %v, want refused (the page asks for no code)", err)
	}
	if _, err := e.a.checkOrCreate(t.Context(), "bob", "Other-pw-77q", "", false, netip.Addr{}); err != nil {
		t.Errorf("web login of bob: %v", err)
	}
}
