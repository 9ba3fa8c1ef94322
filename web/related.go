package web

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// Dependents lists the private packages whose latest version depends on a
// package (couch.Packuments implements it on the dependents view).
type Dependents interface {
	Dependents(ctx context.Context, name string, limit int) ([]registry.Dependent, error)
}

// TarballCache tells which mirrored tarballs are kept in CouchDB: ids are
// "name@version" (couch.Docs implements it on the tarball cache).
type TarballCache interface {
	Existing(ctx context.Context, ids []string) (map[string]bool, error)
}

// Bounds of the package page's related lists, and how long a reading is
// reused: both change when other packages publish or a tarball is
// fetched, not with the package's revision, so they are not in the
// per-revision fragments; a short reuse keeps a warm page free of CouchDB
// requests.
const (
	maxDependents       = 100
	maxRestrictedChecks = 20
	maxCachedVersions   = 30
	relatedTTL          = 30 * time.Second
	relatedEntries      = 1024
)

// ttlMap keeps values by key for ttl; when full it starts over (a burst
// of distinct keys costs readings, never memory). A busy key (asked for
// again within ttl) is still served stale, for at most another ttl, while
// one background reading refreshes it, so a busy page never waits for
// CouchDB; a key asked for now and then is read afresh when stale. The
// requests that find no value meanwhile share one reading (a cold page's
// first burst of visitors costs one reading, not one each).
type ttlMap[V any] struct {
	ttl   time.Duration
	max   int
	clock func() time.Time // nil: time.Now

	mu      sync.Mutex
	m       map[string]*ttlEntry[V]
	loading map[string]*ttlFlight[V]
}

// ttlFlight is a reading that requests without a value wait for.
type ttlFlight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

type ttlEntry[V any] struct {
	at, used   time.Time
	v          V
	refreshing bool
}

// refreshTimeout bounds a background refresh.
const refreshTimeout = 10 * time.Second

// load returns key's value: fresh, or stale while a refresh runs, or read
// now by fn when there is none.
func (t *ttlMap[V]) load(ctx context.Context, key string, fn func(ctx context.Context) (V, error)) (V, error) {
	t.mu.Lock()
	e, ok := t.m[key]
	now := t.now()
	var busy bool
	if ok {
		busy = now.Sub(e.used) < t.ttl && now.Sub(e.at) < 2*t.ttl
		e.used = now
	}
	switch {
	case ok && now.Sub(e.at) < t.ttl:
		v := e.v
		t.mu.Unlock()
		return v, nil
	case busy:
		if !e.refreshing {
			e.refreshing = true
			// Detached: the reading outlives the request that noticed.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
			go func() {
				defer cancel()
				v, err := fn(rctx)
				t.mu.Lock()
				defer t.mu.Unlock()
				e.refreshing = false
				if err == nil {
					e.v, e.at = v, t.now()
				}
			}()
		}
		v := e.v
		t.mu.Unlock()
		return v, nil
	}
	if f, ok := t.loading[key]; ok {
		t.mu.Unlock()
		select {
		case <-f.done:
			return f.v, f.err
		case <-ctx.Done():
			var zero V
			return zero, registry.Wrap(registry.KindUnavailable, ctx.Err(), "waiting for a reading")
		}
	}
	f := &ttlFlight[V]{done: make(chan struct{})}
	if t.loading == nil {
		t.loading = map[string]*ttlFlight[V]{}
	}
	t.loading[key] = f
	t.mu.Unlock()
	// Others wait for this reading: it must not end with this request.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	v, err := fn(rctx)
	cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	f.v, f.err = v, err
	delete(t.loading, key)
	close(f.done)
	if err != nil {
		return v, err
	}
	if t.m == nil || len(t.m) >= t.max {
		t.m = make(map[string]*ttlEntry[V])
	}
	if e, ok := t.m[key]; ok && e.refreshing {
		return v, nil // a background refresh owns the entry
	}
	t.m[key] = &ttlEntry[V]{at: t.now(), used: t.now(), v: v}
	return v, nil
}

func (t *ttlMap[V]) now() time.Time {
	if t.clock != nil {
		return t.clock()
	}
	return time.Now()
}

// dependentsOf lists name's dependents user may see: public ones to
// everyone, a restricted one only when user can read it (the registry's
// own read, so grants and teams count).
func (s *Site) dependentsOf(ctx context.Context, user registry.Identity, name string) (shown []Dep, more bool) {
	if s.cfg.Dependents == nil {
		return nil, false
	}
	all, err := s.dependents.load(ctx, name, func(ctx context.Context) ([]registry.Dependent, error) {
		return s.cfg.Dependents.Dependents(ctx, name, maxDependents+1)
	})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("package page: dependents unavailable")
		return nil, false
	}
	checks := 0
	for _, d := range all {
		if len(shown) == maxDependents {
			return shown, true
		}
		if d.Restricted {
			if user.Anonymous() || checks == maxRestrictedChecks {
				continue
			}
			checks++
			if _, err := s.reg.SharedPackument(ctx, user, d.Name); err != nil {
				continue
			}
		}
		shown = append(shown, Dep{Name: d.Name, Href: packagePath(d.Name)})
	}
	return shown, false
}

// tarballCacheView tells which of a mirrored package's newest versions
// have their tarball in CouchDB.
type tarballCacheView struct {
	Cached, Shown, Total int
	Versions             []cachedVersion
}

type cachedVersion struct {
	Version, Href string
	Cached        bool
}

// cachedTarballs reads the cache state of p's newest versions (one
// _all_docs lookup, reused for relatedTTL); nil for a private package.
func (s *Site) cachedTarballs(ctx context.Context, p *registry.Packument) *tarballCacheView {
	if s.cfg.Tarballs == nil || p.Fields[mirroredField] == nil {
		return nil
	}
	vs := p.SortedVersions()
	if len(vs) > maxCachedVersions {
		vs = vs[len(vs)-maxCachedVersions:]
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = p.Name + "@" + v
	}
	have, err := s.cachedState.load(ctx, p.Name+"@"+p.Rev, func(ctx context.Context) (map[string]bool, error) {
		return s.cfg.Tarballs.Existing(ctx, ids)
	})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("package page: tarball cache state unavailable")
		return nil
	}
	tv := &tarballCacheView{Shown: len(vs), Total: len(p.Versions)}
	for i := len(vs) - 1; i >= 0; i-- {
		c := have[p.Name+"@"+vs[i]]
		if c {
			tv.Cached++
		}
		tv.Versions = append(tv.Versions, cachedVersion{Version: vs[i], Href: versionPath(p.Name, vs[i]), Cached: c})
	}
	return tv
}

// anonPageTTL is how long an anonymous package page is sent from memory:
// short, as the page shows download counts; the packument read before it
// still runs on every request, so a new revision or a package that became
// restricted is never served from here.
const anonPageTTL = time.Second

// shortCache keeps rendered pages for ttl; when full it starts over. Once
// a page is older than ttl, one request renders it anew while the others
// are still sent the old copy (at most staleFor old): a busy page is not
// rendered by every request that finds it expired at once.
type shortCache struct {
	ttl   time.Duration
	max   int
	clock func() time.Time // nil: time.Now

	mu sync.RWMutex
	m  map[string]*shortEntry
}

type shortEntry struct {
	at        time.Time
	body      []byte
	rendering time.Time // when a request took the re-rendering on; zero: none
}

// staleFor bounds how old a copy is still sent while another request
// renders the page, in ttls; a re-rendering that has not ended within a
// ttl (a failed render) is handed to the next request.
const staleFor = 3

// fresh returns key's page to send; false: the caller renders it (and
// calls set).
func (c *shortCache) fresh(key string) ([]byte, bool) {
	now := c.now()
	c.mu.RLock() // the common case: a fresh copy, read by many at once
	if e, ok := c.m[key]; ok {
		if age := now.Sub(e.at); age < c.ttl && age >= 0 {
			c.mu.RUnlock()
			return e.body, true
		}
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	age := now.Sub(e.at)
	switch {
	case age < c.ttl && age >= 0:
		return e.body, true
	case age >= staleFor*c.ttl || age < 0:
		return nil, false
	case e.rendering.IsZero() || now.Sub(e.rendering) >= c.ttl:
		e.rendering = now // this request renders; the others get the copy
		return nil, false
	default:
		return e.body, true
	}
}

func (c *shortCache) set(key string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]*shortEntry)
	}
	c.m[key] = &shortEntry{at: c.now(), body: body}
}

func (c *shortCache) now() time.Time {
	if c.clock != nil {
		return c.clock()
	}
	return time.Now()
}
