package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memDocs is a StateDocs (and StateLister) with CouchDB's revision rules.
type memDocs struct {
	mu     sync.Mutex
	docs   map[string]memDoc
	writes []string // JSON of every document written
	gets   int
}

type memDoc struct {
	rev  int
	body json.RawMessage
}

func newMemDocs() *memDocs { return &memDocs{docs: map[string]memDoc{}} }

func (m *memDocs) Get(_ context.Context, id string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	d, ok := m.docs[id]
	if !ok {
		return "", E(KindNotFound, "missing")
	}
	return fmt.Sprint(d.rev), json.Unmarshal(d.body, v)
}

func (m *memDocs) Put(_ context.Context, id, rev string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if ok && rev != fmt.Sprint(d.rev) || !ok && rev != "" {
		return "", E(KindConflict, "conflict")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	m.writes = append(m.writes, string(b))
	m.docs[id] = memDoc{rev: d.rev + 1, body: b}
	return fmt.Sprint(d.rev + 1), nil
}

func (m *memDocs) Delete(_ context.Context, id, rev string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if !ok {
		return E(KindNotFound, "missing")
	}
	if rev != fmt.Sprint(d.rev) {
		return E(KindConflict, "conflict")
	}
	delete(m.docs, id)
	return nil
}

func (m *memDocs) ListPrefix(_ context.Context, prefix string, limit int) ([]StateDoc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StateDoc
	for id, d := range m.docs {
		if strings.HasPrefix(id, prefix) && len(out) < limit {
			out = append(out, StateDoc{ID: id, Rev: fmt.Sprint(d.rev), Doc: d.body})
		}
	}
	return out, nil
}

func (m *memDocs) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.docs)
}

type webLoginEnv struct {
	w      *WebLogins
	a      *Accounts
	users  *fakeUsers
	tokens *fakeTokens
	docs   *memDocs
	now    time.Time
}

func newWebLoginEnv(t *testing.T, signup bool) *webLoginEnv {
	t.Helper()
	a, users, tokens := newTestAccounts(signup)
	users.add("alice", "s3cret-pw", "alice@example.com")
	e := &webLoginEnv{a: a, users: users, tokens: tokens, docs: newMemDocs(), now: accountsNow}
	e.w = NewWebLogins(a, struct{ StateDocs }{e.docs}, 0)
	e.w.now = func() time.Time { return e.now }
	return e
}

func (e *webLoginEnv) start(t *testing.T, create bool) (page, done string) {
	t.Helper()
	page, done, err := e.w.Start(context.Background(), create)
	if err != nil {
		t.Fatal(err)
	}
	return page, done
}

func TestWebLoginFlow(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, false)
	if !validWebLoginSecret(page) || !validWebLoginSecret(done) || page == done {
		t.Fatalf("page %q, done %q: want two different 43-character ids", page, done)
	}
	if page != webLoginPageID(done) {
		t.Errorf("the page id is not derived from the done secret")
	}
	// The stored id is a hash of the page id; neither secret is stored.
	if e.docs.count() != 1 {
		t.Fatalf("%d documents, want 1", e.docs.count())
	}
	for id := range e.docs.docs {
		if id != webLoginDocID(page) || !strings.HasPrefix(id, "weblogin:") {
			t.Errorf("document id %q", id)
		}
		if strings.Contains(id, page) || strings.Contains(id, done) {
			t.Errorf("a secret is in the document id %q", id)
		}
	}

	info, err := e.w.Page(ctx, page)
	if err != nil || info.User != "" || info.Create || !info.SignUp || !info.Expires.Equal(accountsNow.Add(WebLoginTTL)) {
		t.Fatalf("Page = %+v, %v", info, err)
	}
	if tok, err := e.w.Collect(ctx, done); tok != "" || err != nil {
		t.Fatalf("Collect before the browser logged in = %q, %v; want pending", tok, err)
	}
	// The page id does not collect the token.
	if _, err := e.w.Collect(ctx, page); !IsKind(err, KindNotFound) {
		t.Fatalf("Collect(page id) = %v, want not found", err)
	}

	// A wrong password keeps the login pending.
	_, err = e.w.Submit(ctx, page, "alice", "wrong", "", false, netip.Addr{})
	wantKind(t, err, KindUnauthorized)
	if tok, err := e.w.Collect(ctx, done); tok != "" || err != nil {
		t.Fatalf("Collect after a wrong password = %q, %v; want pending", tok, err)
	}

	u, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{})
	if err != nil || u.Name != "alice" {
		t.Fatalf("Submit = %+v, %v", u, err)
	}
	if info, err := e.w.Page(ctx, page); err != nil || info.User != "alice" {
		t.Fatalf("Page after login = %+v, %v", info, err)
	}
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{}); err != ErrWebLoginDone {
		t.Fatalf("second Submit = %v, want ErrWebLoginDone", err)
	}
	if len(e.tokens.tokens) != 0 {
		t.Fatalf("a token was issued before npm collected it")
	}

	tok, err := e.w.Collect(ctx, done)
	if err != nil || !strings.HasPrefix(tok, "cnpm_") {
		t.Fatalf("Collect = %q, %v", tok, err)
	}
	id, err := e.a.ByToken(ctx, tok, netip.MustParseAddr("192.0.2.1"))
	if err != nil || id.Name != "alice" || id.Email != "alice@example.com" {
		t.Fatalf("the collected token is %+v, %v", id, err)
	}
	// Handed out once; the pending login is gone.
	if _, err := e.w.Collect(ctx, done); !IsKind(err, KindNotFound) {
		t.Fatalf("second Collect = %v, want not found", err)
	}
	if e.docs.count() != 0 {
		t.Errorf("%d documents left", e.docs.count())
	}
	for _, w := range e.docs.writes {
		if strings.Contains(w, "cnpm_") || strings.Contains(w, "s3cret") || strings.Contains(w, page) || strings.Contains(w, done) {
			t.Errorf("a secret was written to the system database: %s", w)
		}
	}
}

func TestWebLoginCollectOnce(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, false)
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := e.w.Collect(ctx, done)
			if err == nil && tok != "" {
				results <- tok
			} else if err != nil && !IsKind(err, KindNotFound) {
				t.Errorf("Collect: %v", err)
			}
		}()
	}
	wg.Wait()
	close(results)
	n := 0
	for range results {
		n++
	}
	if n != 1 || len(e.tokens.tokens) != 1 {
		t.Fatalf("%d polls got a token, %d tokens issued; want exactly one", n, len(e.tokens.tokens))
	}
}

func TestWebLoginExpiry(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, false)
	e.now = e.now.Add(WebLoginTTL)
	if _, err := e.w.Page(ctx, page); err != ErrWebLoginExpired {
		t.Fatalf("Page after expiry = %v", err)
	}
	// The expired document was deleted: now it is unknown.
	if _, err := e.w.Collect(ctx, done); err != errNoWebLogin {
		t.Fatalf("Collect after expiry = %v", err)
	}

	page, done = e.start(t, false)
	e.now = e.now.Add(WebLoginTTL - time.Second)
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	// A login finished at the last second leaves npm a minute to collect.
	e.now = e.now.Add(30 * time.Second)
	if tok, err := e.w.Collect(ctx, done); err != nil || tok == "" {
		t.Fatalf("Collect 30s after a last-second login = %q, %v", tok, err)
	}

	_, done = e.start(t, false)
	e.now = e.now.Add(WebLoginTTL + time.Hour)
	if _, err := e.w.Collect(ctx, done); err != ErrWebLoginExpired {
		t.Fatalf("Collect of an expired login = %v", err)
	}
	if _, err := e.w.Submit(ctx, webLoginPageID(done), "alice", "s3cret-pw", "", false, netip.Addr{}); !IsKind(err, KindNotFound) {
		t.Fatalf("Submit on an expired (deleted) login = %v", err)
	}
	if len(e.tokens.tokens) != 1 {
		t.Errorf("%d tokens issued, want 1", len(e.tokens.tokens))
	}
}

func TestWebLoginSignUp(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, true)
	if info, _ := e.w.Page(ctx, page); !info.Create {
		t.Errorf("Page.Create = false for an adduser login")
	}
	// Without the create box, an unknown name is just a wrong login.
	_, err := e.w.Submit(ctx, page, "bob", "pw-bob-123", "", false, netip.Addr{})
	wantKind(t, err, KindUnauthorized)
	if len(e.users.created) != 0 {
		t.Fatalf("created %v without the create box", e.users.created)
	}
	_, err = e.w.Submit(ctx, page, "bob", "pw-bob-123", "not-an-email", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	_, err = e.w.Submit(ctx, page, "Bob", "pw-bob-123", "", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	_, err = e.w.Submit(ctx, page, "bob", "", "", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	// The sign-up rules: the password policy, and an e-mail address.
	_, err = e.w.Submit(ctx, page, "bob", "short", "bob@example.com", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	_, err = e.w.Submit(ctx, page, "bob", "qwertyuiop", "bob@example.com", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	_, err = e.w.Submit(ctx, page, "bob", "pw-bob-123", "", true, netip.Addr{})
	wantKind(t, err, KindInvalid)
	if len(e.users.created) != 0 {
		t.Fatalf("created %v against the sign-up rules", e.users.created)
	}
	u, err := e.w.Submit(ctx, page, "bob", "pw-bob-123", "bob@example.com", true, netip.Addr{})
	if err != nil || u.Name != "bob" || u.Email != "bob@example.com" {
		t.Fatalf("Submit(create) = %+v, %v", u, err)
	}
	if len(e.users.created) != 1 {
		t.Fatalf("created %v", e.users.created)
	}
	tok, err := e.w.Collect(ctx, done)
	if err != nil || tok == "" {
		t.Fatalf("Collect = %q, %v", tok, err)
	}
	if id, _ := e.a.ByToken(ctx, tok, netip.MustParseAddr("192.0.2.1")); id.Name != "bob" || id.Email != "bob@example.com" {
		t.Errorf("token of %+v", id)
	}

	// An existing name with create set is a login.
	page, _ = e.start(t, true)
	_, err = e.w.Submit(ctx, page, "alice", "wrong", "", true, netip.Addr{})
	wantKind(t, err, KindUnauthorized)
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", true, netip.Addr{}); err != nil {
		t.Fatal(err)
	}

	// Sign-up disabled.
	e = newWebLoginEnv(t, false)
	page, _ = e.start(t, true)
	if info, _ := e.w.Page(ctx, page); info.SignUp {
		t.Errorf("Page.SignUp with sign-up disabled")
	}
	_, err = e.w.Submit(ctx, page, "carol", "pw-carol-1", "", true, netip.Addr{})
	wantKind(t, err, KindForbidden)
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
}

func TestWebLoginTooManyFailures(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, false)
	for i := 1; i < webLoginMaxFailures; i++ {
		_, err := e.w.Submit(ctx, page, "alice", fmt.Sprint("guess", i), "", false, netip.Addr{})
		if err == ErrWebLoginCancelled || !IsKind(err, KindUnauthorized) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := e.w.Submit(ctx, page, "alice", "last-guess", "", false, netip.Addr{}); err != ErrWebLoginCancelled {
		t.Fatalf("attempt %d: %v, want the login cancelled", webLoginMaxFailures, err)
	}
	if _, err := e.w.Submit(ctx, page, "alice", "s3cret-pw", "", false, netip.Addr{}); !IsKind(err, KindNotFound) {
		t.Fatalf("Submit after cancellation = %v", err)
	}
	if _, err := e.w.Collect(ctx, done); !IsKind(err, KindNotFound) {
		t.Fatalf("Collect after cancellation = %v", err)
	}
}

func TestWebLoginBadIDs(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	for _, id := range []string{"", "short", strings.Repeat("a", 44), strings.Repeat("a", 42) + "/", strings.Repeat("a", 42) + "%"} {
		if _, err := e.w.Collect(ctx, id); !IsKind(err, KindNotFound) {
			t.Errorf("Collect(%q) = %v", id, err)
		}
		if _, err := e.w.Page(ctx, id); !IsKind(err, KindNotFound) {
			t.Errorf("Page(%q) = %v", id, err)
		}
	}
	if e.docs.gets != 0 {
		t.Errorf("malformed ids reached the store %d times", e.docs.gets)
	}
	// Well-formed but unknown.
	if _, err := e.w.Collect(ctx, strings.Repeat("A", 43)); err != errNoWebLogin {
		t.Errorf("Collect(unknown) = %v", err)
	}
}

func TestWebLoginStoreErrors(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	page, done := e.start(t, false)
	down := E(KindUnavailable, "CouchDB is down")
	w := NewWebLogins(e.a, failingDocs{down}, 0)
	if _, _, err := w.Start(ctx, false); !IsKind(err, KindUnavailable) {
		t.Errorf("Start = %v", err)
	}
	if _, err := w.Collect(ctx, done); !IsKind(err, KindUnavailable) {
		t.Errorf("Collect = %v", err)
	}
	if _, err := w.Submit(ctx, page, "alice", "x", "", false, netip.Addr{}); !IsKind(err, KindUnavailable) {
		t.Errorf("Submit = %v", err)
	}
}

type failingDocs struct{ err error }

func (f failingDocs) Get(context.Context, string, any) (string, error)         { return "", f.err }
func (f failingDocs) Put(context.Context, string, string, any) (string, error) { return "", f.err }
func (f failingDocs) Delete(context.Context, string, string) error             { return f.err }

func TestWebLoginSweep(t *testing.T) {
	ctx := context.Background()
	e := newWebLoginEnv(t, true)
	e.start(t, false)
	e.now = e.now.Add(WebLoginTTL / 2)
	_, fresh := e.start(t, false)
	e.docs.mu.Lock()
	e.docs.docs["lease:follower"] = memDoc{rev: 1, body: json.RawMessage(`{"expires":"2000-01-01T00:00:00Z"}`)}
	e.docs.mu.Unlock()
	e.now = e.now.Add(WebLoginTTL/2 + time.Second) // the first one has expired
	if err := e.w.Sweep(ctx, e.docs); err != nil {
		t.Fatal(err)
	}
	if e.docs.count() != 2 {
		t.Fatalf("%d documents after the sweep, want the fresh login and the lease", e.docs.count())
	}
	if tok, err := e.w.Collect(ctx, fresh); err != nil || tok != "" {
		t.Fatalf("the fresh login after the sweep: %q, %v", tok, err)
	}
}

// A Start sweeps expired logins in the background. In a synctest bubble
// synctest.Wait returns once the sweep goroutine is done.
func TestWebLoginBackgroundSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, users, _ := newTestAccounts(true)
		users.add("alice", "s3cret-pw", "")
		docs := newMemDocs()
		now := accountsNow
		var mu sync.Mutex
		w := NewWebLogins(a, docs, time.Minute)
		w.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		if _, _, err := w.Start(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the first Start's sweep ran (nothing to delete yet)
		if w.sweeping.Load() {
			t.Fatal("the first sweep still runs with every goroutine blocked")
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		if _, _, err := w.Start(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // its sweep ran
		if n := docs.count(); n != 1 {
			t.Fatalf("the expired login was not swept: %d documents", n)
		}
	})
}
