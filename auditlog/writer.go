package auditlog

import (
	"context"
	"errors"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// ErrRefused marks a store error that retrying cannot cure (the database
// refused the entries as invalid or too large).
var ErrRefused = errors.New("the audit database refused the entries")

// Store keeps entries. Entries are only ever created.
type Store interface {
	// AppendEntries creates the entries' documents (one request). An
	// entry whose document exists already with the same hash counts as
	// written (a retry after a lost answer). An error that retrying
	// cannot cure wraps ErrRefused.
	AppendEntries(ctx context.Context, entries []Entry) error
	// LastEntry is the entry with the greatest id starting with prefix;
	// nil without error when there is none.
	LastEntry(ctx context.Context, prefix string) (*Entry, error)
}

// WriterConfig tunes a Writer; zero values take the defaults.
type WriterConfig struct {
	QueueSize  int           // events waiting to be written; default 10000
	BatchSize  int           // entries per _bulk_docs request; default 200
	MaxBackoff time.Duration // between retries while CouchDB fails; default 30s
	now        func() time.Time
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Writer is the Recorder of a running process: Record queues an event
// without waiting; Run chains queued events and writes them in batches,
// retrying with backoff while CouchDB fails. Entries are lost only when
// the queue is full (Dropped counts them, and each loss is logged) or when
// the process ends before CouchDB takes them.
//
// Each Writer starts its own chain, "<instance>@<start time>", whose first
// entry links to the last entry of the instance's previous chain, so that
// with a stable instance id the chains of successive processes form one
// verifiable sequence.
type Writer struct {
	cfg      WriterConfig
	store    Store
	instance string
	chain    string
	log      zerolog.Logger
	queue    chan Event
	dropped  atomic.Int64
	written  atomic.Int64

	// owned by Run
	seq  int64
	head string
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// NewWriter prepares a writer for instance; Start links it to the
// instance's previous chain, Run writes.
func NewWriter(store Store, instance string, cfg WriterConfig, log zerolog.Logger) *Writer {
	cfg = cfg.withDefaults()
	instance = unsafeChars.ReplaceAllString(instance, "_")
	if instance == "" {
		instance = "unnamed"
	}
	return &Writer{
		cfg: cfg, store: store, instance: instance,
		// Fixed width, so that an instance's chains sort by start time.
		chain: instance + "@" + cfg.now().UTC().Format("20060102T150405.000000Z"),
		log:   log.With().Str("component", "auditlog").Logger(),
		queue: make(chan Event, cfg.QueueSize),
	}
}

// Chain is the id of the chain this writer appends to.
func (w *Writer) Chain() string { return w.chain }

// Start reads the instance's previous chain head, to link the new chain
// to it.
func (w *Writer) Start(ctx context.Context) error {
	last, err := w.store.LastEntry(ctx, w.instance+"@")
	if err != nil {
		return err
	}
	if last != nil {
		w.head = last.Hash
	}
	return nil
}

// Record queues ev; it never blocks. A full queue drops the event, counts
// it and logs the first loss and every 1000th after it (a flood must not
// flood the log too). ActionAuth events (refused credentials, which anyone
// can cause at will) may fill only half the queue, so that a flood of them
// cannot crowd out the writes.
func (w *Writer) Record(_ context.Context, ev Event) {
	if ev.At.IsZero() {
		ev.At = w.cfg.now()
	}
	if ev.Action == ActionAuth && len(w.queue) >= cap(w.queue)/2 {
		w.drop(ev)
		return
	}
	select {
	case w.queue <- ev:
	default:
		w.drop(ev)
	}
}

func (w *Writer) drop(ev Event) {
	if n := w.dropped.Add(1); n == 1 || n%1000 == 0 {
		w.log.Error().Str("action", ev.Action).Int64("dropped_total", n).Int("queue", cap(w.queue)).
			Msg("audit log queue full: entries dropped (CouchDB too slow or down)")
	}
}

// Dropped is the number of events lost to a full queue.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Written is the number of entries stored.
func (w *Writer) Written() int64 { return w.written.Load() }

// Queued is the number of events waiting.
func (w *Writer) Queued() int { return len(w.queue) }

// Run writes queued events until ctx ends, then flushes what is queued
// within flush (CouchDB may be slow or gone at shutdown).
func (w *Writer) Run(ctx context.Context, flush time.Duration) {
	backoff := retry.Backoff{First: 100 * time.Millisecond, Max: w.cfg.MaxBackoff}
	var pending []Entry
	for {
		if len(pending) == 0 {
			select {
			case ev := <-w.queue:
				pending = w.chainUp(w.take(ev))
			case <-ctx.Done():
				w.drain(flush)
				return
			}
		}
		// A write under way is not cut short by shutdown (the store bounds
		// it with its own timeout): cancelled after CouchDB took the
		// entries, it would leave their fate unknown and cost a retry.
		err := w.store.AppendEntries(context.WithoutCancel(ctx), pending)
		if err == nil {
			w.written.Add(int64(len(pending)))
			pending = pending[:0]
			backoff.Reset()
			continue
		}
		if ctx.Err() != nil {
			w.drainWith(pending, flush)
			return
		}
		if errors.Is(err, ErrRefused) {
			// Retrying would block every later entry behind this batch;
			// verify will show the gap it leaves.
			n := w.dropped.Add(int64(len(pending)))
			w.log.Error().Err(err).Str("first", pending[0].ID()).Int("entries", len(pending)).
				Int64("dropped_total", n).Msg("audit entries refused by CouchDB: dropped")
			pending = pending[:0]
			continue
		}
		delay := backoff.Next()
		w.log.Warn().Err(err).Int("entries", len(pending)).Dur("retry_in", delay).
			Msg("cannot write audit entries; retrying")
		if retry.Wait(ctx, delay) != nil {
			w.drainWith(pending, flush)
			return
		}
	}
}

// take returns ev and whatever else is queued, up to a batch.
func (w *Writer) take(ev Event) []Event {
	out := []Event{ev}
	for len(out) < w.cfg.BatchSize {
		select {
		case ev := <-w.queue:
			out = append(out, ev)
		default:
			return out
		}
	}
	return out
}

// chainUp turns events into entries linked after the head. Once chained,
// an entry is retried as is: its place in the chain is taken.
func (w *Writer) chainUp(evs []Event) []Entry {
	out := make([]Entry, len(evs))
	for i, ev := range evs {
		w.seq++
		out[i] = newEntry(ev, w.chain, w.instance, w.seq, w.head)
		w.head = out[i].Hash
	}
	return out
}

func (w *Writer) drain(flush time.Duration) { w.drainWith(nil, flush) }

// drainWith writes pending and everything queued, trying until flush has
// passed.
func (w *Writer) drainWith(pending []Entry, flush time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), flush)
	defer cancel()
	for {
		if len(pending) == 0 {
			select {
			case ev := <-w.queue:
				pending = w.chainUp(w.take(ev))
			default:
				return
			}
		}
		if err := w.store.AppendEntries(ctx, pending); err != nil {
			if errors.Is(err, ErrRefused) {
				w.dropped.Add(int64(len(pending)))
				w.log.Error().Err(err).Int("entries", len(pending)).Msg("audit entries refused by CouchDB: dropped")
				pending = nil
				continue
			}
			if retry.Wait(ctx, 200*time.Millisecond) == nil {
				continue
			}
			w.log.Error().Err(err).Int("lost", len(pending)+len(w.queue)).
				Msg("audit entries not written at shutdown")
			return
		}
		w.written.Add(int64(len(pending)))
		pending = nil
	}
}
