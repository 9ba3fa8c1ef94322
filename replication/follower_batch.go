package replication

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/couchnpm/couchnpm/registry"
)

// BulkStore is the mirror database as the follower uses it: a batch of
// packuments per request.
type BulkStore interface {
	// GetPackuments reads the stored documents among names; absent names
	// are missing from the map.
	GetPackuments(ctx context.Context, names []string) (map[string]*registry.Packument, error)
	// PutPackuments writes encoded documents in one request, with one
	// result per document; err is a failure of the whole request.
	PutPackuments(ctx context.Context, docs []json.RawMessage) ([]registry.BulkResult, error)
}

// NameIndex tells which names have a document in a database.
type NameIndex interface {
	Existing(ctx context.Context, names []string) (map[string]bool, error)
}

// lookupBatch is how many names one lookup request reads; lookupWorkers how
// many lookups run at once.
const (
	lookupBatch   = 100
	lookupWorkers = 3
	batchWriters  = 3 // _bulk_docs requests at once
)

// A page of changes flows through three stages that run at once: the
// planner looks the names up a batch at a time (the private database's
// index, the stored copies) and drops what needs no work; fetchers read
// the remaining packuments from upstream, several at once; the writer
// packs them into _bulk_docs batches. apply returns once every change of
// the page is written, skipped as unchanged, or recorded as a failure; an
// error means CouchDB could not be read or written and the page must be
// read again.

// followJob is a package to fetch: old is its stored copy (nil: none).
type followJob struct {
	name string
	old  *registry.Packument
}

// followWrite is a document for the writer: a packument to store, or the
// deletion of revision del.
type followWrite struct {
	name string
	p    *registry.Packument
	del  string
}

func (f *Follower) apply(ctx context.Context, changes []Change) error {
	// The last change of a name in the page is the one that counts.
	last := map[string]Change{}
	var order []string
	for _, c := range changes {
		name := c.ID
		if strings.HasPrefix(name, "_design/") || !f.mirror.filter.Allowed(name) || registry.ValidateName(name) != nil {
			continue
		}
		if _, seen := last[name]; !seen {
			order = append(order, name)
		}
		last[name] = c
	}
	if len(order) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	abort := func(err error) { cancel(err) }

	jobs := make(chan followJob, f.cfg.Workers)
	writes := make(chan followWrite, f.cfg.Workers)
	var direct []followWrite // deletions found by the planner
	var directMu sync.Mutex

	// A few lookups at once: each is a CouchDB round trip.
	chunks := make(chan []string)
	go func() {
		defer close(chunks)
		for i := 0; i < len(order); i += lookupBatch {
			select {
			case chunks <- order[i:min(i+lookupBatch, len(order))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var planners sync.WaitGroup
	for range lookupWorkers {
		planners.Add(1)
		go func() {
			defer planners.Done()
			for chunk := range chunks {
				dels, err := f.plan(ctx, chunk, last, jobs)
				if err != nil {
					abort(err)
					continue
				}
				directMu.Lock()
				direct = append(direct, dels...)
				directMu.Unlock()
			}
		}()
	}
	go func() {
		planners.Wait()
		close(jobs)
	}()
	var fetchers sync.WaitGroup
	for range f.cfg.Workers {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			for j := range jobs {
				if w, ok := f.fetchJob(ctx, j); ok {
					select {
					case writes <- w:
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	go func() {
		fetchers.Wait()
		directMu.Lock()
		dels := direct
		directMu.Unlock()
		for _, d := range dels {
			select {
			case writes <- d:
			case <-ctx.Done():
			}
		}
		close(writes)
	}()
	if err := f.writeAll(ctx, writes); err != nil {
		abort(err)
	}
	for range writes { // the writer stopped early: let the stages end
	}
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// plan looks up a batch of names and queues those that need a fetch; it
// returns the deletions to write.
func (f *Follower) plan(ctx context.Context, names []string, last map[string]Change, jobs chan<- followJob) ([]followWrite, error) {
	shadowed, err := f.shadowed(ctx, names)
	if err != nil {
		return nil, err
	}
	stored, err := f.bulk.GetPackuments(ctx, names)
	if err != nil {
		return nil, err
	}
	var dels []followWrite
	for _, name := range names {
		if shadowed[name] {
			continue
		}
		c, old := last[name], stored[name]
		switch {
		case c.Deleted:
			if old != nil {
				dels = append(dels, followWrite{name: name, del: old.Rev})
			}
			continue
		case old != nil && c.Rev() != "" && !newerRev(c.Rev(), upstreamRevOf(old)):
			f.set(func(cp *checkpoint) { cp.Unchanged++ })
			continue
		}
		select {
		case jobs <- followJob{name: name, old: old}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return dels, nil
}

// shadowed reports which names are published here (dependency-confusion
// guard): never mirrored, unless an unpublished fork whose name resolves
// upstream again. The private database's index is asked for the whole
// batch; only the names it has are looked at closer.
func (f *Follower) shadowed(ctx context.Context, names []string) (map[string]bool, error) {
	candidates := names
	if f.names != nil {
		have, err := f.names.Existing(ctx, names)
		if err != nil {
			return nil, err
		}
		candidates = candidates[:0:0]
		for _, n := range names {
			if have[n] {
				candidates = append(candidates, n)
			}
		}
	}
	out := map[string]bool{}
	for _, n := range candidates {
		s, err := f.private.Shadows(ctx, n)
		if err != nil {
			return nil, err
		}
		if s {
			out[n] = true
		}
	}
	return out, nil
}

// newerRev reports whether the upstream revision rev is newer than stored:
// a higher generation, or the same one with another hash (the upstream
// resolved a conflict). A change older than the stored copy (the feed read
// again from an older checkpoint) needs no fetch.
func newerRev(rev, stored string) bool {
	if rev == stored {
		return false
	}
	g1, ok1 := revGeneration(rev)
	g2, ok2 := revGeneration(stored)
	if !ok1 || !ok2 {
		return true
	}
	return g1 >= g2
}

func revGeneration(rev string) (int64, bool) {
	head, _, ok := strings.Cut(rev, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(head, 10, 64)
	return n, err == nil
}

func upstreamRevOf(p *registry.Packument) string {
	var rev string
	_ = json.Unmarshal(p.Fields[fieldUpstreamRev], &rev)
	return rev
}

// fetchJob reads one packument from upstream and prepares its document. A
// package the upstream no longer has is deleted here too; one it cannot
// serve is recorded as a failure and skipped.
func (f *Follower) fetchJob(ctx context.Context, j followJob) (followWrite, bool) {
	p, err := f.fetch(ctx, j.name)
	switch {
	case registry.IsKind(err, registry.KindNotFound):
		if j.old != nil {
			return followWrite{name: j.name, del: j.old.Rev}, true
		}
		return followWrite{}, false
	case err != nil:
		if ctx.Err() == nil {
			f.fail(j.name, err)
		}
		return followWrite{}, false
	}
	stripUpstream(p)
	over(p, j.old)
	return followWrite{name: j.name, p: p}, true
}

// writeAll packs documents into batches bounded in count and bytes and
// writes them with _bulk_docs, a few batches at once (CouchDB takes
// concurrent batches faster than one after another).
func (f *Follower) writeAll(ctx context.Context, writes <-chan followWrite) error {
	type job struct {
		batch []followWrite
		raws  []json.RawMessage
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for range batchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := f.writeBatch(ctx, j.batch, j.raws); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	var batch []followWrite
	var raws []json.RawMessage
	size := 0
	flush := func() {
		if len(batch) > 0 {
			jobs <- job{batch, raws}
		}
		batch, raws, size = nil, nil, 0
	}
	for w := range writes {
		raw, err := encodeWrite(w)
		if err != nil {
			f.fail(w.name, err)
			continue
		}
		if len(batch) > 0 && (len(batch) >= f.cfg.BatchDocs || size+len(raw) > f.cfg.BatchBytes) {
			flush()
		}
		batch, raws, size = append(batch, w), append(raws, raw), size+len(raw)
	}
	if ctx.Err() == nil {
		flush()
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil // cancelled: apply reports it
	}
	return firstErr
}

func encodeWrite(w followWrite) (json.RawMessage, error) {
	if w.p == nil {
		return json.Marshal(map[string]any{"_id": w.name, "_rev": w.del, "_deleted": true})
	}
	raw, err := json.Marshal(w.p)
	if err != nil {
		return nil, registry.Wrap(registry.KindInternal, err, "encode package %s", w.name)
	}
	return raw, nil
}

// writeBatch writes one batch and settles each document's outcome: a
// conflict or a refusal (another writer got there first; PouchDB Server
// refuses a stale write with 403) is written again alone over the current
// copy; a document over CouchDB's max_document_size is recorded as a
// failure. Nothing is dropped without a record.
func (f *Follower) writeBatch(ctx context.Context, batch []followWrite, raws []json.RawMessage) error {
	results, err := f.bulk.PutPackuments(ctx, raws)
	if registry.IsKind(err, registry.KindTooLarge) && len(batch) > 1 {
		// CouchDB 3 refuses the whole batch (413) when one document is
		// over max_document_size: halve it until that one is alone.
		mid := len(batch) / 2
		if err := f.writeBatch(ctx, batch[:mid], raws[:mid]); err != nil {
			return err
		}
		return f.writeBatch(ctx, batch[mid:], raws[mid:])
	}
	if err != nil {
		if registry.IsKind(err, registry.KindTooLarge) {
			f.fail(batch[0].name, err)
			return nil
		}
		return err
	}
	for i, r := range results {
		w := batch[i]
		switch {
		case r.Err == nil:
			f.written(w)
		case registry.IsKind(r.Err, registry.KindTooLarge):
			f.fail(w.name, r.Err)
		case registry.IsKind(r.Err, registry.KindConflict), registry.IsKind(r.Err, registry.KindForbidden):
			if err := f.writeAlone(ctx, w); err != nil {
				if registry.IsKind(err, registry.KindUnavailable) && ctx.Err() == nil {
					return err
				}
				f.fail(w.name, err)
				continue
			}
			f.written(w)
		default:
			f.fail(w.name, r.Err)
		}
	}
	return nil
}

// writeAlone writes a document that lost a race in its batch over the
// copy stored now.
func (f *Follower) writeAlone(ctx context.Context, w followWrite) error {
	if w.p == nil {
		old, err := f.mirror.store.GetPackumentForWrite(ctx, w.name)
		if registry.IsKind(err, registry.KindNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return f.mirror.store.DeletePackument(ctx, w.name, old.Rev)
	}
	_, err := f.mirror.storeOver(ctx, w.p)
	return err
}

func (f *Follower) written(w followWrite) {
	if w.p == nil {
		f.set(func(cp *checkpoint) { cp.Deleted++ })
		return
	}
	f.set(func(cp *checkpoint) { cp.Written++; cp.WrittenSinceStart++ })
}
