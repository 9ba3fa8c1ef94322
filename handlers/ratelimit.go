package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// LoginLimit bounds failed password checks (npm's couch login PUT, Basic
// credentials, npm token create): after PerUser failures for one user name,
// or PerAddr failures from one client address, within Window, further
// password checks for that name or from that address are refused with 429
// and Retry-After, without asking CouchDB, until the oldest failures age
// out of the window. Tokens are not affected.
//
// The counts live in this instance's memory: each instance behind a load
// balancer counts on its own (a client spread over n instances gets up to
// n times the limit) and a restart forgets them. A limiter shared by all
// instances would keep the counts in CouchDB. Behind a reverse proxy every
// client has the proxy's address (couchnpm reads no X-Forwarded-For), so
// the per-address limit then applies to all clients together: raise or
// disable it there.
type LoginLimit struct {
	PerUser int           // failures per user name; 0: 10; negative: no per-user limit
	PerAddr int           // failures per client address (IPv6: per /64); 0: 30; negative: none
	Window  time.Duration // 0: 5 minutes
	MaxKeys int           // names and addresses tracked at once; 0: 100000

	now func() time.Time // tests
}

func (c LoginLimit) withDefaults() LoginLimit {
	if c.PerUser == 0 {
		c.PerUser = 10
	}
	if c.PerAddr == 0 {
		c.PerAddr = 30
	}
	if c.Window <= 0 {
		c.Window = 5 * time.Minute
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// loginLimiter is a sliding-window count of failures per key ("u:" name,
// "a:" address). Checks in flight count too (pending), so a burst of
// parallel guesses cannot all pass the check before the first failure is
// recorded.
type loginLimiter struct {
	cfg     LoginLimit
	mu      sync.Mutex
	entries map[string]*limitEntry
	sweepAt time.Time
}

type limitEntry struct {
	fails   []time.Time // within the window, oldest first, at most the limit
	pending int
}

func newLoginLimiter(cfg LoginLimit) *loginLimiter {
	return &loginLimiter{cfg: cfg.withDefaults(), entries: map[string]*limitEntry{}}
}

// outcome of a guarded password check.
type outcome int

const (
	neutral outcome = iota // neither (CouchDB down, malformed request)
	success
	failure
)

type limitKey struct {
	key   string
	limit int
	user  bool
}

func (l *loginLimiter) keys(name string, addr netip.Addr) []limitKey {
	var ks []limitKey
	if l.cfg.PerUser > 0 && name != "" {
		if len(name) > 64 { // names that long are invalid anyway; bound the memory
			name = name[:64]
		}
		ks = append(ks, limitKey{"u:" + name, l.cfg.PerUser, true})
	}
	if l.cfg.PerAddr > 0 && addr.IsValid() {
		addr = addr.Unmap()
		k := addr.String()
		if addr.Is6() {
			p, _ := addr.Prefix(64) // one subscriber usually holds a whole /64
			k = p.String()
		}
		ks = append(ks, limitKey{"a:" + k, l.cfg.PerAddr, false})
	}
	return ks
}

// begin reserves a password check for name from addr, or refuses it with
// a 429 error. The caller reports the check's outcome through done.
func (l *loginLimiter) begin(name string, addr netip.Addr) (done func(outcome), err error) {
	ks := l.keys(name, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.now()
	if now.After(l.sweepAt) {
		l.sweep(now)
		l.sweepAt = now.Add(l.cfg.Window)
	}
	var wait time.Duration
	for _, k := range ks {
		e := l.entries[k.key]
		if e == nil {
			continue
		}
		l.expire(e, now)
		if over := len(e.fails) + e.pending - k.limit; over >= 0 {
			w := time.Second // only checks in flight: they end soon
			if over < len(e.fails) {
				w = max(w, e.fails[over].Add(l.cfg.Window).Sub(now))
			}
			wait = max(wait, w)
		}
	}
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, &rateLimited{
			err:   registry.E(registry.KindTooManyRequests, "too many failed login attempts; try again in %d seconds", secs),
			retry: secs,
		}
	}
	held := make([]*limitEntry, len(ks))
	for i, k := range ks {
		e := l.entries[k.key]
		if e == nil {
			if len(l.entries) >= l.cfg.MaxKeys {
				l.makeRoom(now)
			}
			e = &limitEntry{}
			l.entries[k.key] = e
		}
		e.pending++
		held[i] = e
	}
	var once sync.Once
	return func(o outcome) {
		once.Do(func() { l.end(ks, held, o) })
	}, nil
}

func (l *loginLimiter) end(ks []limitKey, held []*limitEntry, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.now()
	for i, k := range ks {
		e := held[i]
		e.pending--
		switch {
		case o == failure:
			e.fails = append(e.fails, now)
			if len(e.fails) > k.limit {
				e.fails = e.fails[len(e.fails)-k.limit:]
			}
		case o == success && k.user:
			// The right password clears the name's count; an address's
			// count stays (a caller with one good account must not reset
			// the count of its guesses at others).
			e.fails = nil
		}
		if e.pending == 0 && len(e.fails) == 0 && l.entries[k.key] == e {
			delete(l.entries, k.key)
		}
	}
}

func (l *loginLimiter) expire(e *limitEntry, now time.Time) {
	cut := 0
	for cut < len(e.fails) && !now.Before(e.fails[cut].Add(l.cfg.Window)) {
		cut++
	}
	e.fails = e.fails[cut:]
}

// sweep drops entries with nothing left to count.
func (l *loginLimiter) sweep(now time.Time) {
	for k, e := range l.entries {
		l.expire(e, now)
		if e.pending == 0 && len(e.fails) == 0 {
			delete(l.entries, k)
		}
	}
}

// makeRoom keeps the table bounded: expired entries first, then arbitrary
// idle ones (a flood of distinct names or addresses can thus age out
// others' counts, but each flooding address is itself limited).
func (l *loginLimiter) makeRoom(now time.Time) {
	l.sweep(now)
	for k, e := range l.entries {
		if len(l.entries) < l.cfg.MaxKeys {
			return
		}
		if e.pending == 0 {
			delete(l.entries, k)
		}
	}
}

// rateLimited is a 429 with its Retry-After.
type rateLimited struct {
	err   *registry.Error
	retry int // seconds
}

func (e *rateLimited) Error() string { return e.err.Error() }
func (e *rateLimited) Unwrap() error { return e.err }

// retryAfter is the Retry-After value for a 429 error.
func retryAfter(err error) string {
	var rl *rateLimited
	if errors.As(err, &rl) {
		return strconv.Itoa(rl.retry)
	}
	return "60"
}

type limiterKey struct{}

func withLimiter(ctx context.Context, l *loginLimiter) context.Context {
	return context.WithValue(ctx, limiterKey{}, l)
}

// guardPassword runs check, a verification of name's password, under the
// request's login limiter (none outside New's handler: then it just runs
// check). A refused credential (KindUnauthorized) counts as a failure; a
// blocked caller gets a 429 error and check is not run at all. The web
// login's form can use it too.
func guardPassword[T any](r *http.Request, name string, check func() (T, error)) (T, error) {
	l, _ := r.Context().Value(limiterKey{}).(*loginLimiter)
	if l == nil {
		return check()
	}
	done, err := l.begin(name, remoteAddr(r))
	if err != nil {
		var zero T
		return zero, err
	}
	o := neutral
	defer func() { done(o) }() // also when check panics
	v, err := check()
	switch {
	case err == nil:
		o = success
	case registry.IsKind(err, registry.KindUnauthorized):
		o = failure
	}
	return v, err
}
