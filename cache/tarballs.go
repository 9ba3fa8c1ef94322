package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// Tarballs keeps the bytes of hot tarballs in memory, keyed by their
// digest (CouchDB's md5 of the attachment), bounded in bytes with
// least-recently-used eviction. Tarball bytes never change under a digest,
// so an entry is never stale: what decides whether a request may have them
// is the packument it is checked against (registry.Service.Tarball), which
// is read on every request. CouchDB stays the store of record; a cold
// instance reads the same bytes from it.
type Tarballs struct {
	maxBytes, maxItem int64

	mu    sync.Mutex
	lru   list.List // of *tarballEntry, most recent at the front
	items map[string]*list.Element
	bytes int64

	hits, misses, fills, evictions atomic.Int64
}

type tarballEntry struct {
	digest string
	data   []byte
}

// TarballStats are the tarball cache's counters (for metrics).
type TarballStats struct {
	Hits, Misses, Fills, Evictions int64
	Bytes, Entries                 int64
}

// NewTarballs returns an empty cache holding at most maxBytes of tarballs,
// none larger than maxItem (larger ones always stream from CouchDB).
func NewTarballs(maxBytes, maxItem int64) *Tarballs {
	return &Tarballs{maxBytes: maxBytes, maxItem: min(maxItem, maxBytes), items: map[string]*list.Element{}}
}

// Fits reports whether a tarball of size bytes is worth keeping.
func (t *Tarballs) Fits(size int64) bool { return size > 0 && size <= t.maxItem }

// Get returns the bytes kept under digest; the caller must not change them.
func (t *Tarballs) Get(digest string) ([]byte, bool) {
	t.mu.Lock()
	el := t.items[digest]
	if el == nil {
		t.mu.Unlock()
		t.misses.Add(1)
		return nil, false
	}
	t.lru.MoveToFront(el)
	data := el.Value.(*tarballEntry).data
	t.mu.Unlock()
	t.hits.Add(1)
	return data, true
}

// Put keeps data under digest (the caller checked that they match and no
// longer changes data).
func (t *Tarballs) Put(digest string, data []byte) {
	n := int64(len(data))
	if digest == "" || !t.Fits(n) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if el := t.items[digest]; el != nil {
		t.lru.MoveToFront(el)
		return
	}
	t.items[digest] = t.lru.PushFront(&tarballEntry{digest: digest, data: data})
	t.bytes += n
	t.fills.Add(1)
	for t.bytes > t.maxBytes {
		back := t.lru.Back()
		e := back.Value.(*tarballEntry)
		t.lru.Remove(back)
		delete(t.items, e.digest)
		t.bytes -= int64(len(e.data))
		t.evictions.Add(1)
	}
}

// Stats returns the counters.
func (t *Tarballs) Stats() TarballStats {
	t.mu.Lock()
	st := TarballStats{Bytes: t.bytes, Entries: int64(len(t.items))}
	t.mu.Unlock()
	st.Hits, st.Misses, st.Fills, st.Evictions = t.hits.Load(), t.misses.Load(), t.fills.Load(), t.evictions.Load()
	return st
}
