package replication

import (
	"context"
	"crypto/md5" //nolint:gosec // CouchDB's attachment digest is md5
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// Mode is how the mirror is kept.
type Mode string

// The mirror modes.
const (
	ModeOff       Mode = "off"       // private packages only
	ModeOnDemand  Mode = "on-demand" // pull packuments through when asked
	ModeFollow    Mode = "follow"    // follow the upstream's changes feed
	ModeReplicate Mode = "replicate" // CouchDB _replicator from an upstream CouchDB
)

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeOff, ModeOnDemand, ModeFollow, ModeReplicate:
		return m, nil
	}
	return "", errors.New("mirror mode must be off, on-demand, follow or replicate")
}

// PackumentStore is the mirror database.
type PackumentStore interface {
	GetPackument(ctx context.Context, name string) (*registry.Packument, error)
	// GetPackumentForWrite reads the revision a write sends back (see
	// registry.PackumentStore).
	GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error)
	PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error)
	DeletePackument(ctx context.Context, name, rev string) error
}

// DocStore is a database of small JSON documents with attachments (the
// tarball cache, the system database).
type DocStore interface {
	Get(ctx context.Context, id string, v any) (string, error)
	Put(ctx context.Context, id, rev string, v any) (string, error)
	Delete(ctx context.Context, id, rev string) error
	PutAttachment(ctx context.Context, id, rev, file, contentType string, body io.Reader) (string, error)
	OpenAttachment(ctx context.Context, id, file string) (*registry.Tarball, error)
	StatAttachment(ctx context.Context, id, file string) (*registry.Tarball, error)
	Copy(ctx context.Context, from, to string) error
}

// Upstream fields stored on mirrored packuments. CouchDB reserves
// top-level names starting with "_", hence the prefix.
const (
	fieldUpstreamRev = "couchnpm_upstream_rev"
	fieldFetched     = "couchnpm_fetched"
)

// Mirror serves mirrored packuments and tarballs: from CouchDB when it has
// them, else pulled from upstream once and kept.
type Mirror struct {
	mode     Mode
	store    PackumentStore
	tarballs DocStore
	up       *Upstream
	filter   *Filter
	maxAge   time.Duration // on-demand refresh age
	flights  singleflight.Group
	// downloads are the upstream tarball downloads under way, by id.
	dmu       sync.Mutex
	downloads map[string]*sharedDownload
	window    int64 // of each download (shared.go); 0: shareWindow
	log       zerolog.Logger
	stats     *Stats
	// nameCheck bounds Known: how long a first publish waits for the
	// upstream to say whether it has the name.
	nameCheck time.Duration
	signer    registry.VersionSigner // signs verified unsigned versions (keys.go); nil: never
	// cleanup runs the clean-ups that outlive a request (discardBroken)
	// until Close.
	cleanup  background
	writes   *writeBehind // pulled packuments on their way into CouchDB (writebehind.go)
	prefetch *prefetcher  // dependencies pulled ahead (prefetch.go); nil: off
}

// background runs goroutines that end with a context of their own, and
// waits for them when it is closed.
type background struct {
	mu     sync.Mutex
	closed bool
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newBackground() background {
	ctx, stop := context.WithCancel(context.Background())
	return background{ctx: ctx, stop: stop}
}

// goWith runs fn(ctx) unless closed.
func (b *background) goWith(fn func(ctx context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.wg.Go(func() { fn(b.ctx) })
}

// close ends the goroutines' context and waits for them.
func (b *background) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stop()
	b.wg.Wait()
}

// MirrorConfig configures a Mirror: its settings and what it is built on.
type MirrorConfig struct {
	Mode   Mode
	MaxAge time.Duration // how old an on-demand copy may get before it is refreshed
	// NameCheckTimeout bounds Known (default 10 s).
	NameCheckTimeout time.Duration

	Store    PackumentStore // the mirror database (required)
	Tarballs DocStore       // tarballs and attestations (required)
	Upstream *Upstream      // the registry mirrored (required)
	Filter   *Filter        // which names are mirrored, which scopes are private (required)
	Stats    *Stats         // counters for metrics and status (required)
	Log      zerolog.Logger
	// Signer signs the versions the upstream left unsigned, once their
	// tarball was fetched and verified (keys.go); nil: never.
	Signer registry.VersionSigner
}

// NewMirror builds the mirror read path from cfg in one step; a missing
// required dependency is an error here, never a nil dereference later.
func NewMirror(cfg MirrorConfig) (*Mirror, error) {
	var missing []string
	for _, d := range []struct {
		name string
		nil  bool
	}{{"Store", cfg.Store == nil}, {"Tarballs", cfg.Tarballs == nil}, {"Upstream", cfg.Upstream == nil},
		{"Filter", cfg.Filter == nil}, {"Stats", cfg.Stats == nil}} {
		if d.nil {
			missing = append(missing, d.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("replication.NewMirror: missing %s", strings.Join(missing, ", "))
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.NameCheckTimeout <= 0 {
		cfg.NameCheckTimeout = 10 * time.Second
	}
	m := &Mirror{mode: cfg.Mode, store: cfg.Store, tarballs: cfg.Tarballs, up: cfg.Upstream, filter: cfg.Filter,
		maxAge: cfg.MaxAge, nameCheck: cfg.NameCheckTimeout, log: cfg.Log, stats: cfg.Stats, signer: cfg.Signer,
		cleanup: newBackground()}
	m.writes = newWriteBehind(writeBehindConfig{}, m.storeOver, cfg.Stats, cfg.Log)
	return m, nil
}

// Close stops the mirror's background clean-ups and waits for them (at
// shutdown, with the other background work).
func (m *Mirror) Close() { m.cleanup.close() }

// WithPrefetch turns on the prefetch of dependencies (prefetch.go).
// private tells which names are published here: those are never asked for
// upstream, so without it there is no prefetch.
func (m *Mirror) WithPrefetch(private PrivateLookup) *Mirror {
	if private == nil {
		return m
	}
	stored := func(ctx context.Context, name string) (bool, error) {
		if m.writes.get(name) != nil {
			return true, nil
		}
		_, err := m.store.GetPackument(ctx, name)
		if registry.IsKind(err, registry.KindNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	pull := func(ctx context.Context, name string) error {
		_, err := m.pull(ctx, name, false)
		return err
	}
	m.prefetch = newPrefetcher(prefetchConfig{}, pull, stored, m.filter, private, m.stats, m.log)
	return m
}

// Drain waits until every pulled packument is written, or ctx ends: at
// shutdown, so that no pulled copy is lost with the process.
func (m *Mirror) Drain(ctx context.Context) error { return m.writes.drain(ctx) }

// Known reports whether the upstream has name: a copy is mirrored, or the
// upstream serves its packument (asked within NameCheckTimeout; a name the
// allow-list mirrors is stored on the way, as a read would). The upstream
// answering 404 means no; an upstream that cannot be asked is an error,
// never a no.
func (m *Mirror) Known(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, m.nameCheck)
	defer cancel()
	_, err := m.store.GetPackument(ctx, name)
	if err == nil {
		return true, nil
	}
	if !registry.IsKind(err, registry.KindNotFound) {
		return false, err
	}
	// A name outside the allow-list is not mirrored here, yet the upstream
	// may well know it: ask without keeping the answer.
	if m.filter.Allowed(name) {
		_, err = m.pull(ctx, name, true)
	} else {
		_, err = m.up.Packument(ctx, name)
	}
	switch {
	case err == nil:
		return true, nil
	case registry.IsKind(err, registry.KindNotFound):
		return false, nil
	default:
		m.log.Warn().Str("pkg", name).Str("upstream", m.up.Base()).Err(err).Msg("cannot tell whether the upstream knows a name")
		return false, err
	}
}

// Private reports whether name is in a private scope.
func (m *Mirror) Private(name string) bool { return m.filter.Private(name) }

// Packument returns a mirrored package: the stored copy, refreshed in
// on-demand mode when old (the stale copy is served when upstream is down),
// or pulled from upstream when absent.
func (m *Mirror) Packument(ctx context.Context, name string) (*registry.Packument, error) {
	if !m.filter.Allowed(name) {
		return nil, registry.E(registry.KindNotFound, "package %s is not mirrored here", name)
	}
	if p := m.writes.get(name); p != nil {
		return p, nil // pulled, not written yet
	}
	p, err := m.store.GetPackument(ctx, name)
	switch {
	case err == nil:
		if m.mode == ModeOnDemand && m.stale(p) {
			fresh, err := m.pull(ctx, name, false)
			if err == nil {
				return fresh, nil
			}
			if registry.IsKind(err, registry.KindNotFound) {
				return nil, err
			}
			m.log.Warn().Str("pkg", name).Str("upstream", m.up.Base()).Err(err).Msg("refresh failed; serving the stored copy")
		}
		return p, nil
	case registry.IsKind(err, registry.KindNotFound):
		return m.pull(ctx, name, false)
	default:
		return nil, err
	}
}

func (m *Mirror) stale(p *registry.Packument) bool {
	var fetched time.Time
	if raw, ok := p.Fields[fieldFetched]; ok {
		_ = json.Unmarshal(raw, &fetched)
	}
	return time.Since(fetched) > m.maxAge
}

// pull fetches name from upstream and answers with it as soon as it is
// read and checked; the write into CouchDB follows in the background
// (writebehind.go), unless stored is set: then pull returns once it is
// written. Concurrent pulls of one name share one fetch, which runs on its
// own context so that one client hanging up does not cancel it for the
// others. A pulled packument has its dependencies prefetched.
func (m *Mirror) pull(ctx context.Context, name string, stored bool) (*registry.Packument, error) {
	ch := m.flights.DoChan("pkg:"+name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.up.cfg.Timeout)
		defer cancel()
		p, err := m.up.Packument(fctx, name)
		m.stats.upstreamFetch(err)
		if err != nil {
			if registry.IsKind(err, registry.KindNotFound) {
				m.dropLocal(fctx, name)
			} else {
				m.log.Warn().Str("pkg", name).Str("upstream", m.up.Base()).Err(err).Msg("upstream packument fetch failed")
			}
			return nil, err
		}
		stripUpstream(p)
		served, pending, err := m.writes.put(fctx, p)
		if err != nil {
			return nil, err
		}
		if m.prefetch != nil {
			m.prefetch.dependencies(p)
		}
		return pulled{p: served, pending: pending}, nil
	})
	select {
	case <-ctx.Done():
		return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for the upstream registry")
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		got := res.Val.(pulled)
		if stored && got.pending != nil {
			select {
			case <-got.pending.done:
				if got.pending.err != nil {
					return nil, got.pending.err
				}
			case <-ctx.Done():
				return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for the mirror write")
			}
		}
		// Each caller gets its own copy: callers may change what they read.
		return served(got.p, got.p.Rev), nil
	}
}

// pulled is a pull's outcome shared by its waiters.
type pulled struct {
	p       *registry.Packument
	pending *pendingWrite // nil when written already
}

// dropLocal removes a stored copy of a package upstream no longer has.
func (m *Mirror) dropLocal(ctx context.Context, name string) {
	if old, err := m.store.GetPackument(ctx, name); err == nil {
		_ = m.store.DeletePackument(ctx, name, old.Rev)
	}
}

// Store writes an upstream packument into the mirror database: no
// attachments, the upstream revision kept for change detection, upstream
// design-document fields dropped. A write conflict means someone else
// stored it: their copy is as good.
func (m *Mirror) Store(ctx context.Context, p *registry.Packument) (*registry.Packument, error) {
	stripUpstream(p)
	return m.storeOver(ctx, p)
}

// stripUpstream turns a packument as the upstream serves it into the
// document the mirror keeps: no attachments, the upstream revision kept for
// change detection, upstream underscore fields dropped, no revision of
// ours yet.
func stripUpstream(p *registry.Packument) {
	upstreamRev := p.Rev
	p.Attachments = nil
	if p.Fields == nil {
		p.Fields = map[string]json.RawMessage{}
	}
	p.Fields[fieldUpstreamRev], _ = json.Marshal(upstreamRev)
	p.Fields[fieldFetched], _ = json.Marshal(time.Now().UTC())
	for k := range p.Fields {
		if strings.HasPrefix(k, "_") { // _revisions, _conflicts, … are not ours to write
			delete(p.Fields, k)
		}
	}
	p.Rev = ""
}

// over makes p (stripped) replace old, the stored copy (nil when none):
// old's revision, and the signatures this registry gave old's versions.
func over(p, old *registry.Packument) {
	p.Rev = ""
	if old != nil {
		p.Rev = old.Rev
		keepSignatures(old, p)
	}
}

// storeOver writes a stripped packument over whatever copy is stored.
func (m *Mirror) storeOver(ctx context.Context, p *registry.Packument) (*registry.Packument, error) {
	old, err := m.store.GetPackumentForWrite(ctx, p.ID)
	if err != nil && !registry.IsKind(err, registry.KindNotFound) {
		return nil, err
	}
	over(p, old)
	w, err := m.store.PutPackument(ctx, p)
	if registry.IsKind(err, registry.KindConflict) {
		return m.store.GetPackument(ctx, p.ID)
	}
	if err != nil {
		return nil, err
	}
	p.Rev = w.Rev
	return p, nil
}

// tarballFile is the attachment name of a cached tarball. The cache holds
// one document per tarball, id "name@version"; a document exists there only
// once its bytes were verified.
const tarballFile = "package.tgz"

// Tarball serves a mirrored package's tarball from the cache, fetching and
// verifying it first when it is not cached.
func (m *Mirror) Tarball(ctx context.Context, name, version string, head bool) (*registry.Tarball, error) {
	id := name + "@" + version
	t, err := m.openCached(ctx, id, head)
	if err == nil {
		m.stats.hits.Add(1)
		return t, nil
	}
	if !registry.IsKind(err, registry.KindNotFound) {
		return nil, err
	}
	p, err := m.Packument(ctx, name)
	if err != nil {
		return nil, err
	}
	manifest, ok := p.Versions[version]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "no version %s of %s", version, name)
	}
	var v struct {
		Dist struct {
			Tarball      string `json:"tarball"`
			Integrity    string `json:"integrity"`
			Shasum       string `json:"shasum"`
			Attestations *struct {
				URL string `json:"url"`
			} `json:"attestations"`
		} `json:"dist"`
	}
	if err := json.Unmarshal(manifest, &v); err != nil || v.Dist.Tarball == "" {
		return nil, registry.E(registry.KindNotFound, "%s@%s has no tarball", name, version)
	}
	m.stats.misses.Add(1)
	want := expected{source: v.Dist.Tarball, integrity: v.Dist.Integrity, shasum: v.Dist.Shasum}
	// One download per tarball, however many clients ask: it streams at
	// upstream speed into CouchDB and into a shared buffer that every
	// waiting GET reads at its own pace (shared.go).
	d := m.download(id, func(d *sharedDownload) {
		// Detached: the fetch finishes for the other waiters even when the
		// client that started it hangs up.
		fctx := context.WithoutCancel(ctx)
		err := m.fetchTarball(fctx, id, want, d)
		d.finish(err) // the clients get the verified end now
		if err == nil {
			m.signVerified(fctx, name, version, want.integrity)
			if a := v.Dist.Attestations; a != nil {
				m.prefetchAttestations(fctx, name, version, a.URL)
			}
		}
	})
	if head {
		select {
		case <-ctx.Done():
			return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for the upstream tarball")
		case <-d.finished:
		}
		if d.err != nil {
			return nil, d.err
		}
		return m.openCached(ctx, id, head)
	}
	select {
	case <-ctx.Done():
		return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for the upstream tarball")
	case <-d.ready:
	}
	d.mu.Lock()
	size, failed, err := d.size, d.done && d.err != nil, d.err
	d.mu.Unlock()
	if failed {
		return nil, err
	}
	return &registry.Tarball{Body: d.reader(ctx), Size: size}, nil
}

// download returns the download of id under way, or starts one with fetch
// (which ends it with finish).
func (m *Mirror) download(id string, fetch func(d *sharedDownload)) *sharedDownload {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	if d := m.downloads[id]; d != nil {
		return d
	}
	d := newSharedDownload(m.window, func(ctx context.Context) (io.ReadCloser, error) {
		t, err := m.openCached(ctx, id, false)
		if err != nil {
			return nil, err
		}
		return t.Body, nil
	})
	if m.downloads == nil {
		m.downloads = map[string]*sharedDownload{}
	}
	m.downloads[id] = d
	go func() {
		fetch(d)
		m.dmu.Lock()
		delete(m.downloads, id)
		m.dmu.Unlock()
	}()
	return d
}

func (m *Mirror) openCached(ctx context.Context, id string, head bool) (*registry.Tarball, error) {
	t, err := m.tarballs.OpenAttachment(ctx, id, tarballFile)
	if err != nil {
		return nil, err
	}
	if head {
		t.Body.Close()
		t.Body = nil
	}
	return t, nil
}

// expected is what the packument promises about a tarball.
type expected struct {
	source, integrity, shasum string
}

// fetchTarball downloads a tarball from upstream straight into a staging
// document in CouchDB, hashing it on the way, and only when its sha512 (or,
// for old packages without one, its sha1) matches the packument copies it
// to its cache id (a server-side COPY). A mismatch or a broken download
// deletes the staging document: nothing unverified is ever served, and no
// byte is held in memory. Two instances fetching at once both stage; the
// second COPY finds the entry there, which is as good.
func (m *Mirror) fetchTarball(ctx context.Context, id string, want expected, d *sharedDownload) (err error) {
	log := m.log.With().Str("tarball", id).Str("source", want.source).Logger()
	if want.integrity == "" && want.shasum == "" {
		return registry.E(registry.KindBadGateway, "%s has no checksum in its packument; refusing to cache it unverified", id)
	}
	body, size, cancel, err := m.up.OpenTarball(ctx, want.source)
	m.stats.upstreamFetch(err)
	if err != nil {
		log.Warn().Err(err).Msg("upstream tarball fetch failed")
		return err
	}
	defer cancel()
	defer body.Close()
	d.start(size)
	staging := "staging:" + id + ":" + randomSuffix()
	h1, h512, h5 := sha1.New(), sha512.New(), md5.New() //nolint:gosec
	hashes := io.MultiWriter(h1, h512, h5, d)
	counted := &countingReader{r: io.TeeReader(body, hashes)}
	rev, err := m.tarballs.PutAttachment(ctx, staging, "", tarballFile, "application/octet-stream", counted)
	if err != nil {
		log.Warn().Err(err).Int64("bytes", counted.n).Msg("tarball download broke")
		m.cleanup.goWith(func(ctx context.Context) { m.discardBroken(ctx, staging) })
		return registry.Wrap(registry.KindUnavailable, err, "the upstream tarball download of %s failed", id)
	}
	defer m.abandon(ctx, staging, rev)
	sri := "sha512-" + base64.StdEncoding.EncodeToString(h512.Sum(nil))
	sha1hex := hex.EncodeToString(h1.Sum(nil))
	if !matches(want, sri, sha1hex) {
		log.Error().Str("want_integrity", want.integrity).Str("got_integrity", sri).Str("want_shasum", want.shasum).
			Str("got_shasum", sha1hex).Msg("upstream tarball failed its integrity check; not cached")
		m.stats.integrityFailures.Add(1)
		return registry.E(registry.KindBadGateway, "the upstream tarball of %s does not match its published integrity; not cached", id)
	}
	// Check that CouchDB holds exactly the verified bytes (its digest is
	// the md5 of what it stored).
	stored, err := m.tarballs.StatAttachment(ctx, staging, tarballFile)
	if err != nil {
		return err
	}
	if md5sum := base64.StdEncoding.EncodeToString(h5.Sum(nil)); strings.TrimPrefix(stored.Digest, "md5-") != md5sum || stored.Size != counted.n {
		log.Error().Str("stored_digest", stored.Digest).Str("want_md5", md5sum).Int64("stored_size", stored.Size).
			Int64("size", counted.n).Msg("CouchDB stored other bytes than were downloaded; not cached")
		return registry.E(registry.KindUnavailable, "the tarball of %s could not be stored intact", id)
	}
	if err := m.tarballs.Copy(ctx, staging, id); err != nil && !registry.IsKind(err, registry.KindConflict) {
		return err
	}
	log.Info().Int64("bytes", counted.n).Msg("cached upstream tarball")
	return nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// abandon removes a staging document. A leftover (after a crash) is never
// served: only cache ids are read.
func (m *Mirror) abandon(ctx context.Context, id, rev string) {
	if err := m.tarballs.Delete(ctx, id, rev); err != nil {
		m.log.Warn().Str("staging", id).Err(err).Msg("cannot remove a staging tarball")
	}
}

// discardBroken removes the staging document of an upload that broke off
// (a truncated or timed-out download). CouchDB commits nothing then, but
// PouchDB Server stores the part that arrived, at times only after the
// client has given up: look a few times, until ctx ends (shutdown).
func (m *Mirror) discardBroken(ctx context.Context, staging string) {
	for _, wait := range []time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second, 10 * time.Second} {
		if retry.Wait(ctx, wait) != nil {
			return
		}
		if m.discardOnce(ctx, staging) {
			return
		}
	}
}

// discardOnce removes the staging document if it is there.
func (m *Mirror) discardOnce(ctx context.Context, staging string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rev, err := m.tarballs.Get(ctx, staging, &struct{}{})
	if err != nil {
		return false
	}
	m.abandon(ctx, staging, rev)
	return true
}

// matches compares computed digests with the packument's: every sha512 or
// sha1 entry of dist.integrity must match; without integrity, dist.shasum.
func matches(want expected, sri, sha1hex string) bool {
	checked := false
	for _, entry := range strings.Fields(want.integrity) {
		algo, digest, _ := strings.Cut(entry, "-")
		switch algo {
		case "sha512":
			if "sha512-"+digest != sri {
				return false
			}
			checked = true
		case "sha1":
			raw, err := base64.StdEncoding.DecodeString(digest)
			if err != nil || hex.EncodeToString(raw) != sha1hex {
				return false
			}
			checked = true
		}
	}
	if want.shasum != "" {
		if !strings.EqualFold(want.shasum, sha1hex) {
			return false
		}
		checked = true
	}
	return checked
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Stats are the mirror's counters since start (per instance).
type Stats struct {
	onDemandWritten   atomic.Int64 // packuments written by reads (pull), not by the follower
	writeQueued       atomic.Int64 // pulled packuments handed to the write-behind
	writePending      atomic.Int64 // pulled packuments not written yet
	writeQueueFull    atomic.Int64 // pulls that wrote themselves: the write-behind queue was full
	writeRetries      atomic.Int64 // write-behind attempts that failed and were retried
	writeFailed       atomic.Int64 // write-behind writes given up on (the next read pulls again)
	prefetchQueued    atomic.Int64 // dependency names queued for prefetch
	prefetchDropped   atomic.Int64 // dependency names dropped: the prefetch queue was full
	prefetched        atomic.Int64 // packuments pulled by the prefetch
	hits              atomic.Int64
	misses            atomic.Int64
	integrityFailures atomic.Int64

	upstreamOK          atomic.Int64
	upstreamNotFound    atomic.Int64
	upstreamUnreachable atomic.Int64 // no answer: connection, timeout, no free slot
	upstreamStatus      atomic.Int64 // an answer with an error status (429, 5xx, …)
	upstreamUnusable    atomic.Int64 // an answer couchnpm could not use (too large, unreadable, off-origin)
}

// upstreamFetch counts one upstream request by its outcome.
func (s *Stats) upstreamFetch(err error) {
	var se *StatusError
	switch {
	case err == nil:
		s.upstreamOK.Add(1)
	case registry.IsKind(err, registry.KindNotFound):
		s.upstreamNotFound.Add(1)
	case errors.As(err, &se):
		s.upstreamStatus.Add(1)
	case isNoAnswer(err):
		s.upstreamUnreachable.Add(1)
	default:
		s.upstreamUnusable.Add(1)
	}
}

// isNoAnswer reports whether err is a request that got no answer.
func isNoAnswer(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
