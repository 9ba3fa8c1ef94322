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
// of distinct keys costs readings, never memory).
type ttlMap[V any] struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	at time.Time
	v  V
}

func (t *ttlMap[V]) get(key string) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok || time.Since(e.at) >= t.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t *ttlMap[V]) put(key string, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= t.max {
		t.m = make(map[string]ttlEntry[V])
	}
	t.m[key] = ttlEntry[V]{at: time.Now(), v: v}
}

// dependentsOf lists name's dependents user may see: public ones to
// everyone, a restricted one only when user can read it (the registry's
// own read, so grants and teams count).
func (s *Site) dependentsOf(ctx context.Context, user registry.Identity, name string) (shown []Dep, more bool) {
	if s.cfg.Dependents == nil {
		return nil, false
	}
	all, ok := s.dependents.get(name)
	if !ok {
		var err error
		if all, err = s.cfg.Dependents.Dependents(ctx, name, maxDependents+1); err != nil {
			zerolog.Ctx(ctx).Warn().Str("error", err.Error()).Msg("package page: dependents unavailable")
			return nil, false
		}
		s.dependents.put(name, all)
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
			if _, err := s.reg.Packument(ctx, user, d.Name); err != nil {
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
	key := p.Name + "@" + p.Rev
	have, ok := s.cachedState.get(key)
	if !ok {
		ids := make([]string, len(vs))
		for i, v := range vs {
			ids[i] = p.Name + "@" + v
		}
		var err error
		if have, err = s.cfg.Tarballs.Existing(ctx, ids); err != nil {
			zerolog.Ctx(ctx).Warn().Str("error", err.Error()).Msg("package page: tarball cache state unavailable")
			return nil
		}
		s.cachedState.put(key, have)
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
