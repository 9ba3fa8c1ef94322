package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type limitEnv struct {
	*env
	clock *fakeClock

	mu     sync.Mutex
	delays []time.Duration // the slow-downs waited, in order
}

// newLimitEnv is newEnv (fakes) with a login limit on a fake clock; the
// slow-downs are recorded instead of waited.
func newLimitEnv(t *testing.T, lim LoginLimit, opts ...func(*Config)) *limitEnv {
	t.Helper()
	e := newEnv(t, zerolog.InfoLevel)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	le := &limitEnv{env: e, clock: clock}
	lim.now = clock.Now
	lim.sleep = func(_ context.Context, d time.Duration) error {
		le.mu.Lock()
		defer le.mu.Unlock()
		le.delays = append(le.delays, d)
		return nil
	}
	cfg := Config{PublicURL: publicURL, MaxPublishBytes: 4096, LoginLimit: lim}
	for _, o := range opts {
		o(&cfg)
	}
	e.h = mustNew(t, cfg, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.New(e.logs))
	return le
}

// takeDelays returns the slow-downs recorded since the last call.
func (e *limitEnv) takeDelays() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.delays
	e.delays = nil
	return d
}

// whoamiBasic is GET /-/whoami with Basic credentials from addr.
func (e *limitEnv) whoamiBasic(t *testing.T, user, pass, addr string) *httptest.ResponseRecorder {
	t.Helper()
	req := httpRequest(t, "GET", "/-/whoami")
	req.RemoteAddr = addr
	req.Header.Set("Authorization", basicAuth(user, pass))
	return serve(e.env, req)
}

// couchLogin is npm's legacy login PUT from addr.
func (e *limitEnv) couchLogin(t *testing.T, user, pass, addr string) *httptest.ResponseRecorder {
	t.Helper()
	req := httpRequest(t, "PUT", "/-/user/org.couchdb.user:"+user)
	req.RemoteAddr = addr
	req.Header.Set("Content-Type", "application/json")
	body := fmt.Sprintf(`{"_id":"org.couchdb.user:%s","name":%q,"password":%q,"type":"user","roles":[]}`, user, user, pass)
	req.Body = nopCloser{strings.NewReader(body)}
	req.ContentLength = int64(len(body))
	return serve(e.env, req)
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func want429(t *testing.T, rec *httptest.ResponseRecorder, maxRetry int) {
	t.Helper()
	wantStatus(t, rec, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > maxRetry {
		t.Fatalf("Retry-After = %q, want 1..%d", rec.Header().Get("Retry-After"), maxRetry)
	}
	if m := decodeJSON(t, rec); !strings.Contains(fmt.Sprint(m["reason"]), "too many failed login attempts") {
		t.Errorf("reason = %v", m["reason"])
	}
}

const addrA, addrB = "192.0.2.1:1234", "198.51.100.7:5555"

func TestLoginLimitBasicAuth(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{})
	for i := 0; i < 10; i++ {
		wantStatus(t, e.whoamiBasic(t, "alice", "wrong", addrA), http.StatusUnauthorized)
		e.clock.Advance(time.Second)
	}
	if d := e.takeDelays(); len(d) != 0 {
		t.Errorf("the first 10 failures were slowed down: %v", d)
	}
	// Blocked from this address: even the right password is not checked.
	want429(t, e.whoamiBasic(t, "alice", "secret", addrA), 300)
	// Not from another: the name is only slowed down there.
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrB), http.StatusOK)
	if d := e.takeDelays(); len(d) != 1 || d[0] != 250*time.Millisecond {
		t.Errorf("delays = %v, want [250ms] (10 failures of the name)", d)
	}
	// Tokens are not password checks.
	wantStatus(t, e.do(t, "GET", "/-/whoami", nil, "Authorization: Bearer cnpm_alice"), http.StatusOK)
	// Retry-After counts down to when the first failure leaves the window.
	rec := e.whoamiBasic(t, "alice", "secret", addrA)
	want429(t, rec, 300)
	if ra := rec.Header().Get("Retry-After"); ra != "290" {
		t.Errorf("Retry-After = %s, want 290 (5 min after the first failure, 10 s ago)", ra)
	}
	e.clock.Advance(290 * time.Second)
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrA), http.StatusOK)
}

func TestLoginLimitCouchLogin(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{})
	for i := 0; i < 10; i++ {
		wantStatus(t, e.couchLogin(t, "alice", "wrong", addrA), http.StatusUnauthorized)
	}
	want429(t, e.couchLogin(t, "alice", "secret", addrA), 300)
	logins := len(e.accounts.logins)
	// Basic auth and the login PUT share the count.
	want429(t, e.whoamiBasic(t, "alice", "secret", addrA), 300)
	if len(e.accounts.logins) != logins {
		t.Errorf("a blocked login reached the accounts")
	}
	// Other users are not affected.
	wantStatus(t, e.couchLogin(t, "bob", "pw", addrB), http.StatusCreated)
	e.clock.Advance(5 * time.Minute)
	wantStatus(t, e.couchLogin(t, "alice", "secret", addrA), http.StatusCreated)
}

// The issue this limiter answers: ten wrong passwords from anywhere locked
// the real user out for five minutes. A stranger at B, however many
// guesses, only blocks B; from many addresses, the name's checks slow down
// (up to MaxDelay) but the real user at A still logs in.
func TestLoginLimitStrangerCannotLockOut(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{})
	refused := 0
	for i := 0; i < 100; i++ {
		rec := e.couchLogin(t, "alice", fmt.Sprint("guess", i), addrB)
		if rec.Code == http.StatusTooManyRequests {
			refused++
		} else {
			wantStatus(t, rec, http.StatusUnauthorized)
		}
	}
	if refused != 90 {
		t.Errorf("%d of 100 guesses from B answered 429, want 90 (10 per name and address)", refused)
	}
	wantStatus(t, e.couchLogin(t, "alice", "secret", addrA), http.StatusCreated)
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrA), http.StatusOK)

	// A distributed guesser: 100 addresses, one guess each. None is
	// blocked; the name's checks slow down, doubling to MaxDelay.
	e.takeDelays()
	for i := 0; i < 100; i++ {
		addr := fmt.Sprintf("203.0.113.%d:4000", i)
		wantStatus(t, e.whoamiBasic(t, "alice", "wrong", addr), http.StatusUnauthorized)
	}
	d := e.takeDelays()
	if len(d) != 90 || d[0] != 250*time.Millisecond || d[1] != 500*time.Millisecond || d[89] != 4*time.Second {
		t.Errorf("delays = %v, want 90 from 250ms doubling to 4s", d)
	}
	// The real user: slowed down, never refused; the success clears the
	// name's count.
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrA), http.StatusOK)
	if d := e.takeDelays(); len(d) != 1 || d[0] != 4*time.Second {
		t.Errorf("the real user's delay = %v, want [4s]", d)
	}
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrA), http.StatusOK)
	if d := e.takeDelays(); len(d) != 0 {
		t.Errorf("delays after the success = %v, want none", d)
	}
}

// A client that hangs up while slowed down ends its check as neutral.
func TestLoginLimitDelayCancelled(t *testing.T) {
	l := newLoginLimiter(LoginLimit{SlowAfter: 1, BaseDelay: time.Hour, MaxDelay: time.Hour})
	h := frontDoor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := guardPassword(l, r, "alice", func() (int, error) {
			return 0, registry.E(registry.KindUnauthorized, "wrong")
		})
		writeError(w, r, err)
	}), zerolog.Nop(), nil)
	req := httpRequest(t, "GET", "/-/whoami")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // one failure: the next check waits an hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(ctx))
	if time.Since(start) > 10*time.Second || rec.Code != http.StatusServiceUnavailable {
		t.Errorf("cancelled slowed check: status %d after %v", rec.Code, time.Since(start))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.entries {
		if e.pending != 0 || len(e.fails) != 1 {
			t.Errorf("%q: pending %d, fails %d; want 0 and 1", k, e.pending, len(e.fails))
		}
	}
}

// A success clears the name's count.
func TestLoginLimitSuccessResetsUser(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{PerAddr: -1})
	for round := 0; round < 3; round++ {
		for i := 0; i < 9; i++ {
			wantStatus(t, e.whoamiBasic(t, "alice", "wrong", addrA), http.StatusUnauthorized)
		}
		wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrA), http.StatusOK)
	}
}

// One address guessing at many names is stopped by the address count; a
// good login of its own does not reset that count.
func TestLoginLimitPerAddress(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{PerAddr: 5})
	e.accounts.passwords["mallory"] = "mine"
	for i := 0; i < 5; i++ {
		wantStatus(t, e.whoamiBasic(t, fmt.Sprintf("user%d", i), "guess", addrA), http.StatusUnauthorized)
		wantStatus(t, e.couchLogin(t, "mallory", "mine", "[2001:db8::1]:1"), http.StatusCreated)
	}
	want429(t, e.whoamiBasic(t, "user9", "guess", addrA), 300)
	want429(t, e.couchLogin(t, "alice", "secret", addrA), 300)
	// Another address is fine.
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", addrB), http.StatusOK)
	// An IPv6 /64 is one address.
	for i := 0; i < 5; i++ {
		wantStatus(t, e.whoamiBasic(t, fmt.Sprintf("v6user%d", i), "guess", fmt.Sprintf("[2001:db8:0:1::%x]:1", i+1)), http.StatusUnauthorized)
	}
	want429(t, e.whoamiBasic(t, "alice", "secret", "[2001:db8:0:1::ffff]:1"), 300)
	wantStatus(t, e.whoamiBasic(t, "alice", "secret", "[2001:db8:0:2::1]:1"), http.StatusOK)
}

// blockingAccounts holds every password check until released, to prove
// that parallel guesses count before their outcome is known.
type blockingAccounts struct {
	*fakeAccounts
	mu      sync.Mutex
	checks  int
	release chan struct{}
}

func (b *blockingAccounts) ByPassword(ctx context.Context, name, password, otp string, from netip.Addr) (registry.Identity, error) {
	b.mu.Lock()
	b.checks++
	b.mu.Unlock()
	<-b.release
	return b.fakeAccounts.ByPassword(ctx, name, password, otp, from)
}

// Forty parallel guesses admit ten password checks; the other thirty are
// refused at once. In a synctest bubble synctest.Wait tells when every
// guess is either answered or held in its check.
func TestLoginLimitParallelGuesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := &blockingAccounts{fakeAccounts: newFakeAccounts(), release: make(chan struct{})}
		h := mustNew(t, Config{PublicURL: publicURL, LoginLimit: LoginLimit{PerAddr: -1}}, fakeServices(t, &fakeRegistry{}, acc, fakePinger{}), zerolog.Nop())
		const n = 40
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httpRequest(t, "GET", "/-/whoami")
				req.Header.Set("Authorization", basicAuth("alice", fmt.Sprint("guess", i)))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				codes <- rec.Code
			}()
		}
		// The refused ones return at once, the admitted ones wait in their
		// password check: once every goroutine is blocked, exactly those are
		// left.
		synctest.Wait()
		if got := len(codes); got != n-10 {
			t.Errorf("%d answered while the admitted checks run, want %d", got, n-10)
		}
		close(acc.release)
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		if count[http.StatusUnauthorized] != 10 || count[http.StatusTooManyRequests] != n-10 {
			t.Errorf("statuses = %v, want 10×401 and %d×429", count, n-10)
		}
		if acc.checks != 10 {
			t.Errorf("%d password checks ran, want 10", acc.checks)
		}
	})
}

func TestLoginLimiterBounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := newLoginLimiter(LoginLimit{MaxKeys: 100, now: clock.Now})
	for i := 0; i < 1000; i++ {
		done, _, err := l.begin(fmt.Sprint("user", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		if err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		done(failure)
	}
	if n := len(l.entries); n > 100 {
		t.Errorf("%d entries, want at most 100", n)
	}
	clock.Advance(6 * time.Minute)
	done, _, err := l.begin("x", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	done(neutral)
	if n := len(l.entries); n != 0 {
		t.Errorf("%d entries after the window, want 0", n)
	}
}

// Neutral outcomes (CouchDB down) and invalid requests do not count.
func TestLoginLimitNeutralOutcomes(t *testing.T) {
	e := newLimitEnv(t, LoginLimit{PerUserAddr: 2})
	e.accounts.err = registry.E(registry.KindUnavailable, "couchdb down")
	for i := 0; i < 5; i++ {
		wantStatus(t, e.couchLogin(t, "alice", "wrong", addrA), http.StatusServiceUnavailable)
	}
	e.accounts.err = nil
	wantStatus(t, e.couchLogin(t, "alice", "secret", addrA), http.StatusCreated)
}

// At MaxKeys, a new key pushes out the least recently used idle one, and
// the table is never scanned whole: a flood of distinct names at the cap
// costs each request a few steps, not a pass over 100k entries under the
// mutex.
func TestLoginLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := newLoginLimiter(LoginLimit{MaxKeys: 3, PerUserAddr: -1, PerAddr: -1, now: clock.Now})
	fail := func(name string) {
		t.Helper()
		done, _, err := l.begin(name, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		done(failure)
		clock.Advance(time.Second)
	}
	fail("a")
	fail("b")
	fail("c")
	fail("a") // a is now the most recently used
	fail("d") // pushes out b
	for name, want := range map[string]bool{"u:a": true, "u:b": false, "u:c": true, "u:d": true} {
		if _, ok := l.entries[name]; ok != want {
			t.Errorf("%s kept: %v, want %v", name, ok, want)
		}
	}
	if l.byUse.Len() != len(l.entries) {
		t.Errorf("use order holds %d entries, table %d", l.byUse.Len(), len(l.entries))
	}

	big := newLoginLimiter(LoginLimit{MaxKeys: 10_000, now: clock.Now})
	start := time.Now()
	for i := range 60_000 {
		done, _, err := big.begin(fmt.Sprint("flood", i), netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		done(failure)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("60k distinct keys at a 10k cap took %v", took)
	}
	if n := len(big.entries); n > 10_000 || big.byUse.Len() != n {
		t.Errorf("%d entries (%d in use order), want at most 10000", n, big.byUse.Len())
	}
}
