package cache

import (
	"context"

	"github.com/couchnpm/couchnpm/registry"
)

// Store is the caching decorator of one packument database. It implements
// registry.PackumentStore and the mirror's store (replication.PackumentStore):
// reads come from memory when they safely can, writes go to CouchDB and drop
// the entry at once (read-your-writes on this instance), and tarballs stream
// from CouchDB untouched (the embedded Backend).
type Store struct {
	Backend
	c  *Cache
	db *database
}

// GetPackument returns the document: from memory while the database's
// changes feed is live, after a revision check (HEAD) while it is not, from
// CouchDB (once for concurrent callers) when unknown or changed. The caller
// gets its own copy, free to change.
func (s *Store) GetPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return s.get(ctx, name, false, (*registry.Packument).Clone)
}

// GetPackumentForWrite is GetPackument for a read that precedes a write: it
// always checks the revision, since its writer sends it back to CouchDB.
func (s *Store) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return s.get(ctx, name, true, (*registry.Packument).Clone)
}

// PeekPackument is GetPackument without the copy: the caller gets the
// cached document itself and must not change it (the tarball route's
// access check reads it on every download).
func (s *Store) PeekPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return s.get(ctx, name, false, func(p *registry.Packument) *registry.Packument { return p })
}

func (s *Store) get(ctx context.Context, name string, forWrite bool, out func(*registry.Packument) *registry.Packument) (*registry.Packument, error) {
	c, db := s.c, s.db
	c.mu.Lock()
	e := db.entries[name]
	if e != nil {
		now := c.now()
		// A read that precedes a write always checks the revision.
		if live := c.liveGenLocked(db, now); live != 0 && e.gen == live && !forWrite {
			c.lru.MoveToFront(e.elem)
			c.mu.Unlock()
			c.hits.Add(1)
			return e.result(out)
		}
		gen := c.connectedGenLocked(db)
		c.mu.Unlock()
		// The feed is down, silent, or newer than the entry: ask CouchDB
		// for the revision only.
		rev, err := s.Backend.PackumentRev(ctx, name)
		if err != nil && !registry.IsKind(err, registry.KindNotFound) {
			return nil, err // CouchDB unreachable: as without a cache
		}
		if rev == e.rev {
			c.mu.Lock()
			if e.elem != nil {
				c.lru.MoveToFront(e.elem)
				if gen != 0 && gen == db.gen && e.gen != gen {
					// Checked after this feed opened: it keeps the entry
					// current from now on.
					e.gen = gen
				}
			}
			c.mu.Unlock()
			c.revalidations.Add(1)
			return e.result(out)
		}
		c.mu.Lock()
		if db.entries[name] == e {
			c.removeLocked(e)
			c.invalidations.Add(1)
		}
		c.mu.Unlock()
	} else {
		c.mu.Unlock()
	}
	return s.load(ctx, name, out)
}

// load reads the document from CouchDB, once for all concurrent callers,
// and keeps it unless a change to it arrived meanwhile.
func (s *Store) load(ctx context.Context, name string, out func(*registry.Packument) *registry.Packument) (*registry.Packument, error) {
	c, db := s.c, s.db
	c.mu.Lock()
	if f := db.flights[name]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "read package %s: the request was cancelled", name)
		}
		if f.err != nil {
			return nil, f.err
		}
		return out(f.p), nil
	}
	f := &flight{done: make(chan struct{})}
	db.flights[name] = f
	gen := c.connectedGenLocked(db)
	c.mu.Unlock()
	c.misses.Add(1)

	// The first caller's cancellation must not fail the others.
	p, err := s.Backend.GetPackument(context.WithoutCancel(ctx), name)
	f.p, f.err = p, err
	c.mu.Lock()
	delete(db.flights, name)
	if !f.dirty && (err == nil || registry.IsKind(err, registry.KindNotFound)) {
		e := &entry{db: db, id: name, gen: gen}
		if err == nil {
			e.p, e.rev = p, p.Rev
		}
		e.size = approxSize(name, p)
		if e.size <= c.cfg.MaxBytes {
			if old := db.entries[name]; old != nil {
				c.removeLocked(old)
			}
			e.elem = c.lru.PushFront(e)
			db.entries[name] = e
			c.bytes += e.size
			c.count++
			c.evictLocked()
		}
	}
	c.mu.Unlock()
	close(f.done)
	if err != nil {
		return nil, err
	}
	return out(p), nil
}

func (e *entry) result(out func(*registry.Packument) *registry.Packument) (*registry.Packument, error) {
	if e.p == nil {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	return out(e.p), nil
}

// PutPackument writes through and drops the entry.
func (s *Store) PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error) {
	w, err := s.Backend.PutPackument(ctx, p)
	s.Invalidate(p.ID)
	return w, err
}

// DeletePackument deletes through and drops the entry.
func (s *Store) DeletePackument(ctx context.Context, name, rev string) error {
	err := s.Backend.DeletePackument(ctx, name, rev)
	s.Invalidate(name)
	return err
}

// Invalidate drops the entry of document id.
func (s *Store) Invalidate(id string) {
	s.c.mu.Lock()
	s.c.invalidateLocked(s.db, id)
	s.c.mu.Unlock()
}

// approxSize estimates the memory a cached document takes.
func approxSize(name string, p *registry.Packument) int64 {
	n := int64(256 + len(name))
	if p == nil {
		return n
	}
	n += int64(len(p.Rev) + len(p.Name) + len(p.Unpublished))
	for k, v := range p.Versions {
		n += int64(len(k)+len(v)) + 48
	}
	for k, v := range p.Fields {
		n += int64(len(k)+len(v)) + 48
	}
	for k, v := range p.Time {
		n += int64(len(k)+len(v)) + 48
	}
	for k, v := range p.DistTags {
		n += int64(len(k)+len(v)) + 48
	}
	for k := range p.Users {
		n += int64(len(k)) + 24
	}
	for k, a := range p.Attachments {
		n += int64(len(k)+len(a.Digest)+len(a.ContentType)+len(a.Data)) + 64
	}
	for _, m := range p.Maintainers {
		n += int64(len(m.Name)+len(m.Email)) + 32
	}
	return n
}
