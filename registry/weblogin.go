package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// npm's web login (npm login's default flow since npm 9): npm POSTs
// /-/v1/login and gets a loginUrl, which a person opens in a browser, and a
// doneUrl, which npm polls until it answers a token.
//
// Each pending login is one small document in the system database. Its two
// URLs carry two different secrets, so that whoever sees the page's URL (a
// browser history, a screen share) cannot collect the token:
//
//   - the done secret D (256 random bits) is in the doneUrl, known to npm only;
//   - the page id P = sha256("couchnpm web login page\x00" + D) is in the
//     loginUrl; it is derived from D but D cannot be derived from it;
//   - the document's id is "weblogin:" + hex(sha256(P)): neither secret
//     can be recovered from CouchDB, so reading the database does not
//     hijack a pending login.
//
// The document never holds a token: the page records who logged in, and
// the token is issued when npm collects it, exactly once (the collecting
// poll deletes the document first; only the poll whose delete succeeds
// gets a token).

// WebLoginTTL is how long a pending web login may wait for the browser.
const WebLoginTTL = 10 * time.Minute

// webLoginMaxFailures wrong passwords on one login page cancel the login.
const webLoginMaxFailures = 10

// webLoginDocPrefix starts the ids of pending web logins in the system
// database.
const webLoginDocPrefix = "weblogin:"

// StateDocs is a database of small JSON documents (the system database).
type StateDocs interface {
	// Get reads id into v and returns its revision; KindNotFound when absent.
	Get(ctx context.Context, id string, v any) (string, error)
	// Put writes v as id (rev "" creates it) and returns the new revision;
	// KindConflict when rev is stale or the document exists.
	Put(ctx context.Context, id, rev string, v any) (string, error)
	// Delete removes revision rev of id; KindConflict when rev is stale,
	// KindNotFound when the document is gone.
	Delete(ctx context.Context, id, rev string) error
}

// StateDoc is one row of StateLister.ListPrefix.
type StateDoc struct {
	ID  string
	Rev string
	Doc json.RawMessage
}

// StateLister lists documents by id prefix. The system database
// implements it; WebLogins uses it, when present, to delete pending logins
// nobody finished.
type StateLister interface {
	ListPrefix(ctx context.Context, prefix string, limit int) ([]StateDoc, error)
}

// ErrWebLoginExpired is returned for a pending login past its expiry.
var ErrWebLoginExpired = E(KindNotFound, "this login has expired; run npm login again")

// ErrWebLoginDone is returned by Submit for a login already
// completed in the browser.
var ErrWebLoginDone = E(KindConflict, "this login is already complete; return to the terminal")

// ErrWebLoginCancelled is returned by Submit when too many wrong
// passwords cancelled the login.
var ErrWebLoginCancelled = E(KindUnauthorized, "too many failed attempts: this login is cancelled; run npm login again")

// webLoginDoc is a pending web login as stored.
type webLoginDoc struct {
	Type     string    `json:"type"` // "weblogin"
	Create   bool      `json:"create,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Failures int       `json:"failures,omitempty"`
	// Set once the browser logged in; the token is issued at collection.
	User  string `json:"user,omitempty"`
	Email string `json:"email,omitempty"`
}

// WebLoginPage is what the login page needs to know of a pending login.
type WebLoginPage struct {
	Create  bool   // started by npm adduser: offer to create the account
	SignUp  bool   // the registry allows new accounts
	User    string // set once the browser has logged in
	Expires time.Time
}

// WebLogins runs npm's web login flow over Accounts; pending logins live in
// the system database, so any instance can serve any step.
type WebLogins struct {
	accounts  *Accounts
	docs      StateDocs
	ttl       time.Duration
	now       func() time.Time
	lastSweep atomic.Int64 // unix nanoseconds of the last sweep start
	sweeping  atomic.Bool
}

// NewWebLogins returns the web login service; pending logins are kept in
// docs (the system database) and expire after ttl (WebLoginTTL when 0).
func NewWebLogins(accounts *Accounts, docs StateDocs, ttl time.Duration) *WebLogins {
	if ttl <= 0 {
		ttl = WebLoginTTL
	}
	return &WebLogins{accounts: accounts, docs: docs, ttl: ttl, now: time.Now}
}

// webLoginPageID derives the page id from the done secret.
func webLoginPageID(done string) string {
	sum := sha256.Sum256([]byte("couchnpm web login page\x00" + done))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// webLoginDocID is the stored id for a page id.
func webLoginDocID(page string) string {
	sum := sha256.Sum256([]byte(page))
	return webLoginDocPrefix + hex.EncodeToString(sum[:])
}

// validWebLoginSecret accepts what StartWebLogin hands out: 43 base64url
// characters (256 bits). Anything else is refused before CouchDB is asked.
func validWebLoginSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var errNoWebLogin = E(KindNotFound, "no such login (it was completed, cancelled or never started); run npm login again")

// Start begins a web login: it returns the page id (for the loginUrl) and
// the done secret (for the doneUrl). create is npm adduser's flag.
func (w *WebLogins) Start(ctx context.Context, create bool) (page, done string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", Wrap(KindInternal, err, "cannot make a login id")
	}
	done = base64.RawURLEncoding.EncodeToString(b)
	page = webLoginPageID(done)
	now := w.now().UTC()
	doc := webLoginDoc{Type: "weblogin", Create: create, Created: now, Expires: now.Add(w.ttl)}
	if _, err := w.docs.Put(ctx, webLoginDocID(page), "", doc); err != nil {
		return "", "", err
	}
	w.maybeSweep(ctx)
	return page, done, nil
}

// load reads a pending login by page id; expired ones are deleted (best
// effort) and reported as ErrWebLoginExpired.
func (w *WebLogins) load(ctx context.Context, page string) (*webLoginDoc, string, error) {
	if !validWebLoginSecret(page) {
		return nil, "", errNoWebLogin
	}
	id := webLoginDocID(page)
	var doc webLoginDoc
	rev, err := w.docs.Get(ctx, id, &doc)
	if IsKind(err, KindNotFound) {
		return nil, "", errNoWebLogin
	}
	if err != nil {
		return nil, "", err
	}
	if doc.Type != "weblogin" {
		return nil, "", errNoWebLogin
	}
	if !w.now().Before(doc.Expires) {
		_ = w.docs.Delete(ctx, id, rev)
		return nil, "", ErrWebLoginExpired
	}
	return &doc, rev, nil
}

// Page describes a pending login for its page.
func (w *WebLogins) Page(ctx context.Context, page string) (*WebLoginPage, error) {
	doc, _, err := w.load(ctx, page)
	if err != nil {
		return nil, err
	}
	return &WebLoginPage{Create: doc.Create, SignUp: w.accounts.allowSignup, User: doc.User, Expires: doc.Expires}, nil
}

// Submit checks the name and password typed into the login page (creating
// the account when create is set, the name is free and sign-up is
// allowed) and marks the login done for that user. Wrong credentials are
// KindUnauthorized; after webLoginMaxFailures of them the login is
// cancelled.
func (w *WebLogins) Submit(ctx context.Context, page, name, password, email string, create bool, from netip.Addr) (*User, error) {
	doc, rev, err := w.load(ctx, page)
	if err != nil {
		return nil, err
	}
	if doc.User != "" {
		return nil, ErrWebLoginDone
	}
	id := webLoginDocID(page)
	user, err := w.accounts.checkOrCreate(ctx, name, password, email, create, from)
	if IsKind(err, KindUnauthorized) {
		doc.Failures++
		if doc.Failures >= webLoginMaxFailures {
			_ = w.docs.Delete(ctx, id, rev)
			return nil, ErrWebLoginCancelled
		}
		_, _ = w.docs.Put(ctx, id, rev, doc) // a lost count only helps the next guess by one
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	doc.User, doc.Email = user.Name, user.Email
	// Leave npm time to collect it even when the page was sent at the
	// last second (npm polls every second).
	if min := w.now().Add(time.Minute); doc.Expires.Before(min) {
		doc.Expires = min.UTC()
	}
	if _, err := w.docs.Put(ctx, id, rev, doc); err != nil {
		if IsKind(err, KindConflict) {
			return nil, E(KindConflict, "this login changed meanwhile; reload the page and try again")
		}
		return nil, err
	}
	return user, nil
}

// Collect is npm's poll of the doneUrl: ("", nil) while the browser has
// not logged in yet, then a new token for the user, once; the pending
// login is deleted before the token is issued, so that two polls never
// both get one.
func (w *WebLogins) Collect(ctx context.Context, done string) (string, error) {
	if !validWebLoginSecret(done) {
		return "", errNoWebLogin
	}
	page := webLoginPageID(done)
	doc, rev, err := w.load(ctx, page)
	if err != nil {
		return "", err
	}
	if doc.User == "" {
		return "", nil
	}
	if err := w.docs.Delete(ctx, webLoginDocID(page), rev); err != nil {
		if IsKind(err, KindConflict) || IsKind(err, KindNotFound) {
			return "", errNoWebLogin // another poll collected it
		}
		return "", err
	}
	return w.accounts.issue(ctx, &User{Name: doc.User, Email: doc.Email}, WebLoginTokenName)
}

// checkOrCreate is Login without the token: it verifies name and password,
// or creates the account when create is set, the name is free and sign-up
// is allowed. An unknown name without create is "name or password is
// incorrect", so the page does not tell which names exist.
func (a *Accounts) checkOrCreate(ctx context.Context, name, password, email string, create bool, from netip.Addr) (*User, error) {
	name = strings.TrimSpace(name)
	if err := ValidateUsername(name); err != nil {
		return nil, err
	}
	if password == "" {
		return nil, E(KindInvalid, "a password is required")
	}
	wrong := E(KindUnauthorized, "name or password is incorrect")
	user, err := a.users.GetUser(ctx, name)
	switch {
	case IsKind(err, KindNotFound):
		if !create {
			return nil, wrong
		}
		email = strings.TrimSpace(email)
		if err := a.checkSignup(name, password, email); err != nil {
			return nil, err
		}
		err := a.users.CreateUser(ctx, name, password, email)
		if IsKind(err, KindConflict) { // created in between: a login, then
			return a.checkPassword(ctx, name, password, from, wrong)
		}
		if err != nil {
			return nil, err
		}
		return &User{Name: name, Email: email}, nil
	case err != nil:
		return nil, err
	}
	if err := a.verifyPassword(ctx, name, password, from, wrong); err != nil {
		return nil, err
	}
	return webLoginUser(user)
}

// errWebLoginTwoFactor: the web login page asks for no one-time password,
// so accounts with two-factor authentication log in the legacy way.
var errWebLoginTwoFactor = E(KindForbidden, "this account uses two-factor authentication, which the web login does not support yet; run npm login --auth-type=legacy --otp=123456")

// checkPassword verifies the password of name, then reads the account.
func (a *Accounts) checkPassword(ctx context.Context, name, password string, from netip.Addr, wrong error) (*User, error) {
	if err := a.verifyPassword(ctx, name, password, from, wrong); err != nil {
		return nil, err
	}
	user, err := a.users.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	return webLoginUser(user)
}

// verifyPassword asks the store whether password is name's; a wrong one is
// answered with wrong, whatever the store said.
func (a *Accounts) verifyPassword(ctx context.Context, name, password string, from netip.Addr, wrong error) error {
	err := a.users.CheckPassword(ctx, name, password, from)
	if IsKind(err, KindUnauthorized) {
		return wrong
	}
	return err
}

// webLoginUser admits an account whose password was verified to the web
// login: not a disabled one, nor one with two-factor authentication.
func webLoginUser(user *User) (*User, error) {
	if user.Disabled {
		return nil, errDisabled(user.Name)
	}
	if user.TwoFactor.Active() {
		return nil, errWebLoginTwoFactor
	}
	return user, nil
}

// sweepEvery bounds how often one instance looks for abandoned logins.
const sweepEvery = time.Minute

// maybeSweep deletes expired pending logins (npm killed before the
// browser finished) in the background, at most once a minute per
// instance, when the store can list them.
func (w *WebLogins) maybeSweep(ctx context.Context) {
	lister, ok := w.docs.(StateLister)
	if !ok {
		return
	}
	now := w.now()
	last := w.lastSweep.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !w.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if !w.sweeping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer w.sweeping.Store(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = w.Sweep(sctx, lister)
	}()
}

// Sweep deletes expired pending logins (up to 500 per call).
func (w *WebLogins) Sweep(ctx context.Context, lister StateLister) error {
	rows, err := lister.ListPrefix(ctx, webLoginDocPrefix, 500)
	if err != nil {
		return err
	}
	now := w.now()
	var errs []error
	for _, r := range rows {
		var doc webLoginDoc
		if err := json.Unmarshal(r.Doc, &doc); err != nil || doc.Type != "weblogin" || now.Before(doc.Expires) {
			continue
		}
		if err := w.docs.Delete(ctx, r.ID, r.Rev); err != nil && !IsKind(err, KindNotFound) && !IsKind(err, KindConflict) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
