package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// writeBehind stores packuments pulled from upstream after the client that
// asked has its answer: a cold read costs one upstream round trip, not that
// plus a CouchDB read and write. Until a copy is written it is served from
// here, so the reads that follow (npm asks for the tarball next) neither
// miss nor ask the upstream again. A write is retried with backoff; one
// that still fails is logged and counted, and the next read of the name
// pulls and writes it again. The queue is bounded: when it is full the
// request writes its copy itself, as before write-behind existed.
type writeBehind struct {
	queue    chan string
	attempts int
	backoff  time.Duration // first retry wait; doubles
	write    func(ctx context.Context, p *registry.Packument) (*registry.Packument, error)
	timeout  time.Duration // bound on one write attempt
	stats    *Stats
	log      zerolog.Logger

	mu      sync.Mutex
	pending map[string]*pendingWrite
	idle    *sync.Cond // signalled when pending empties
}

// pendingWrite is a packument waiting to be written.
type pendingWrite struct {
	p    *registry.Packument // the document to write (stripped, no revision)
	rev  string              // the revision served for it meanwhile (ETag)
	done chan struct{}       // closed once written or given up on
	err  error               // the last attempt's error, once done
}

// writeBehindConfig sizes the write-behind.
type writeBehindConfig struct {
	Queue    int           // names waiting at most (default 1024)
	Workers  int           // writes in flight (default 4)
	Attempts int           // tries per write (default 6)
	Backoff  time.Duration // first retry wait (default 250ms)
	Timeout  time.Duration // one attempt (default 30s)
}

func newWriteBehind(cfg writeBehindConfig, write func(ctx context.Context, p *registry.Packument) (*registry.Packument, error), stats *Stats, log zerolog.Logger) *writeBehind {
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	w := &writeBehind{queue: make(chan string, cfg.Queue), attempts: cfg.Attempts, backoff: cfg.Backoff,
		write: write, timeout: cfg.Timeout, stats: stats, log: log, pending: map[string]*pendingWrite{}}
	w.idle = sync.NewCond(&w.mu)
	for range cfg.Workers {
		go w.run()
	}
	return w
}

// put hands p (stripped) over to be written and returns the copy to serve
// and the pending write. When the queue is full it writes p itself,
// within ctx, and returns what was stored.
func (w *writeBehind) put(ctx context.Context, p *registry.Packument) (*registry.Packument, *pendingWrite, error) {
	w.mu.Lock()
	if pw := w.pending[p.ID]; pw != nil {
		// Not written yet: the newer copy replaces the queued one.
		pw.p, pw.rev = p, pendingRev()
		w.mu.Unlock()
		return served(p, pw.rev), pw, nil
	}
	pw := &pendingWrite{p: p, rev: pendingRev(), done: make(chan struct{})}
	select {
	case w.queue <- p.ID:
		w.pending[p.ID] = pw
		w.mu.Unlock()
		w.stats.writeQueued.Add(1)
		w.stats.writePending.Add(1)
		return served(p, pw.rev), pw, nil
	default:
	}
	w.mu.Unlock()
	// Full: this request waits for its own write (backpressure).
	w.stats.writeQueueFull.Add(1)
	stored, err := w.write(ctx, served(p, ""))
	if err != nil {
		return nil, nil, err
	}
	w.stats.onDemandWritten.Add(1)
	return stored, nil, nil
}

// get returns a copy of name's packument while its write is pending.
func (w *writeBehind) get(name string) *registry.Packument {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pw := w.pending[name]; pw != nil {
		return served(pw.p, pw.rev)
	}
	return nil
}

// wait blocks until name has no pending write, or ctx ends.
func (w *writeBehind) wait(ctx context.Context, name string) error {
	w.mu.Lock()
	pw := w.pending[name]
	w.mu.Unlock()
	if pw == nil {
		return nil
	}
	select {
	case <-pw.done:
		return pw.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain waits until no write is pending or ctx ends (shutdown, tests).
func (w *writeBehind) drain(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.idle.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) > 0 && ctx.Err() == nil {
		w.idle.Wait()
	}
	if n := len(w.pending); n > 0 {
		w.log.Warn().Int("pending", n).Msg("packument writes still pending at shutdown; the next reads pull them again")
	}
	return ctx.Err()
}

func (w *writeBehind) run() {
	for name := range w.queue {
		w.writeOne(name)
	}
}

// writeOne writes name's pending copy, and again when a newer one arrived
// while it was written.
func (w *writeBehind) writeOne(name string) {
	for {
		w.mu.Lock()
		pw := w.pending[name]
		if pw == nil {
			w.mu.Unlock()
			return
		}
		doc := pw.p
		w.mu.Unlock()

		err := w.writeRetried(name, doc)

		w.mu.Lock()
		if err == nil && pw.p != doc {
			w.mu.Unlock()
			continue // replaced meanwhile: write the newer copy
		}
		pw.err = err
		delete(w.pending, name)
		w.stats.writePending.Add(-1)
		close(pw.done)
		if len(w.pending) == 0 {
			w.idle.Broadcast()
		}
		w.mu.Unlock()
		return
	}
}

// writeRetried tries a write a few times with exponential backoff.
func (w *writeBehind) writeRetried(name string, doc *registry.Packument) error {
	wait := w.backoff
	var err error
	for attempt := 1; attempt <= w.attempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		_, err = w.write(ctx, served(doc, ""))
		cancel()
		if err == nil {
			w.stats.onDemandWritten.Add(1)
			return nil
		}
		if attempt < w.attempts {
			w.stats.writeRetries.Add(1)
			w.log.Debug().Str("pkg", name).Err(err).Dur("retry_in", wait).Msg("mirror write failed; retrying")
			time.Sleep(wait)
			wait = min(wait*2, 10*time.Second)
		}
	}
	w.stats.writeFailed.Add(1)
	w.log.Error().Str("pkg", name).Err(err).Int("attempts", w.attempts).
		Msg("could not store a pulled packument; the next read pulls it again")
	return err
}

// served is a copy of p with rev, whose maps the caller may change without
// touching p (the write-behind holds p meanwhile). The JSON values are
// shared: nothing writes into them in place.
func served(p *registry.Packument, rev string) *registry.Packument {
	q := p.Clone()
	q.Rev = rev
	return q
}

// pendingRev is the revision a not yet written copy is served with: a
// revision of generation 0 that CouchDB never gives, unique per copy, so
// that an ETag of it never matches another copy's.
func pendingRev() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "0-" + hex.EncodeToString(b)
}
