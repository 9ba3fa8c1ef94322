package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// User is a registry account; CouchDB's _users database holds it and its
// password hash.
type User struct {
	Name     string
	Email    string
	Disabled bool      // an operator disabled it: no logins, no tokens
	Created  time.Time // zero when unknown
	// TwoFactor is the account's two-factor state; nil when off. It holds
	// the secret: never render it.
	TwoFactor *TwoFactor
}

// UserStore keeps accounts.
type UserStore interface {
	// GetUser returns an account; KindNotFound when absent or deleted.
	GetUser(ctx context.Context, name string) (*User, error)
	// CreateUser adds an account; KindConflict when the name is taken
	// (also by a deleted account: names are not reused).
	CreateUser(ctx context.Context, name, password, email string) error
	// CheckPassword verifies a password given by the client at from (the
	// connection's address, never a header a client could forge: CouchDB
	// counts failed logins per client and user, see couch.Users);
	// KindUnauthorized when wrong.
	CheckPassword(ctx context.Context, name, password string, from netip.Addr) error
	// UpdateTwoFactor applies change to the account's two-factor state,
	// atomically (a concurrent write makes it read and call change again);
	// KindNotFound when the account is absent.
	UpdateTwoFactor(ctx context.Context, name string, change TwoFactorChange) error
}

// Token is an authentication token's stored record. Only the hash of the
// token (its Key) is stored, never the token.
type Token struct {
	Key      string // hex sha256 of the token
	User     string
	Email    string
	Created  time.Time
	ReadOnly bool
	CIDR     []string
	Expires  *time.Time
	Name     string
}

// TokenStore keeps tokens by key.
type TokenStore interface {
	PutToken(ctx context.Context, t *Token) error
	// GetToken returns a token; KindNotFound when absent.
	GetToken(ctx context.Context, key string) (*Token, error)
	DeleteToken(ctx context.Context, key string) error
	TokenLister
}

// Identity is who a request acts for.
type Identity struct {
	Name     string
	Email    string
	ReadOnly bool
	Token    *Token // nil for Basic credentials
	// TwoFactor is the account's two-factor mode in force ("" when off);
	// OTPVerified that this request gave a valid one-time password.
	TwoFactor   string
	OTPVerified bool
}

// Anonymous reports whether the request carried no credentials.
func (id Identity) Anonymous() bool { return id.Name == "" }

// Person is the identity as npm's maintainer/publisher object.
func (id Identity) Person() Person { return Person{Name: id.Name, Email: id.Email} }

// CanWrite refuses anonymous callers and read-only tokens.
func (id Identity) CanWrite() error {
	if id.Anonymous() {
		return E(KindUnauthorized, "you must be logged in to write to this registry")
	}
	if id.ReadOnly {
		return E(KindForbidden, "this token is read-only")
	}
	if id.TwoFactor == TwoFactorAuthAndWrites && !id.OTPVerified {
		return errOTPRequired
	}
	return nil
}

// TokenKey is the stored key of a token: its sha256, hex. Tokens carry 256
// random bits, so a fast hash is enough: nothing can be guessed from it.
func TokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenPrefix marks couchnpm tokens, so that secret scanners can find leaks.
const tokenPrefix = "cnpm_"

// NewToken returns a fresh random token (256 bits).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Wrap(KindInternal, err, "cannot make a token")
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Accounts handles users, logins and tokens.
type Accounts struct {
	users        UserStore
	tokens       TokenStore
	allowSignup  bool
	emailDomains []string // sign-up only with these e-mail domains; empty: any
	now          func() time.Time
	cache        *AuthCache // nil: every authentication reads CouchDB
}

// AccountsConfig is what Accounts is built from.
type AccountsConfig struct {
	Users  UserStore  // accounts and passwords (required)
	Tokens TokenStore // login tokens (required)
	// AllowSignup lets a login of an unknown name create the account; off,
	// such logins are refused.
	AllowSignup bool
	// SignupEmailDomains limits sign-up to e-mail addresses in these
	// domains (case-insensitive, exact match; none: any domain).
	// Operators' accounts (UserAdmin.Add) are not limited.
	SignupEmailDomains []string
	// Cache, when set, keeps token records and accounts for ByToken and
	// ByPassword (see AuthCache); Accounts invalidates it on its writes.
	Cache *AuthCache
}

// NewAccounts builds the account service from cfg in one step; a missing
// required dependency is an error here, never an answer at run time.
func NewAccounts(cfg AccountsConfig) (*Accounts, error) {
	var missing []string
	if cfg.Users == nil {
		missing = append(missing, "Users")
	}
	if cfg.Tokens == nil {
		missing = append(missing, "Tokens")
	}
	if len(missing) > 0 {
		return nil, E(KindInternal, "registry.NewAccounts: missing %s", strings.Join(missing, ", "))
	}
	var domains []string
	for _, d := range cfg.SignupEmailDomains {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			domains = append(domains, d)
		}
	}
	a := &Accounts{users: cfg.Users, tokens: cfg.Tokens, allowSignup: cfg.AllowSignup, emailDomains: domains, now: time.Now, cache: cfg.Cache}
	if a.cache != nil {
		a.users = cachedUsers{UserStore: a.users, c: a.cache}
		a.tokens = cachedTokens{TokenStore: a.tokens, c: a.cache}
	}
	return a, nil
}

// authToken reads a token record for authentication: from the cache when
// it is on and trusts its copy.
func (a *Accounts) authToken(ctx context.Context, key string) (*Token, error) {
	if a.cache == nil {
		return a.tokens.GetToken(ctx, key)
	}
	return a.cache.token(ctx, key, a.tokens.GetToken)
}

// authUser reads an account for authentication, like authToken.
func (a *Accounts) authUser(ctx context.Context, name string) (*User, error) {
	if a.cache == nil {
		return a.users.GetUser(ctx, name)
	}
	return a.cache.user(ctx, name, a.users.GetUser)
}

// errSignupOff refuses a new name when sign-up is off.
var errSignupOff = E(KindForbidden, "sign-up is disabled on this registry; ask an administrator for an account")

// checkSignup applies the sign-up rules to a new account: sign-up must be
// on, the password must pass the policy, and an e-mail address is
// required (in an allowed domain when the registry names some).
func (a *Accounts) checkSignup(name, password, email string) error {
	if !a.allowSignup {
		return errSignupOff
	}
	if err := CheckNewPassword(name, password); err != nil {
		return err
	}
	if email == "" {
		return E(KindInvalid, "an e-mail address is required to create an account (npm adduser asks for one; npm login does not)")
	}
	domain, err := emailDomain(email)
	if err != nil {
		return err
	}
	if len(a.emailDomains) > 0 && !slices.Contains(a.emailDomains, domain) {
		return E(KindForbidden, "sign-up is limited to e-mail addresses at %s", strings.Join(a.emailDomains, ", "))
	}
	return nil
}

// emailDomain checks the shape of an e-mail address (one @, something on
// both sides, no spaces) and returns its domain, lower-case.
func emailDomain(email string) (string, error) {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(email) > 254 ||
		strings.ContainsAny(email, " \t\r\n<>()[],;:\"") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", E(KindInvalid, "invalid e-mail address %q", email)
	}
	return strings.ToLower(domain), nil
}

// errDisabled refuses the right password of a disabled account.
func errDisabled(name string) error {
	return E(KindForbidden, "the account %q is disabled; ask an administrator", name)
}

// Login checks name and password (creating the account when it is new and
// sign-up is allowed) and returns a new token for it. An account with
// two-factor authentication also needs otp, a one-time password.
func (a *Accounts) Login(ctx context.Context, name, password, email, otp string, from netip.Addr) (string, error) {
	if err := ValidateUsername(name); err != nil {
		return "", err
	}
	if password == "" {
		return "", E(KindInvalid, "a password is required")
	}
	user, err := a.users.GetUser(ctx, name)
	switch {
	case IsKind(err, KindNotFound):
		email = strings.TrimSpace(email)
		if err := a.checkSignup(name, password, email); err != nil {
			return "", err
		}
		err = a.users.CreateUser(ctx, name, password, email)
		if IsKind(err, KindConflict) {
			// Someone created it in between: treat as a login, once. A
			// name that stays taken but unreadable is the conflict.
			existing, gerr := a.users.GetUser(ctx, name)
			if IsKind(gerr, KindNotFound) {
				return "", err
			}
			if gerr != nil {
				return "", gerr
			}
			if err := a.users.CheckPassword(ctx, name, password, from); err != nil {
				return "", err
			}
			if existing.Disabled {
				return "", errDisabled(name)
			}
			if existing.TwoFactor.Active() {
				if err := a.checkOTP(ctx, name, "", otp); err != nil {
					return "", err
				}
			}
			return a.issue(ctx, existing, LoginTokenName)
		}
		if err != nil {
			return "", err
		}
		user = &User{Name: name, Email: email}
	case err != nil:
		return "", err
	default:
		if err := a.users.CheckPassword(ctx, name, password, from); err != nil {
			return "", err
		}
		if user.Disabled {
			return "", errDisabled(name)
		}
		if user.TwoFactor.Active() {
			// Every login mints a new token: no credential may reuse the code.
			if err := a.checkOTP(ctx, name, "", otp); err != nil {
				return "", err
			}
		}
	}
	return a.issue(ctx, user, LoginTokenName)
}

// Names of the tokens npm login and npm login --auth-type=web create; npm
// token list shows them (it prints "name undefined" for a token without).
const (
	LoginTokenName    = "npm login"
	WebLoginTokenName = "npm login (web)"
)

func (a *Accounts) issue(ctx context.Context, user *User, name string) (string, error) {
	token, err := NewToken()
	if err != nil {
		return "", err
	}
	t := &Token{Key: TokenKey(token), User: user.Name, Email: user.Email, Created: a.now().UTC(), Name: name}
	if err := a.tokens.PutToken(ctx, t); err != nil {
		return "", err
	}
	return token, nil
}

// User returns an account's public fields.
func (a *Accounts) User(ctx context.Context, name string) (*User, error) {
	if err := ValidateUsername(name); err != nil {
		return nil, E(KindNotFound, "no user %q", name)
	}
	return a.users.GetUser(ctx, name)
}

// ByToken authenticates a bearer token from a client at addr.
func (a *Accounts) ByToken(ctx context.Context, token string, addr netip.Addr) (Identity, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 200 {
		return Identity{}, E(KindUnauthorized, "invalid token")
	}
	t, err := a.authToken(ctx, TokenKey(token))
	if IsKind(err, KindNotFound) {
		return Identity{}, E(KindUnauthorized, "invalid or revoked token")
	}
	if err != nil {
		return Identity{}, err
	}
	if t.Expires != nil && !a.now().Before(*t.Expires) {
		return Identity{}, E(KindUnauthorized, "this token has expired")
	}
	if len(t.CIDR) > 0 && !inCIDRs(addr, t.CIDR) {
		return Identity{}, E(KindUnauthorized, "this token may not be used from %s", addr)
	}
	// Disabling an account deletes its tokens, but a token issued while
	// that ran (a login in flight) would survive it: the account is
	// checked on every use, which also covers deleted accounts. (With the
	// cache, from its copy: a disabled flag reaches it through _users'
	// feed within the staleness bound.)
	user, err := a.authUser(ctx, t.User)
	if IsKind(err, KindNotFound) {
		return Identity{}, E(KindUnauthorized, "the account of this token no longer exists")
	}
	if err != nil {
		return Identity{}, err
	}
	if user.Disabled {
		return Identity{}, E(KindUnauthorized, "the account %q is disabled", t.User)
	}
	id := Identity{Name: t.User, Email: t.Email, ReadOnly: t.ReadOnly, Token: t}
	if user.TwoFactor.Active() {
		id.TwoFactor = user.TwoFactor.Mode
	}
	return id, nil
}

// passwordCredential names Basic credentials for the OTP replay rule.
const passwordCredential = "password"

// ByPassword authenticates Basic credentials. A password is a login on
// every request: an account with two-factor authentication also needs a
// valid otp on each.
func (a *Accounts) ByPassword(ctx context.Context, name, password, otp string, from netip.Addr) (Identity, error) {
	if ValidateUsername(name) != nil || password == "" {
		return Identity{}, E(KindUnauthorized, "name or password is incorrect")
	}
	// The password is checked by CouchDB every time (its PBKDF2 and its
	// lockout are the point); only the account's read may be cached.
	if err := a.users.CheckPassword(ctx, name, password, from); err != nil {
		return Identity{}, err
	}
	user, err := a.authUser(ctx, name)
	if err != nil {
		return Identity{}, err
	}
	if user.Disabled {
		return Identity{}, errDisabled(name)
	}
	id := Identity{Name: user.Name, Email: user.Email}
	if user.TwoFactor.Active() {
		if err := a.checkOTP(ctx, name, passwordCredential+":"+name, otp); err != nil {
			return Identity{}, err
		}
		id.TwoFactor, id.OTPVerified = user.TwoFactor.Mode, true
	}
	return id, nil
}

// Logout revokes a token. Revoking an unknown token succeeds: the outcome
// the caller wants holds either way.
func (a *Accounts) Logout(ctx context.Context, token string) error {
	err := a.tokens.DeleteToken(ctx, TokenKey(token))
	if IsKind(err, KindNotFound) {
		return nil
	}
	return err
}

func inCIDRs(addr netip.Addr, cidrs []string) bool {
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr.Unmap()) {
			return true
		}
		if a, err := netip.ParseAddr(c); err == nil && a == addr.Unmap() {
			return true
		}
	}
	return false
}
