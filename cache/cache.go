// Package cache is couchnpm's packument fast path: an in-memory cache of
// packument documents and of their rendered bodies (full, write and
// abbreviated, each with its gzip form), keyed by (database, id, _rev),
// bounded in bytes with least-recently-used eviction.
//
// It is a decorator: Store wraps a CouchDB packument database and is handed
// to registry.Service (and to the mirror) in place of the database, so every
// rule of the read path (private before mirror, tombstones, restricted
// packages, _rev only for writers) still runs on every request; only the
// CouchDB round trip and the decoding are saved. The handlers ask Body for
// the rendered bytes of the revision they were given, so a warm hit is
// rendered and compressed once per revision (single-flight), not once per
// request.
//
// Invalidation follows each database's continuous _changes feed (since=now,
// heartbeat). An entry is served without asking CouchDB only while the feed
// it was validated under is connected and has shown life (a heartbeat or a
// change) within the staleness bound; otherwise each read checks the
// document's revision with a HEAD request and reloads it when it changed.
// Several instances stay correct: each follows the feeds itself, and a write
// made through an instance invalidates its own entry at once.
package cache

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// Backend is one CouchDB database of packuments, as the cache needs it
// (couch.Packuments implements it).
type Backend interface {
	registry.PackumentStore
	DeletePackument(ctx context.Context, name, rev string) error
	// PackumentRev returns the current revision (HEAD); KindNotFound when
	// the document is absent or deleted.
	PackumentRev(ctx context.Context, name string) (string, error)
	// FollowChanges follows the database's changes from now: on("") when
	// open and at each heartbeat, on(id) for each change; returns when ctx
	// ends (nil) or the feed breaks.
	FollowChanges(ctx context.Context, heartbeat time.Duration, on func(id string)) error
}

// Config sizes the cache.
type Config struct {
	// MaxBytes bounds the documents and bodies kept (approximate bytes).
	MaxBytes int64
	// Heartbeat is the changes feed's heartbeat interval (default 1s).
	Heartbeat time.Duration
	// Bound is the staleness bound: an entry is served from memory only
	// while its database's feed showed life within Bound (default 3s,
	// at least twice Heartbeat).
	Bound time.Duration
	// GzipMin is the smallest body kept gzipped too (default 1024).
	GzipMin int
	Log     zerolog.Logger
}

// Stats are the cache's counters (for metrics).
type Stats struct {
	Hits          int64 // served from memory, no CouchDB call
	Revalidations int64 // served after a revision check (HEAD) matched
	Misses        int64 // loaded from CouchDB
	Invalidations int64 // entries dropped by a change or a local write
	Evictions     int64 // entries dropped to stay within MaxBytes
	BodyHits      int64 // rendered bodies served from memory
	BodyRenders   int64 // bodies rendered (once per revision and kind)
	Bytes         int64 // bytes held now
	Entries       int64 // entries held now
	FeedsUp       int64 // databases whose changes feed is live now
	FeedsTotal    int64
}

// Cache is the packument cache shared by the stores of several databases.
type Cache struct {
	cfg Config
	now func() time.Time

	mu    sync.Mutex
	dbs   []*database
	lru   list.List // of *entry, most recent at the front
	bytes int64
	count int64

	hits, revalidations, misses, invalidations, evictions, bodyHits, bodyRenders atomic.Int64
}

type database struct {
	name    string
	backend Backend
	entries map[string]*entry
	flights map[string]*flight
	// gen counts feed connections; an entry is trusted only under the
	// generation it was validated in (changes between two connections are
	// not seen: since=now).
	gen          uint64
	connected    bool // the feed of gen is open
	lastActivity time.Time
}

type entry struct {
	db   *database
	id   string
	rev  string              // "" for a document known to be absent
	p    *registry.Packument // read-only; nil when absent
	gen  uint64              // feed generation it was validated under; 0: none
	size int64
	elem *list.Element
	// bodies by kind ("full", "write", "corgi")
	bodies map[string]*body
}

type body struct {
	done      chan struct{}
	raw, gz   []byte
	err       error
	accounted bool
}

type flight struct {
	done  chan struct{}
	dirty bool // a change arrived while loading: do not keep the result
	p     *registry.Packument
	err   error
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Bound <= 0 {
		cfg.Bound = 3 * cfg.Heartbeat
	}
	if cfg.Bound < 2*cfg.Heartbeat {
		cfg.Bound = 2 * cfg.Heartbeat
	}
	if cfg.GzipMin <= 0 {
		cfg.GzipMin = 1024
	}
	return &Cache{cfg: cfg, now: time.Now}
}

// Bound is the staleness bound in force.
func (c *Cache) Bound() time.Duration { return c.cfg.Bound }

// Store returns the caching decorator of one database; name identifies the
// database in the cache's keys (its CouchDB name).
func (c *Cache) Store(name string, b Backend) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, db := range c.dbs {
		if db.name == name {
			return &Store{Backend: b, c: c, db: db}
		}
	}
	db := &database{name: name, backend: b, entries: map[string]*entry{}, flights: map[string]*flight{}, gen: 1}
	c.dbs = append(c.dbs, db)
	return &Store{Backend: b, c: c, db: db}
}

// Run follows the changes feed of every database until ctx ends,
// reconnecting with backoff when a feed breaks.
func (c *Cache) Run(ctx context.Context) {
	c.mu.Lock()
	dbs := append([]*database(nil), c.dbs...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.follow(ctx, db)
		}()
	}
	wg.Wait()
}

func (c *Cache) follow(ctx context.Context, db *database) {
	log := c.cfg.Log.With().Str("component", "cache").Str("db", db.name).Logger()
	backoff := retry.Backoff{First: 200 * time.Millisecond, Max: 10 * time.Second}
	for ctx.Err() == nil {
		c.mu.Lock()
		db.gen++
		gen := db.gen
		db.connected = false
		c.mu.Unlock()
		started := c.now()
		err := db.backend.FollowChanges(ctx, c.cfg.Heartbeat, func(id string) { c.feedEvent(db, gen, id) })
		c.mu.Lock()
		db.connected = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if c.now().Sub(started) > 30*time.Second {
			backoff.Reset() // the feed had been fine for a while
		}
		delay := backoff.Next()
		ev := log.Warn()
		if err == nil {
			ev = log.Info()
		}
		ev.Str("error", errString(err)).Dur("retry_in", delay).Msg("changes feed lost; revision checks until it is back")
		if retry.Wait(ctx, delay) != nil {
			return
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "feed ended"
	}
	return err.Error()
}

// feedEvent records life on the feed of generation gen and, for a change,
// drops the document's entry.
func (c *Cache) feedEvent(db *database, gen uint64, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if db.gen != gen {
		return
	}
	db.connected = true
	db.lastActivity = c.now()
	if id != "" {
		c.invalidateLocked(db, id)
	}
}

func (c *Cache) invalidateLocked(db *database, id string) {
	if f := db.flights[id]; f != nil {
		f.dirty = true
	}
	if e := db.entries[id]; e != nil {
		c.removeLocked(e)
		c.invalidations.Add(1)
	}
}

func (c *Cache) removeLocked(e *entry) {
	if e.elem == nil {
		return
	}
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(e.db.entries, e.id)
	c.bytes -= e.size
	c.count--
}

// liveGenLocked is the feed generation whose changes are being received
// now, 0 when the feed is down or silent for longer than the bound.
func (c *Cache) liveGenLocked(db *database, now time.Time) uint64 {
	if db.connected && now.Sub(db.lastActivity) <= c.cfg.Bound {
		return db.gen
	}
	return 0
}

// connectedGenLocked is the generation of the open feed (0 when none):
// a revision read after it opened is kept current by it.
func (c *Cache) connectedGenLocked(db *database) uint64 {
	if db.connected {
		return db.gen
	}
	return 0
}

func (c *Cache) evictLocked() {
	for c.bytes > c.cfg.MaxBytes {
		back := c.lru.Back()
		if back == nil {
			return
		}
		c.removeLocked(back.Value.(*entry))
		c.evictions.Add(1)
	}
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	now := c.now()
	st := Stats{Bytes: c.bytes, Entries: c.count, FeedsTotal: int64(len(c.dbs))}
	for _, db := range c.dbs {
		if c.liveGenLocked(db, now) != 0 {
			st.FeedsUp++
		}
	}
	c.mu.Unlock()
	st.Hits = c.hits.Load()
	st.Revalidations = c.revalidations.Load()
	st.Misses = c.misses.Load()
	st.Invalidations = c.invalidations.Load()
	st.Evictions = c.evictions.Load()
	st.BodyHits = c.bodyHits.Load()
	st.BodyRenders = c.bodyRenders.Load()
	return st
}

// Body returns the rendered body of kind for packument p and its gzip form
// (nil when the body is too small to be worth compressing, or not cached).
// When p's revision is cached, the body is rendered once per revision and
// kind (callers asking meanwhile wait for that one rendering) and kept;
// otherwise render is simply called.
func (c *Cache) Body(p *registry.Packument, kind string, render func() ([]byte, error)) (raw, gz []byte, err error) {
	if p == nil || p.Rev == "" {
		raw, err = render()
		return raw, nil, err
	}
	c.mu.Lock()
	var e *entry
	for _, db := range c.dbs {
		if cand := db.entries[p.ID]; cand != nil && cand.p != nil && cand.rev == p.Rev {
			e = cand
			break
		}
	}
	if e == nil {
		c.mu.Unlock()
		raw, err = render()
		return raw, nil, err
	}
	b := e.bodies[kind]
	if b != nil {
		c.mu.Unlock()
		<-b.done
		if b.err == nil {
			c.bodyHits.Add(1)
		}
		return b.raw, b.gz, b.err
	}
	b = &body{done: make(chan struct{})}
	if e.bodies == nil {
		e.bodies = map[string]*body{}
	}
	e.bodies[kind] = b
	c.mu.Unlock()

	c.bodyRenders.Add(1)
	b.raw, b.err = render()
	if b.err == nil && len(b.raw) >= c.cfg.GzipMin {
		b.gz = gzipBytes(b.raw)
	}
	c.mu.Lock()
	if b.err != nil {
		if e.bodies[kind] == b {
			delete(e.bodies, kind) // let a later request try again
		}
	} else if e.elem != nil && e.bodies[kind] == b {
		n := int64(len(b.raw) + len(b.gz))
		e.size += n
		c.bytes += n
		b.accounted = true
		c.evictLocked()
	}
	c.mu.Unlock()
	close(b.done)
	return b.raw, b.gz, b.err
}

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

func gzipBytes(raw []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(raw) / 4)
	w := gzipPool.Get().(*gzip.Writer)
	w.Reset(&buf)
	_, _ = w.Write(raw)
	_ = w.Close()
	gzipPool.Put(w)
	return buf.Bytes()
}
