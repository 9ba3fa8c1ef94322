package registry

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFeed is a changes feed a test drives: send delivers a change (or a
// heartbeat, "") and returns once the cache has heard it; breakFeed makes
// the current connection fail.
type fakeFeed struct {
	events chan fakeEvent
	opens  atomic.Int64
}

type fakeEvent struct {
	id   string
	fail bool
	done chan struct{}
}

func newFakeFeed() *fakeFeed { return &fakeFeed{events: make(chan fakeEvent)} }

func (f *fakeFeed) FollowChanges(ctx context.Context, _ time.Duration, on func(string)) error {
	f.opens.Add(1)
	on("")
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.events:
			if ev.fail {
				close(ev.done)
				return errors.New("feed broke")
			}
			on(ev.id)
			close(ev.done)
		}
	}
}

func (f *fakeFeed) send(t *testing.T, id string) {
	t.Helper()
	ev := fakeEvent{id: id, done: make(chan struct{})}
	select {
	case f.events <- ev:
	case <-time.After(5 * time.Second):
		t.Fatal("feed not followed")
	}
	<-ev.done
}

func (f *fakeFeed) breakFeed(t *testing.T) {
	t.Helper()
	ev := fakeEvent{fail: true, done: make(chan struct{})}
	f.events <- ev
	<-ev.done
}

// countingStores count the reads authentication makes.
type countingTokens struct {
	*fakeTokens
	reads atomic.Int64
	// during runs inside a read, after the record was read
	during func()
}

func (c *countingTokens) GetToken(ctx context.Context, key string) (*Token, error) {
	c.reads.Add(1)
	t, err := c.fakeTokens.GetToken(ctx, key)
	if c.during != nil {
		c.during()
	}
	return t, err
}

type countingUsers struct {
	*fakeUsers
	reads atomic.Int64
}

func (c *countingUsers) GetUser(ctx context.Context, name string) (*User, error) {
	c.reads.Add(1)
	return c.fakeUsers.GetUser(ctx, name)
}

func (c *countingUsers) UpdateTwoFactor(_ context.Context, name string, change TwoFactorChange) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[name]
	tf, err := change(u.TwoFactor)
	if err != nil {
		return err
	}
	u.TwoFactor = tf
	return nil
}

func (c *countingUsers) setDisabled(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[name].Disabled = true
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type authHarness struct {
	accounts       *Accounts
	cache          *AuthCache
	tokens         *countingTokens
	users          *countingUsers
	tokFeed, uFeed *fakeFeed
	clock          *fakeClock
	token          string
}

// newAuthHarness builds Accounts with a cache whose feeds are connected,
// and one account "alice" with a token.
func newAuthHarness(t *testing.T, entries int) *authHarness {
	t.Helper()
	h := &authHarness{tokens: &countingTokens{fakeTokens: newFakeTokens()}, users: &countingUsers{fakeUsers: newFakeUsers()},
		tokFeed: newFakeFeed(), uFeed: newFakeFeed(), clock: &fakeClock{t: accountsNow}}
	h.users.add("alice", "correct horse battery", "a@x")
	c, err := NewAuthCache(AuthCacheConfig{Tokens: h.tokFeed, Users: h.uFeed, Entries: entries, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.now = h.clock.now
	h.cache = c
	h.accounts = mustAccounts(AccountsConfig{Users: h.users, Tokens: h.tokens, Cache: c})
	h.accounts.now = h.clock.now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.waitFeeds(t, 2)
	tok, err := h.accounts.Login(context.Background(), "alice", "correct horse battery", "", "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	h.token = tok
	return h
}

func (h *authHarness) waitFeeds(t *testing.T, up int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.cache.Stats().FeedsUp != up {
		if time.Now().After(deadline) {
			t.Fatalf("feeds up: %d, want %d", h.cache.Stats().FeedsUp, up)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *authHarness) auth(t *testing.T, token string) error {
	t.Helper()
	_, err := h.accounts.ByToken(context.Background(), token, netip.MustParseAddr("192.0.2.1"))
	return err
}

// reads is the CouchDB reads made so far (tokens + users).
func (h *authHarness) reads() int64 { return h.tokens.reads.Load() + h.users.reads.Load() }

func TestAuthCacheWarmHitReadsNothing(t *testing.T) {
	h := newAuthHarness(t, 0)
	if err := h.auth(t, h.token); err != nil {
		t.Fatal(err)
	}
	before := h.reads()
	for range 10 {
		if err := h.auth(t, h.token); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.reads() - before; got != 0 {
		t.Fatalf("warm authentications read CouchDB %d times, want 0", got)
	}
	// Basic credentials: the password is checked each time, the account
	// comes from memory.
	before = h.reads()
	for range 3 {
		if _, err := h.accounts.ByPassword(context.Background(), "alice", "correct horse battery", "", netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.reads() - before; got != 0 {
		t.Fatalf("warm Basic authentications read the account %d times, want 0", got)
	}
	if _, err := h.accounts.ByPassword(context.Background(), "alice", "wrong", "", netip.Addr{}); !IsKind(err, KindUnauthorized) {
		t.Fatalf("wrong password with a cached account: %v", err)
	}
}

func TestAuthCacheLocalRevocationAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(h *authHarness) error
	}{
		{"logout", func(h *authHarness) error { return h.accounts.Logout(context.Background(), h.token) }},
		{"token revoke", func(h *authHarness) error {
			return h.accounts.RevokeToken(context.Background(), Identity{Name: "alice"}, TokenKey(h.token))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAuthHarness(t, 0)
			for range 2 {
				if err := h.auth(t, h.token); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.revoke(h); err != nil {
				t.Fatal(err)
			}
			// no feed event: the local write alone must do it
			if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
				t.Fatalf("revoked token: %v, want unauthorized", err)
			}
		})
	}
}

func TestAuthCacheTwoFactorChangeAtOnce(t *testing.T) {
	h := newAuthHarness(t, 0)
	id, err := h.accounts.ByToken(context.Background(), h.token, netip.Addr{})
	if err != nil || id.TwoFactor != "" {
		t.Fatalf("%+v %v", id, err)
	}
	err = h.accounts.users.UpdateTwoFactor(context.Background(), "alice", func(*TwoFactor) (*TwoFactor, error) {
		return &TwoFactor{Mode: TwoFactorAuthAndWrites, Secret: "x"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err = h.accounts.ByToken(context.Background(), h.token, netip.Addr{})
	if err != nil || id.TwoFactor != TwoFactorAuthAndWrites {
		t.Fatalf("after enabling 2FA: %+v %v", id, err)
	}
}

// A change made by another instance (here: straight in the store) is seen
// when the feed reports it, not before the cache is told.
func TestAuthCacheFeedInvalidates(t *testing.T) {
	h := newAuthHarness(t, 0)
	if err := h.auth(t, h.token); err != nil {
		t.Fatal(err)
	}
	// another instance revokes the token
	h.tokens.mu.Lock()
	delete(h.tokens.tokens, TokenKey(h.token))
	h.tokens.mu.Unlock()
	h.tokFeed.send(t, TokenKey(h.token))
	if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
		t.Fatalf("token revoked elsewhere: %v, want unauthorized", err)
	}

	// another instance (or couchnpm user disable) disables the account
	h2 := newAuthHarness(t, 0)
	if err := h2.auth(t, h2.token); err != nil {
		t.Fatal(err)
	}
	h2.users.setDisabled("alice")
	h2.uFeed.send(t, "someone-else")
	if err := h2.auth(t, h2.token); err != nil {
		t.Fatalf("an unrelated change dropped alice: %v", err)
	}
	h2.uFeed.send(t, "alice")
	if err := h2.auth(t, h2.token); !IsKind(err, KindUnauthorized) {
		t.Fatalf("account disabled elsewhere: %v, want unauthorized", err)
	}
}

func TestAuthCacheStaleOrBrokenFeedReads(t *testing.T) {
	t.Run("silent feed", func(t *testing.T) {
		h := newAuthHarness(t, 0)
		if err := h.auth(t, h.token); err != nil {
			t.Fatal(err)
		}
		h.clock.advance(h.cache.Bound() + time.Millisecond) // no heartbeat for longer than the bound
		h.users.setDisabled("alice")
		before := h.reads()
		if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
			t.Fatalf("stale feed served a disabled account: %v", err)
		}
		if h.reads() == before {
			t.Fatal("stale feed: no read")
		}
		// a heartbeat makes the feed trusted again, but alice's entry read
		// before must not come back
		h.tokFeed.send(t, "")
		h.uFeed.send(t, "")
		if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
			t.Fatalf("after the heartbeat: %v", err)
		}
	})
	t.Run("broken feed", func(t *testing.T) {
		h := newAuthHarness(t, 0)
		if err := h.auth(t, h.token); err != nil {
			t.Fatal(err)
		}
		opens := h.uFeed.opens.Load()
		h.uFeed.breakFeed(t)
		// changes while the feed is down are not seen: the entry read
		// under the old connection must not be trusted after it reconnects
		h.users.setDisabled("alice")
		deadline := time.Now().Add(5 * time.Second)
		for h.uFeed.opens.Load() == opens {
			if time.Now().After(deadline) {
				t.Fatal("feed not reopened")
			}
			time.Sleep(5 * time.Millisecond)
		}
		h.waitFeeds(t, 2)
		if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
			t.Fatalf("after reconnecting: %v", err)
		}
	})
	t.Run("down feed", func(t *testing.T) {
		h := newAuthHarness(t, 0)
		if err := h.auth(t, h.token); err != nil {
			t.Fatal(err)
		}
		h.tokFeed.breakFeed(t)
		h.waitFeeds(t, 1) // it reconnects after a backoff of 200ms
		before := h.tokens.reads.Load()
		if err := h.auth(t, h.token); err != nil {
			t.Fatal(err)
		}
		if h.tokens.reads.Load() == before {
			t.Fatal("a token was served from memory while its feed was down")
		}
	})
}

func TestAuthCacheGarbageNeverCached(t *testing.T) {
	h := newAuthHarness(t, 2)
	if err := h.auth(t, h.token); err != nil {
		t.Fatal(err)
	}
	before := h.tokens.reads.Load()
	const garbage = 500
	for i := range garbage {
		tok, _ := NewToken()
		if err := h.auth(t, tok); !IsKind(err, KindUnauthorized) {
			t.Fatalf("garbage token %d: %v", i, err)
		}
	}
	if got := h.tokens.reads.Load() - before; got != garbage {
		t.Fatalf("%d garbage tokens cost %d reads, want one each", garbage, got)
	}
	s := h.cache.Stats()
	if s.Entries != 2 || s.Evictions != 0 {
		t.Fatalf("garbage changed the cache: %+v", s)
	}
	before = h.reads()
	if err := h.auth(t, h.token); err != nil || h.reads() != before {
		t.Fatalf("good token after the flood: %v, %d reads", err, h.reads()-before)
	}
	// A token created (on another instance) after a miss works at once.
	tok, _ := NewToken()
	if err := h.auth(t, tok); !IsKind(err, KindUnauthorized) {
		t.Fatal(err)
	}
	if err := h.tokens.fakeTokens.PutToken(context.Background(), &Token{Key: TokenKey(tok), User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := h.auth(t, tok); err != nil {
		t.Fatalf("new token after a miss: %v", err)
	}
}

// Expiry and CIDR run on every request, also on a warm entry.
func TestAuthCacheExpiryAndCIDRStillChecked(t *testing.T) {
	h := newAuthHarness(t, 0)
	exp := accountsNow.Add(time.Minute)
	tok, _ := NewToken()
	if err := h.tokens.fakeTokens.PutToken(context.Background(), &Token{Key: TokenKey(tok), User: "alice", Expires: &exp, CIDR: []string{"192.0.2.0/24"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.auth(t, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := h.accounts.ByToken(context.Background(), tok, netip.MustParseAddr("198.51.100.1")); !IsKind(err, KindUnauthorized) {
		t.Fatalf("warm token outside its CIDR: %v", err)
	}
	h.clock.advance(time.Minute)
	h.tokFeed.send(t, "") // the feed stays trusted
	h.uFeed.send(t, "")
	if err := h.auth(t, tok); !IsKind(err, KindUnauthorized) {
		t.Fatalf("warm expired token: %v", err)
	}
}

// A read that a change overtook is not kept: the next request reads again.
func TestAuthCacheOvertakenReadNotKept(t *testing.T) {
	h := newAuthHarness(t, 0)
	key := TokenKey(h.token)
	h.tokens.during = func() {
		h.tokens.during = nil
		// the revocation lands after the read, its change is seen before
		// the read is stored
		h.tokens.mu.Lock()
		delete(h.tokens.tokens, key)
		h.tokens.mu.Unlock()
		h.tokFeed.send(t, key)
	}
	if err := h.auth(t, h.token); err != nil {
		t.Fatal(err) // the read itself still saw the token
	}
	if err := h.auth(t, h.token); !IsKind(err, KindUnauthorized) {
		t.Fatalf("overtaken read was kept: %v", err)
	}
}

func TestAuthCacheEvictsByCount(t *testing.T) {
	h := newAuthHarness(t, 3) // alice + two tokens
	var toks []string
	for range 3 {
		tok, _ := NewToken()
		if err := h.tokens.fakeTokens.PutToken(context.Background(), &Token{Key: TokenKey(tok), User: "alice"}); err != nil {
			t.Fatal(err)
		}
		if err := h.auth(t, tok); err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if s := h.cache.Stats(); s.Entries != 3 || s.Evictions == 0 {
		t.Fatalf("%+v", s)
	}
	before := h.tokens.reads.Load()
	if err := h.auth(t, toks[2]); err != nil || h.tokens.reads.Load() != before {
		t.Fatalf("most recent token not kept: %v", err)
	}
}

func TestNewAuthCacheRequiresFeeds(t *testing.T) {
	if _, err := NewAuthCache(AuthCacheConfig{Tokens: newFakeFeed()}); !IsKind(err, KindInternal) {
		t.Fatalf("missing Users feed: %v", err)
	}
}

func (c *countingTokens) ListTokens(_ context.Context, user string) ([]*Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var list []*Token
	for _, t := range c.tokens {
		if t.User == user {
			list = append(list, &t)
		}
	}
	return list, nil
}
