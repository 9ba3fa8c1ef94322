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

	// recent keeps the sums of the days still changing for recentTTL, so
	// that pages and API calls about many packages share one read of a
	// day's documents instead of each making three. gen counts this
	// instance's flushes: a read begun before a flush is not kept.
	recentMu sync.Mutex
	recent   map[string]recentDay
	gen      uint64
}

// recentDay is an unsettled day's sums as read at a moment.
type recentDay struct {
	at  time.Time
	all map[string]map[string]int64
}

// recentTTL is how long the sums of a day that still changes are reused:
// other instances' counts show within it (plus their flush interval);
// this instance's own show at once (pending counts are added on top, and a
// flush drops the kept sums).
const recentTTL = 2 * time.Second

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
		past: map[string]map[string]map[string]int64{}, recent: map[string]recentDay{}}
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
			// The kept sums of day miss what was just written, which
			// is no longer pending: read the day again next time.
			c.recentMu.Lock()
			c.gen++
			delete(c.recent, day)
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
// Settled days are read once and kept, so a 30-day chart costs CouchDB
// the reads of the last three days only.
func (c *Counter) each(ctx context.Context, name string, from, to time.Time, fn func(day string, vs map[string]int64)) error {
	for d := from.UTC(); !d.After(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		all, err := c.dayCounts(ctx, d, day)
		if err != nil {
			return err
		}
		vs := map[string]int64{}
		for v, n := range all[name] {
			vs[v] += n
		}
		c.mu.Lock()
		for v, n := range c.pending[day][name] {
			vs[v] += n
		}
		c.mu.Unlock()
		fn(day, vs)
	}
	return nil
}

// dayCounts is the sum of every instance's document for day.
func (c *Counter) dayCounts(ctx context.Context, d time.Time, day string) (map[string]map[string]int64, error) {
	settled := c.settled(d)
	if settled {
		c.pastMu.Lock()
		all, ok := c.past[day]
		c.pastMu.Unlock()
		if ok {
			return all, nil
		}
	}
	var gen uint64
	if !settled {
		c.recentMu.Lock()
		r, ok := c.recent[day]
		gen = c.gen
		c.recentMu.Unlock()
		if ok && c.now().Sub(r.at) < recentTTL && c.now().Sub(r.at) >= 0 {
			return r.all, nil
		}
	}
	docs, err := c.store.ListPrefix(ctx, idPrefix+day+":", maxInstances)
	if err != nil {
		return nil, err
	}
	all := map[string]map[string]int64{}
	for _, sd := range docs {
		var dd doc
		if err := json.Unmarshal(sd.Doc, &dd); err != nil {
			continue
		}
		for name, vs := range dd.Counts {
			if all[name] == nil {
				all[name] = map[string]int64{}
			}
			for v, n := range vs {
				all[name][v] += n
			}
		}
	}
	if !settled {
		c.recentMu.Lock()
		if c.gen == gen { // no flush of ours since the read began
			for d, r := range c.recent { // only the last few days are ever here
				if c.now().Sub(r.at) >= recentTTL {
					delete(c.recent, d)
				}
			}
			c.recent[day] = recentDay{at: c.now(), all: all}
		}
		c.recentMu.Unlock()
	}
	if settled {
		c.pastMu.Lock()
		if len(c.past) >= maxPastDays {
			c.past = map[string]map[string]map[string]int64{}
		}
		c.past[day] = all
		c.pastMu.Unlock()
	}
	return all, nil
}
