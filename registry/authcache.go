package registry

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// AuthCache keeps token records and accounts in memory so that a warm
// authenticated request (an npm install with a token, a signed-in web page:
// a session cookie is a token) costs CouchDB nothing. It is safe for
// several instances sharing one CouchDB; the design, in short:
//
//   - Token records are kept by their key (the token's sha256, never the
//     token), accounts by name, in one LRU bounded by count (Entries,
//     default 100,000: about 32 MB when full).
//   - Only answers CouchDB gave are kept: a token that is absent (revoked,
//     mistyped, garbage) is never cached, so a token minted on another
//     instance works at once and a flood of garbage tokens costs one
//     CouchDB read each, as without the cache, and cannot evict anything.
//   - Invalidation follows the continuous _changes feeds of the tokens
//     database and of _users (since=now, heartbeat). An entry is trusted
//     only while the feed of its database is connected, is the connection
//     the entry was read under, and showed life (a heartbeat or a change)
//     within Bound; otherwise the request reads CouchDB, as without the
//     cache. A read that a change (or a local write) overtook is not kept.
//   - Writes made through this instance (npm logout, npm token revoke, a
//     new token, 2FA changes) invalidate synchronously: they take effect
//     at once here, and within Bound (default 3s) on every other instance.
//     Operators' commands (couchnpm user disable/delete/password
//     --revoke-tokens/reset-2fa) run in their own process and reach every
//     server through the feeds, within Bound.
//   - Expiry and CIDR limits of a token are checked on every request
//     (Accounts.ByToken), as is the account's disabled flag (from the
//     cached account). Password checks are never cached.
type AuthCache struct {
	cfg AuthCacheConfig
	now func() time.Time

	mu      sync.Mutex
	feeds   [2]authFeed // by authKind
	entries map[authKey]*list.Element
	lru     list.List // of *authEntry, most recent first

	hits, misses, invalidations, evictions atomic.Int64
}

// ChangesFollower follows a database's changes from now: on("") when the
// feed opens and at each heartbeat, on(id) for each change (a token's key,
// an account's name); it returns nil when ctx ends, an error when the feed
// breaks (couch.Tokens and couch.Users implement it).
type ChangesFollower interface {
	FollowChanges(ctx context.Context, heartbeat time.Duration, on func(id string)) error
}

// AuthCacheConfig sizes the authentication cache and names its feeds.
type AuthCacheConfig struct {
	Tokens, Users ChangesFollower // required
	// Entries bounds token records and accounts kept (default 100,000).
	Entries int
	// Heartbeat is the feeds' heartbeat (default 1s); Bound the staleness
	// bound (default 3s, at least twice Heartbeat).
	Heartbeat, Bound time.Duration
	// FeedLost, when set, hears of a feed that broke or ended (for logs).
	FeedLost func(feed string, err error, retryIn time.Duration)
}

// DefaultAuthCacheEntries is the default bound of AuthCacheConfig.Entries.
const DefaultAuthCacheEntries = 100_000

type authKind uint8

const (
	authToken authKind = iota
	authUser
)

var authFeedNames = [2]string{"tokens", "_users"}

type authKey struct {
	kind authKind
	id   string
}

type authFeed struct {
	// gen counts connections: changes between two are not seen (since=now),
	// so an entry is trusted only under the connection it was read in.
	gen       uint64
	connected bool
	last      time.Time // last sign of life
	// epoch counts changes and local invalidations: a read overtaken by
	// one is not kept.
	epoch uint64
}

type authEntry struct {
	key   authKey
	gen   uint64
	token *Token
	user  *User
}

// AuthCacheStats are the cache's counters.
type AuthCacheStats struct {
	Hits, Misses, Invalidations, Evictions int64
	Entries                                int
	FeedsUp                                int
}

// NewAuthCache returns an empty cache; Run starts following its feeds, and
// nothing is served from memory before they are connected.
func NewAuthCache(cfg AuthCacheConfig) (*AuthCache, error) {
	if cfg.Tokens == nil || cfg.Users == nil {
		return nil, E(KindInternal, "registry.NewAuthCache: Tokens and Users feeds are required")
	}
	if cfg.Entries <= 0 {
		cfg.Entries = DefaultAuthCacheEntries
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Bound <= 0 {
		cfg.Bound = 3 * cfg.Heartbeat
	}
	if cfg.Bound < 2*cfg.Heartbeat {
		cfg.Bound = 2 * cfg.Heartbeat
	}
	return &AuthCache{cfg: cfg, now: time.Now, entries: map[authKey]*list.Element{}}, nil
}

// Bound is the staleness bound in force: how long a change made elsewhere
// may take to be seen here.
func (c *AuthCache) Bound() time.Duration { return c.cfg.Bound }

// Stats returns the counters.
func (c *AuthCache) Stats() AuthCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := AuthCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Invalidations: c.invalidations.Load(),
		Evictions: c.evictions.Load(), Entries: len(c.entries)}
	for k := range c.feeds {
		if c.trustedLocked(authKind(k)) {
			s.FeedsUp++
		}
	}
	return s
}

// Run follows both feeds until ctx ends, reconnecting with backoff.
func (c *AuthCache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for kind, f := range map[authKind]ChangesFollower{authToken: c.cfg.Tokens, authUser: c.cfg.Users} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.follow(ctx, kind, f)
		}()
	}
	wg.Wait()
}

func (c *AuthCache) follow(ctx context.Context, kind authKind, f ChangesFollower) {
	backoff := retry.Backoff{First: 200 * time.Millisecond, Max: 10 * time.Second}
	for ctx.Err() == nil {
		c.mu.Lock()
		c.feeds[kind].gen++
		gen := c.feeds[kind].gen
		c.feeds[kind].connected = false
		c.mu.Unlock()
		started := c.now()
		err := f.FollowChanges(ctx, c.cfg.Heartbeat, func(id string) { c.feedEvent(kind, gen, id) })
		c.mu.Lock()
		c.feeds[kind].connected = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if c.now().Sub(started) > 30*time.Second {
			backoff.Reset()
		}
		delay := backoff.Next()
		if c.cfg.FeedLost != nil {
			c.cfg.FeedLost(authFeedNames[kind], err, delay)
		}
		if retry.Wait(ctx, delay) != nil {
			return
		}
	}
}

func (c *AuthCache) feedEvent(kind authKind, gen uint64, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &c.feeds[kind]
	if f.gen != gen {
		return
	}
	f.connected = true
	f.last = c.now()
	if id != "" {
		c.invalidateLocked(authKey{kind, id})
	}
}

// trustedLocked reports whether the feed of kind vouches for its entries
// now.
func (c *AuthCache) trustedLocked(kind authKind) bool {
	f := &c.feeds[kind]
	return f.connected && c.now().Sub(f.last) <= c.cfg.Bound
}

func (c *AuthCache) invalidateLocked(k authKey) {
	c.feeds[k.kind].epoch++
	if el := c.entries[k]; el != nil {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.invalidations.Add(1)
	}
}

func (c *AuthCache) invalidate(kind authKind, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidateLocked(authKey{kind, id})
}

// lookup returns a trusted entry, or a ticket to keep what the caller is
// about to read (ok false when it must not be kept).
func (c *AuthCache) lookup(k authKey) (e *authEntry, gen, epoch uint64, keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &c.feeds[k.kind]
	trusted := c.trustedLocked(k.kind)
	if el := c.entries[k]; el != nil {
		e := el.Value.(*authEntry)
		if trusted && e.gen == f.gen {
			c.lru.MoveToFront(el)
			c.hits.Add(1)
			return e, 0, 0, false
		}
		c.lru.Remove(el)
		delete(c.entries, k)
	}
	c.misses.Add(1)
	return nil, f.gen, f.epoch, trusted
}

// keep stores what a read returned, unless a change or a local write
// overtook it or the feed reconnected meanwhile.
func (c *AuthCache) keep(e *authEntry, gen, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &c.feeds[e.key.kind]
	if f.gen != gen || f.epoch != epoch || !c.trustedLocked(e.key.kind) {
		return
	}
	e.gen = gen
	if el := c.entries[e.key]; el != nil {
		c.lru.Remove(el)
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for len(c.entries) > c.cfg.Entries {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*authEntry).key)
		c.evictions.Add(1)
	}
}

// token returns the record of key, from memory when trusted; absent
// records are never kept.
func (c *AuthCache) token(ctx context.Context, key string, get func(context.Context, string) (*Token, error)) (*Token, error) {
	k := authKey{authToken, key}
	e, gen, epoch, keep := c.lookup(k)
	if e != nil {
		t := *e.token
		return &t, nil
	}
	t, err := get(ctx, key)
	if err != nil || !keep {
		return t, err
	}
	kept := *t
	c.keep(&authEntry{key: k, token: &kept}, gen, epoch)
	return t, nil
}

// user returns the account name, from memory when trusted; absent
// accounts are never kept.
func (c *AuthCache) user(ctx context.Context, name string, get func(context.Context, string) (*User, error)) (*User, error) {
	k := authKey{authUser, name}
	e, gen, epoch, keep := c.lookup(k)
	if e != nil {
		u := *e.user
		return &u, nil
	}
	u, err := get(ctx, name)
	if err != nil || !keep {
		return u, err
	}
	kept := *u
	c.keep(&authEntry{key: k, user: &kept}, gen, epoch)
	return u, nil
}

// cachedTokens invalidates a token's entry after every write to it, so
// that a revocation takes effect at once on this instance.
type cachedTokens struct {
	TokenStore
	c *AuthCache
}

func (s cachedTokens) PutToken(ctx context.Context, t *Token) error {
	defer s.c.invalidate(authToken, t.Key)
	return s.TokenStore.PutToken(ctx, t)
}

func (s cachedTokens) DeleteToken(ctx context.Context, key string) error {
	defer s.c.invalidate(authToken, key)
	return s.TokenStore.DeleteToken(ctx, key)
}

// cachedUsers invalidates an account's entry after every write to it
// through Accounts (creation, two-factor changes).
type cachedUsers struct {
	UserStore
	c *AuthCache
}

func (s cachedUsers) CreateUser(ctx context.Context, name, password, email string) error {
	defer s.c.invalidate(authUser, name)
	return s.UserStore.CreateUser(ctx, name, password, email)
}

func (s cachedUsers) UpdateTwoFactor(ctx context.Context, name string, change TwoFactorChange) error {
	defer s.c.invalidate(authUser, name)
	return s.UserStore.UpdateTwoFactor(ctx, name, change)
}
