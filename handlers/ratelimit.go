package handlers

import (
	"container/list"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// LoginLimit bounds failed password checks (npm's couch login PUT, Basic
// credentials, npm token create, the web login form) so that guessing is
// slow, without letting a stranger lock a user out:
//
//   - per (user name, client address): after PerUserAddr failures within
//     Window, that address's checks for that name answer 429 with
//     Retry-After, without asking CouchDB;
//   - per client address (IPv6: per /64): after PerAddr failures, all of
//     that address's checks answer 429 (one address guessing at many names);
//   - per user name, from all addresses together: never a 429 (that would
//     let anyone lock the user out), but after SlowAfter failures each check
//     of the name waits BaseDelay, doubling with each further failure up to
//     MaxDelay. The real user still logs in, a few seconds slower.
//
// A correct password clears its name's counts; an address's count stays
// (a caller with one good account must not reset its guesses at others).
// Tokens are not affected.
//
// The counts live in this instance's memory, at most MaxKeys of them: each
// instance behind a load balancer counts on its own (a client spread over
// n instances gets up to n times the limit) and a restart forgets them.
// Behind a reverse proxy every client has the proxy's address unless the
// proxy is one of Config.TrustedProxies (proxies.go), whose
// X-Forwarded-For then names the client; otherwise the per-address limits
// apply to all clients together: raise or disable them there.
type LoginLimit struct {
	PerUserAddr int           // failures per (name, address); 0: 10; negative: none
	PerAddr     int           // failures per client address; 0: 30; negative: none
	Window      time.Duration // 0: 5 minutes
	SlowAfter   int           // failures of a name before its checks slow down; 0: 10; negative: never
	BaseDelay   time.Duration // first delay; 0: 250ms
	MaxDelay    time.Duration // longest delay; 0: 4s
	MaxKeys     int           // counts kept at once; 0: 100000

	now   func() time.Time                                 // tests
	sleep func(ctx context.Context, d time.Duration) error // tests
}

func (c LoginLimit) withDefaults() LoginLimit {
	if c.PerUserAddr == 0 {
		c.PerUserAddr = 10
	}
	if c.PerAddr == 0 {
		c.PerAddr = 30
	}
	if c.Window <= 0 {
		c.Window = 5 * time.Minute
	}
	if c.SlowAfter == 0 {
		c.SlowAfter = 10
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = 250 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 4 * time.Second
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = retry.Wait
	}
	return c
}

// slowSteps is how many doublings take BaseDelay to MaxDelay.
func (c LoginLimit) slowSteps() int {
	n := 0
	for d := c.BaseDelay; d < c.MaxDelay; d *= 2 {
		n++
	}
	return n
}

// loginLimiter is a sliding-window count of failures per key. Checks in
// flight count too (pending), so a burst of parallel guesses cannot all
// pass the check before the first failure is recorded.
//
// The entries are also kept in the order they were last used (byUse,
// least recent first), so that dropping expired entries and making room
// for a new key look at the oldest few, never scan the table: under the
// mutex, a scan of MaxKeys entries on every new key would stall every
// login while a flood of names fills the table.
type loginLimiter struct {
	cfg     LoginLimit
	mu      sync.Mutex
	entries map[string]*limitEntry
	byUse   list.List // of *limitEntry
}

type limitEntry struct {
	key     string
	fails   []time.Time // within the window, oldest first, at most the key's cap
	pending int
	used    time.Time     // last begin or end
	elem    *list.Element // in byUse
}

func newLoginLimiter(cfg LoginLimit) *loginLimiter {
	return &loginLimiter{cfg: cfg.withDefaults(), entries: map[string]*limitEntry{}}
}

// touch marks e as used now: it moves to the back of byUse.
func (l *loginLimiter) touch(e *limitEntry, now time.Time) {
	e.used = now
	l.byUse.MoveToBack(e.elem)
}

// drop removes e from the table.
func (l *loginLimiter) drop(e *limitEntry) {
	delete(l.entries, e.key)
	l.byUse.Remove(e.elem)
}

// outcome of a guarded password check.
type outcome int

const (
	neutral outcome = iota // neither (CouchDB down, malformed request)
	success
	failure
)

// limitKey is one count a check belongs to.
type limitKey struct {
	key   string
	limit int  // failures kept (block: the limit; slow: enough to reach MaxDelay)
	block bool // over the limit: 429; otherwise: slow down
	user  bool // cleared by a success
}

func (l *loginLimiter) keys(name string, addr netip.Addr) []limitKey {
	if len(name) > 64 { // names that long are invalid anyway; bound the memory
		name = name[:64]
	}
	a := ""
	if addr.IsValid() {
		addr = addr.Unmap()
		a = addr.String()
		if addr.Is6() {
			p, _ := addr.Prefix(64) // one subscriber usually holds a whole /64
			a = p.String()
		}
	}
	var ks []limitKey
	if l.cfg.PerUserAddr > 0 && name != "" && a != "" {
		ks = append(ks, limitKey{key: "n:" + name + "\x00" + a, limit: l.cfg.PerUserAddr, block: true, user: true})
	}
	if l.cfg.PerAddr > 0 && a != "" {
		ks = append(ks, limitKey{key: "a:" + a, limit: l.cfg.PerAddr, block: true})
	}
	if l.cfg.SlowAfter > 0 && name != "" {
		ks = append(ks, limitKey{key: "u:" + name, limit: l.cfg.SlowAfter + l.cfg.slowSteps(), user: true})
	}
	return ks
}

// begin reserves a password check for name from addr, or refuses it with
// a 429 error. delay is how long the check must wait first (the name is
// under attack). The caller reports the check's outcome through done.
func (l *loginLimiter) begin(name string, addr netip.Addr) (done func(outcome), delay time.Duration, err error) {
	ks := l.keys(name, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.now()
	l.sweep(now)
	var wait time.Duration
	for _, k := range ks {
		e := l.entries[k.key]
		if e == nil {
			continue
		}
		l.expire(e, now)
		if !k.block {
			if over := len(e.fails) + e.pending - l.cfg.SlowAfter; over >= 0 {
				delay = min(l.cfg.BaseDelay<<min(over, 30), l.cfg.MaxDelay)
			}
			continue
		}
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
		return nil, 0, &rateLimited{
			err:   registry.E(registry.KindTooManyRequests, "too many failed login attempts; try again in %d seconds", secs),
			retry: secs,
		}
	}
	held := make([]*limitEntry, len(ks))
	for i, k := range ks {
		e := l.entries[k.key]
		if e == nil {
			if len(l.entries) >= l.cfg.MaxKeys {
				l.makeRoom()
			}
			e = &limitEntry{key: k.key}
			e.elem = l.byUse.PushBack(e)
			l.entries[k.key] = e
		}
		e.pending++
		l.touch(e, now)
		held[i] = e
	}
	var once sync.Once
	return func(o outcome) {
		once.Do(func() { l.end(ks, held, o) })
	}, delay, nil
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
			// The right password clears the name's counts; an address's
			// count stays (a caller with one good account must not reset
			// the count of its guesses at others).
			e.fails = nil
		}
		if l.entries[k.key] != e { // made room for others meanwhile
			continue
		}
		if e.pending == 0 && len(e.fails) == 0 {
			l.drop(e)
		} else {
			l.touch(e, now)
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

// sweep drops the entries unused for a window: all their failures have
// expired. It looks at the least recently used only, so each entry is
// looked at about once.
func (l *loginLimiter) sweep(now time.Time) {
	for el := l.byUse.Front(); el != nil; {
		e := el.Value.(*limitEntry)
		if now.Before(e.used.Add(l.cfg.Window)) {
			return // the rest were used later
		}
		el = el.Next()
		if e.pending > 0 {
			l.touch(e, now) // a check in flight for a window: look again later
			continue
		}
		l.drop(e)
	}
}

// makeRoom keeps the table bounded: it drops the least recently used idle
// entry (a flood of distinct names or addresses can thus age out others'
// counts, but each flooding address is itself limited).
func (l *loginLimiter) makeRoom() {
	for el := l.byUse.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*limitEntry); e.pending == 0 {
			l.drop(e)
			return
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

// guardPassword runs check, a verification of name's password in request
// r, under the login limiter l (the Server's). A refused credential
// (KindUnauthorized) counts as a failure; a blocked caller gets a 429 error
// and check is not run at all; a check of a name under attack first waits
// its delay.
func guardPassword[T any](l *loginLimiter, r *http.Request, name string, check func() (T, error)) (T, error) {
	done, delay, err := l.begin(name, remoteAddr(r))
	if err != nil {
		var zero T
		return zero, err
	}
	o := neutral
	defer func() { done(o) }() // also when check panics
	if delay > 0 {
		if err := l.cfg.sleep(r.Context(), delay); err != nil {
			var zero T
			return zero, registry.Wrap(registry.KindUnavailable, err, "the request was cancelled")
		}
	}
	v, err := check()
	switch {
	case err == nil:
		o = success
	case registry.IsKind(err, registry.KindUnauthorized), errors.Is(err, registry.ErrWrongOTP):
		o = failure
	}
	return v, err
}
