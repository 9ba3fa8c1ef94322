// Package downloads counts the tarballs the registry serves, per package,
// version and day. Counts are aggregated in memory and flushed to CouchDB
// periodically into one document per instance and day
// ("downloads:<day>:<instance>"), so instances never write the same
// document and a download costs no CouchDB write. A crash loses at most
// the counts of one flush interval (plus a failed flush's, which are kept
// in memory and retried until the process ends).
package downloads

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// Store is where the counts live: the system database
// (couch.Docs implements it).
type Store interface {
	Get(ctx context.Context, id string, v any) (string, error)
	Put(ctx context.Context, id, rev string, v any) (string, error)
	ListPrefix(ctx context.Context, prefix string, limit int) ([]registry.StateDoc, error)
}

// idPrefix starts every count document's id.
const idPrefix = "downloads:"

// maxInstances bounds the documents read for one day.
const maxInstances = 1000

// doc is one instance's counts for one day.
type doc struct {
	Type     string                      `json:"type"`
	Day      string                      `json:"day"`
	Instance string                      `json:"instance"`
	Counts   map[string]map[string]int64 `json:"counts"` // package → version → downloads
}

// counts is day → package → version → downloads.
type counts map[string]map[string]map[string]int64

func (c counts) add(day, name, version string, n int64) {
	pkgs := c[day]
	if pkgs == nil {
		pkgs = map[string]map[string]int64{}
		c[day] = pkgs
	}
	vs := pkgs[name]
	if vs == nil {
		vs = map[string]int64{}
		pkgs[name] = vs
	}
	vs[version] += n
}

// Counter counts downloads and answers the download-count API.
type Counter struct {
	store    Store
	instance string
	log      zerolog.Logger
	now      func() time.Time

	mu      sync.Mutex
	pending counts // not yet in CouchDB

	flushMu sync.Mutex // one flush at a time

	pastMu sync.Mutex
	past   map[string]map[string]map[string]int64 // settled day → package → version → downloads

	// recent keeps the other instances' sums of the days still changing,
	// so that pages and API calls about many packages share one read of a
	// day's documents. A busy day is refreshed in the background (one
	// read at a time) while the kept sums are served: a page never waits
	// for CouchDB once warm. own is this instance's own document of each
	// such day as its last flush wrote it: only this instance writes it,
	// so it is exact, and a flush never makes the kept sums wrong.
	recentMu sync.Mutex
	recent   map[string]*recentDay
	own      map[string]map[string]map[string]int64 // day → package → version → downloads
	flights  map[string]*flight                     // reads of a day in progress
	failed   map[string]time.Time                   // day → when its last background read failed
}

// recentDay is a day's sums as read at a moment: the other instances'
// documents summed, and this instance's document as read (used until this
// process flushes the day).
type recentDay struct {
	at     time.Time
	others map[string]map[string]int64
	own    map[string]map[string]int64
}

// flight is one read of a day's documents; every caller that needs the
// day meanwhile waits for it instead of reading too.
type flight struct {
	done chan struct{}
	day  *recentDay
	all  map[string]map[string]int64 // a settled day's sums
	err  error
}

// recentTTL is how long the sums of a day that still changes are fresh:
// other instances' counts show within it (plus their flush interval) on a
// busy page; this instance's own show at once (pending counts and its
// flushed document are added on top).
const recentTTL = 2 * time.Second

// recentStale bounds how old kept sums may be and still be served while
// a refresh runs; older ones (a page not viewed for a while) are read
// before answering.
const recentStale = time.Minute

// readTimeout bounds one read of a day's documents; it runs detached from
// the request that started it, as other requests may wait for it.
const readTimeout = 10 * time.Second

// maxPastDays bounds the settled days kept in memory (a year and a bit).
const maxPastDays = 400

// settled reports whether day's documents no longer change: every
// instance has flushed it (flushes run every few seconds; two days of
// margin cover a flush retried through an outage of a day).
func (c *Counter) settled(day time.Time) bool {
	return day.Before(c.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2))
}

// NewCounter returns a counter writing this instance's documents to store.
func NewCounter(store Store, instance string, log zerolog.Logger) *Counter {
	return &Counter{store: store, instance: instance, log: log, now: time.Now, pending: counts{},
		past: map[string]map[string]map[string]int64{}, recent: map[string]*recentDay{},
		own: map[string]map[string]map[string]int64{}, flights: map[string]*flight{}, failed: map[string]time.Time{}}
}

// Count records one download of name@version (a map update: no I/O).
func (c *Counter) Count(name, version string) {
	day := c.now().UTC().Format(time.DateOnly)
	c.mu.Lock()
	c.pending.add(day, name, version, 1)
	c.mu.Unlock()
}

// Run flushes every interval until ctx ends, then once more (bounded by
// a timeout of its own) so that a clean shutdown loses nothing.
func (c *Counter) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := c.Flush(fctx); err != nil {
				c.log.Warn().Err(err).Msg("download counts lost at shutdown")
			}
			cancel()
			return
		case <-t.C:
			if err := c.Flush(ctx); err != nil {
				c.log.Warn().Err(err).Msg("download counts not flushed; kept for the next try")
			}
		}
	}
}

// Flush adds the pending counts to this instance's documents. Counts that
// could not be written go back to pending.
func (c *Counter) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	batch := c.pending
	c.pending = counts{}
	c.mu.Unlock()
	var firstErr error
	for day, pkgs := range batch {
		if err := c.flushDay(ctx, day, pkgs); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			c.mu.Lock()
			for name, vs := range pkgs {
				for v, n := range vs {
					c.pending.add(day, name, v, n)
				}
			}
			c.mu.Unlock()
		}
	}
	return firstErr
}

func (c *Counter) flushDay(ctx context.Context, day string, pkgs map[string]map[string]int64) error {
	id := idPrefix + day + ":" + c.instance
	// Only this instance writes id, so a conflict means a stale read (or a
	// second process with the same instance id): read again and retry.
	for attempt := 0; ; attempt++ {
		var d doc
		rev, err := c.store.Get(ctx, id, &d)
		if err != nil && !registry.IsKind(err, registry.KindNotFound) {
			return err
		}
		d.Type, d.Day, d.Instance = "downloads", day, c.instance
		if d.Counts == nil {
			d.Counts = map[string]map[string]int64{}
		}
		for name, vs := range pkgs {
			if d.Counts[name] == nil {
				d.Counts[name] = map[string]int64{}
			}
			for v, n := range vs {
				d.Counts[name][v] += n
			}
		}
		_, err = c.store.Put(ctx, id, rev, &d)
		if err == nil {
			// This instance's document of day is d now: readers add it
			// instead of the one they read (which may predate it). d is
			// never changed again (the next flush decodes its own).
			c.recentMu.Lock()
			c.own[day] = d.Counts
			c.pruneOwn()
			c.recentMu.Unlock()
		}
		if err == nil || !registry.IsKind(err, registry.KindConflict) || attempt == 2 {
			return err
		}
	}
}

// Days returns name's downloads per day from the first to the last day
// (inclusive; every day present, zero when none), counting what is not
// flushed yet too.
func (c *Counter) Days(ctx context.Context, name string, from, to time.Time) ([]DayCount, error) {
	var out []DayCount
	err := c.each(ctx, name, from, to, func(day string, vs map[string]int64) {
		if len(out) == 0 || out[len(out)-1].Day != day {
			out = append(out, DayCount{Day: day})
		}
		for _, n := range vs {
			out[len(out)-1].Downloads += n
		}
	})
	return out, err
}

// Versions returns name's downloads per version over the days.
func (c *Counter) Versions(ctx context.Context, name string, from, to time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	err := c.each(ctx, name, from, to, func(_ string, vs map[string]int64) {
		for v, n := range vs {
			out[v] += n
		}
	})
	return out, err
}

// DayCount is one day's downloads.
type DayCount struct {
	Day       string `json:"day"`
	Downloads int64  `json:"downloads"`
}

// each calls fn for every day from..to in order, with name's stored and
// pending counts of that day (every instance's documents for the day).
// Settled days are read once and kept, and the last three days are
// refreshed in the background while read: a warm 30-day chart costs
// CouchDB no request.
func (c *Counter) each(ctx context.Context, name string, from, to time.Time, fn func(day string, vs map[string]int64)) error {
	for d := from.UTC(); !d.After(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		sums, err := c.dayCounts(ctx, d, day)
		if err != nil {
			return err
		}
		vs := map[string]int64{}
		sums.add(vs, name)
		c.mu.Lock()
		for v, n := range c.pending[day][name] {
			vs[v] += n
		}
		c.mu.Unlock()
		fn(day, vs)
	}
	return nil
}

// daySums are the stored counts of one day: either every instance's
// documents summed (a settled day), or the other instances' and this
// instance's own apart.
type daySums struct {
	all, own map[string]map[string]int64
}

func (d daySums) add(vs map[string]int64, name string) {
	for v, n := range d.all[name] {
		vs[v] += n
	}
	for v, n := range d.own[name] {
		vs[v] += n
	}
}

// dayCounts is the sum of every instance's document for day. A settled
// day is read once and kept. A day that still changes is served from the
// kept sums: fresh within recentTTL, else while one background read
// refreshes them (for at most recentStale); only without usable sums does
// the caller wait, for the one read every caller shares.
func (c *Counter) dayCounts(ctx context.Context, d time.Time, day string) (daySums, error) {
	settled := c.settled(d)
	now := c.now()
	c.recentMu.Lock()
	if settled {
		c.pastMu.Lock()
		all, ok := c.past[day]
		c.pastMu.Unlock()
		if ok {
			c.recentMu.Unlock()
			return daySums{all: all}, nil
		}
	} else if r, ok := c.recent[day]; ok {
		age := now.Sub(r.at)
		// A refresh; after a failed one, not before recentTTL (an outage
		// must not cost a read per request).
		if age >= recentTTL && age < recentStale && now.Sub(c.failed[day]) >= recentTTL {
			c.startRead(day, false) // no-op when one runs
		}
		if age < recentStale && age >= 0 {
			s := c.sumsLocked(day, r)
			c.recentMu.Unlock()
			return s, nil
		}
	}
	// Nothing to serve: wait for the read (started here or by another).
	f := c.startRead(day, settled)
	c.recentMu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return daySums{}, registry.Wrap(registry.KindUnavailable, ctx.Err(), "reading the download counts of %s", day)
	}
	if f.err != nil {
		return daySums{}, f.err
	}
	if settled {
		return daySums{all: f.all}, nil
	}
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	return c.sumsLocked(day, f.day), nil
}

// sumsLocked is r with this instance's flushed document in place of the
// one read, when this process has flushed day. recentMu is held.
func (c *Counter) sumsLocked(day string, r *recentDay) daySums {
	if own, ok := c.own[day]; ok {
		return daySums{all: r.others, own: own}
	}
	return daySums{all: r.others, own: r.own}
}

// startRead starts reading day's documents unless a read runs, and
// returns the read. The read keeps its result before it ends (a settled
// day's sums for good, an unsettled day's in recent), so that a caller
// never misses both the kept sums and the read. recentMu is held.
func (c *Counter) startRead(day string, settled bool) *flight {
	if f, ok := c.flights[day]; ok {
		return f
	}
	f := &flight{done: make(chan struct{})}
	c.flights[day] = f
	go func() {
		// Detached from the request that started it: others wait for it.
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		begun := c.now()
		r, err := c.readDay(ctx, day)
		c.recentMu.Lock()
		switch {
		case err != nil:
			if !settled {
				c.failed[day] = c.now()
			}
			c.log.Warn().Err(err).Str("day", day).Msg("download counts not read")
		case settled:
			f.all = sumOf(r.others, r.own)
			c.pastMu.Lock()
			if len(c.past) >= maxPastDays {
				c.past = map[string]map[string]map[string]int64{}
			}
			c.past[day] = f.all
			c.pastMu.Unlock()
		default:
			delete(c.failed, day)
			r.at = begun
			c.recent[day] = r
			for d, kept := range c.recent { // only the last few days are ever here
				if c.now().Sub(kept.at) >= recentStale {
					delete(c.recent, d)
				}
			}
		}
		f.day, f.err = r, err
		delete(c.flights, day)
		c.recentMu.Unlock()
		close(f.done)
	}()
	return f
}

// pruneOwn forgets this instance's documents of settled days (they are
// read from CouchDB once, like every settled day). recentMu is held.
func (c *Counter) pruneOwn() {
	for day := range c.own {
		if c.settled(day0(day)) {
			delete(c.own, day)
		}
	}
}

// day0 is the start of a day written as 2006-01-02.
func day0(day string) time.Time {
	t, _ := time.Parse(time.DateOnly, day)
	return t
}

// readDay reads every instance's document of day: the others' summed, and
// this instance's own apart.
func (c *Counter) readDay(ctx context.Context, day string) (*recentDay, error) {
	docs, err := c.store.ListPrefix(ctx, idPrefix+day+":", maxInstances)
	if err != nil {
		return nil, err
	}
	r := &recentDay{others: map[string]map[string]int64{}}
	ownID := idPrefix + day + ":" + c.instance
	for _, sd := range docs {
		var dd doc
		if err := json.Unmarshal(sd.Doc, &dd); err != nil {
			continue
		}
		if sd.ID == ownID {
			r.own = dd.Counts
			continue
		}
		for name, vs := range dd.Counts {
			if r.others[name] == nil {
				r.others[name] = map[string]int64{}
			}
			for v, n := range vs {
				r.others[name][v] += n
			}
		}
	}
	return r, nil
}

// sumOf adds b's counts into a copy of a.
func sumOf(a, b map[string]map[string]int64) map[string]map[string]int64 {
	all := make(map[string]map[string]int64, len(a)+len(b))
	for _, m := range []map[string]map[string]int64{a, b} {
		for name, vs := range m {
			if all[name] == nil {
				all[name] = map[string]int64{}
			}
			for v, n := range vs {
				all[name][v] += n
			}
		}
	}
	return all
}
