// Package metrics exposes couchnpm's Prometheus metrics: requests by route
// and status with latency histograms, CouchDB call latency, the packument
// cache's counters and the mirror's progress (upstream fetches, lag).
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/replication"
)

// Metrics is one registry of metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	couch    *prometheus.HistogramVec

	seriesMu sync.RWMutex
	series   map[requestKey]requestSeries // ObserveRequest's series, looked up once
}

// requestKey names the series of one kind of request.
type requestKey struct {
	route, method string
	status        int
}

// requestSeries are the counter and the histogram of one requestKey.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// latencyBuckets spans a warm cache hit (sub-millisecond) to a slow
// tarball stream.
var latencyBuckets = []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns the metrics with Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), series: map[requestKey]requestSeries{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "couchnpm_http_requests_total", Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "couchnpm_http_request_duration_seconds", Help: "HTTP request latency by route template and method.",
		Buckets: latencyBuckets,
	}, []string{"route", "method"})
	m.couch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "couchnpm_couchdb_request_duration_seconds", Help: "CouchDB call latency (until the response headers) by method, kind and status.",
		Buckets: latencyBuckets,
	}, []string{"method", "kind", "status"})
	m.reg.MustRegister(m.requests, m.latency, m.couch,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest implements handlers.RequestObserver.
// Every request comes here: its series are found in one map lookup, not
// by hashing and checking the label values in both vectors each time (a
// few percent of a warm packument GET). Only the methods of HTTP are kept
// in the map, so a client inventing methods cannot grow it.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if !standardMethod(method) {
		// Clients name the method: made-up ones share one series, so that
		// nobody can grow the metrics without bound.
		method = "OTHER"
	}
	k := requestKey{route, method, status}
	m.seriesMu.RLock()
	s, ok := m.series[k]
	m.seriesMu.RUnlock()
	if !ok {
		s = requestSeries{count: m.requests.WithLabelValues(route, method, strconv.Itoa(status)), latency: m.latency.WithLabelValues(route, method)}
		m.seriesMu.Lock()
		m.series[k] = s
		m.seriesMu.Unlock()
	}
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete,
		http.MethodPatch, http.MethodOptions:
		return true
	}
	return false
}

// CouchTransport wraps the CouchDB client's transport to time each call.
// The changes feeds are not timed (they last as long as they are open).
func (m *Metrics) CouchTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		kind := couchKind(req.URL.EscapedPath()) // a scoped id's %2F is not a separator
		if kind == "changes" && req.URL.Query().Get("feed") == "continuous" {
			return next.RoundTrip(req)
		}
		start := time.Now()
		resp, err := next.RoundTrip(req)
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		m.couch.WithLabelValues(req.Method, kind, status).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// couchKind classifies a CouchDB path without naming documents.
func couchKind(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) <= 1 && (parts[0] == "" || strings.HasPrefix(parts[0], "_")):
		return "server"
	case len(parts) <= 1:
		return "db"
	case parts[1] == "_changes":
		return "changes"
	case parts[1] == "_design" || parts[1] == "_find" || parts[1] == "_all_docs":
		return "view"
	case strings.HasPrefix(parts[1], "_"):
		return "db"
	case len(parts) >= 3:
		return "attachment"
	default:
		return "doc"
	}
}

// statsFuncs returns registrars of counters and gauges that read one field
// of stats() at each scrape.
func statsFuncs[S any](reg prometheus.Registerer, stats func() S) (counter, gauge func(name, help string, f func(S) int64)) {
	counter = func(name, help string, f func(S) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(stats())) }))
	}
	gauge = func(name, help string, f func(S) int64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(f(stats())) }))
	}
	return counter, gauge
}

// WatchCache exports the packument cache's counters.
func (m *Metrics) WatchCache(stats func() cache.Stats) {
	counter, gauge := statsFuncs(m.reg, stats)
	counter("couchnpm_cache_hits_total", "Packument reads served from memory without a CouchDB call.", func(s cache.Stats) int64 { return s.Hits })
	counter("couchnpm_cache_revalidations_total", "Packument reads served after a revision check (HEAD) while the changes feed was down.", func(s cache.Stats) int64 { return s.Revalidations })
	counter("couchnpm_cache_misses_total", "Packument reads loaded from CouchDB.", func(s cache.Stats) int64 { return s.Misses })
	counter("couchnpm_cache_invalidations_total", "Cache entries dropped by a change.", func(s cache.Stats) int64 { return s.Invalidations })
	counter("couchnpm_cache_evictions_total", "Cache entries dropped to stay within --cache-bytes.", func(s cache.Stats) int64 { return s.Evictions })
	counter("couchnpm_cache_body_hits_total", "Rendered packument bodies served from memory.", func(s cache.Stats) int64 { return s.BodyHits })
	counter("couchnpm_cache_body_renders_total", "Packument bodies rendered (once per revision and kind).", func(s cache.Stats) int64 { return s.BodyRenders })
	gauge("couchnpm_cache_bytes", "Bytes held by the packument cache.", func(s cache.Stats) int64 { return s.Bytes })
	gauge("couchnpm_cache_entries", "Entries held by the packument cache.", func(s cache.Stats) int64 { return s.Entries })
	gauge("couchnpm_cache_feeds_up", "Databases whose changes feed is live (the rest fall back to revision checks).", func(s cache.Stats) int64 { return s.FeedsUp })
}

// mirrorStatusTTL is how long a reading of the mirror's status (CouchDB
// calls: the checkpoint, the lease) serves scrapes: several Prometheus
// servers scraping every few seconds must not each cost CouchDB calls.
const mirrorStatusTTL = 10 * time.Second

// WatchMirror exports the mirror's status, read at most once per
// mirrorStatusTTL.
func (m *Metrics) WatchMirror(status func(ctx context.Context) (*replication.Status, error)) {
	m.reg.MustRegister(&mirrorCollector{status: status, now: time.Now})
}

type mirrorCollector struct {
	status func(ctx context.Context) (*replication.Status, error)
	now    func() time.Time

	mu     sync.Mutex // held while reading: concurrent scrapes share one read
	readAt time.Time
	last   *replication.Status // nil: the last read failed
}

// read returns the cached status, reading it again once it is older than
// mirrorStatusTTL. A failed read is cached as well, so that an outage is
// not asked about on every scrape.
func (c *mirrorCollector) read() *replication.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && c.now().Sub(c.readAt) < mirrorStatusTTL {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.status(ctx)
	if err != nil {
		st = nil
	}
	c.last, c.readAt = st, c.now()
	return st
}

var (
	descLagChanges = prometheus.NewDesc("couchnpm_mirror_lag_changes", "Upstream changes not yet mirrored (follow mode).", nil, nil)
	descLagSeconds = prometheus.NewDesc("couchnpm_mirror_lag_seconds", "Age of the mirror's view of the upstream (follow mode).", nil, nil)
	descWritten    = prometheus.NewDesc("couchnpm_mirror_packuments_written_total", "Packuments written into the mirror.", nil, nil)
	descDeleted    = prometheus.NewDesc("couchnpm_mirror_packuments_deleted_total", "Packuments deleted from the mirror.", nil, nil)
	descFailures   = prometheus.NewDesc("couchnpm_mirror_failures_total", "Packages the follower failed to mirror.", nil, nil)
	descUpstream   = prometheus.NewDesc("couchnpm_upstream_fetches_total", "Upstream fetches by result (this instance).", []string{"result"}, nil)
	descTarballs   = prometheus.NewDesc("couchnpm_mirror_tarball_cache_total", "Mirrored tarball reads by result (this instance).", []string{"result"}, nil)
	descMirrorUp   = prometheus.NewDesc("couchnpm_mirror_status_up", "Whether the mirror status could be read.", nil, nil)
	// Pull-through: packuments written behind the answer, and prefetched.
	descPullWrites  = prometheus.NewDesc("couchnpm_mirror_pull_writes_total", "Pulled packuments by write outcome (this instance): queued, inline (queue full), retry, failed.", []string{"result"}, nil)
	descPullPending = prometheus.NewDesc("couchnpm_mirror_pull_writes_pending", "Pulled packuments not written into CouchDB yet (this instance).", nil, nil)
	descPrefetch    = prometheus.NewDesc("couchnpm_mirror_prefetch_total", "Dependency prefetches by outcome (this instance): queued, dropped (queue full), fetched.", []string{"result"}, nil)
)

func (c *mirrorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagChanges, descLagSeconds, descWritten, descDeleted, descFailures, descUpstream, descTarballs, descMirrorUp,
		descPullWrites, descPullPending, descPrefetch} {
		ch <- d
	}
}

func (c *mirrorCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	if st == nil {
		ch <- prometheus.MustNewConstMetric(descMirrorUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descMirrorUp, prometheus.GaugeValue, 1)
	if st.LagChanges != nil {
		ch <- prometheus.MustNewConstMetric(descLagChanges, prometheus.GaugeValue, float64(*st.LagChanges))
	}
	if st.LagSeconds != nil {
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, *st.LagSeconds)
	}
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(st.PackumentsWritten))
	ch <- prometheus.MustNewConstMetric(descDeleted, prometheus.CounterValue, float64(st.PackumentsDeleted))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.Failures))
	f := st.UpstreamFetches
	ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(f.OK), "ok")
	ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(f.NotFound), "not_found")
	ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(f.NoAnswer), "no_answer")
	ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(f.ErrorStatus), "error_status")
	ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(f.Unusable), "unusable")
	ch <- prometheus.MustNewConstMetric(descTarballs, prometheus.CounterValue, float64(st.TarballCache.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(descTarballs, prometheus.CounterValue, float64(st.TarballCache.Misses), "miss")
	p := st.PullThrough
	ch <- prometheus.MustNewConstMetric(descPullWrites, prometheus.CounterValue, float64(p.WritesQueued), "queued")
	ch <- prometheus.MustNewConstMetric(descPullWrites, prometheus.CounterValue, float64(p.WritesInline), "inline")
	ch <- prometheus.MustNewConstMetric(descPullWrites, prometheus.CounterValue, float64(p.WriteRetries), "retry")
	ch <- prometheus.MustNewConstMetric(descPullWrites, prometheus.CounterValue, float64(p.WritesFailed), "failed")
	ch <- prometheus.MustNewConstMetric(descPullPending, prometheus.GaugeValue, float64(p.WritesPending))
	ch <- prometheus.MustNewConstMetric(descPrefetch, prometheus.CounterValue, float64(p.PrefetchQueue), "queued")
	ch <- prometheus.MustNewConstMetric(descPrefetch, prometheus.CounterValue, float64(p.PrefetchDropped), "dropped")
	ch <- prometheus.MustNewConstMetric(descPrefetch, prometheus.CounterValue, float64(p.Prefetched), "fetched")
}

// WatchConflicts exports the conflict resolver's counters (this instance).
func (m *Metrics) WatchConflicts(resolved, dropped, unconfirmed func() int64) {
	for _, c := range []struct {
		name, help string
		f          func() int64
	}{
		{"couchnpm_conflicts_resolved_total", "Documents whose conflicting revisions this instance merged.", resolved},
		{"couchnpm_conflict_versions_dropped_total", "Versions published with different content on two sides of a conflict (the earliest publish is kept).", dropped},
		{"couchnpm_writes_unconfirmed_total", "Writes CouchDB accepted without a quorum (202) that were not seen on a quorum within the bound.", unconfirmed},
	} {
		f := c.f
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(f()) }))
	}
}

// WatchPeers exports the state of the replications with peer sites, from
// the keeper's last reading (no CouchDB call per scrape). /-/metrics is
// public, so peers are labelled by their number (peer="peer 1" is the
// first --peer), as /-/replication/status shows them to non-admins: their
// host names are for administrators.
func (m *Metrics) WatchPeers(status func() ([]replication.PeerStatus, time.Time)) {
	m.reg.MustRegister(&peerCollector{status: status})
}

var (
	descPeerUp      = prometheus.NewDesc("couchnpm_peer_replication_running", "Whether the replication from a peer site is running (1) or not (0).", []string{"peer", "db"}, nil)
	descPeerPending = prometheus.NewDesc("couchnpm_peer_replication_changes_pending", "Changes of the peer's database not yet replicated here.", []string{"peer", "db"}, nil)
	descPeerWritten = prometheus.NewDesc("couchnpm_peer_replication_docs_written_total", "Documents replicated from the peer (since the replication started).", []string{"peer", "db"}, nil)
)

type peerCollector struct {
	status func() ([]replication.PeerStatus, time.Time)
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPeerUp
	ch <- descPeerPending
	ch <- descPeerWritten
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	st, _ := c.status()
	for _, p := range replication.PublicPeers(st) {
		up := 0.0
		if p.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, p.Peer, p.DB)
		if p.ChangesPending != nil {
			ch <- prometheus.MustNewConstMetric(descPeerPending, prometheus.GaugeValue, float64(*p.ChangesPending), p.Peer, p.DB)
		}
		ch <- prometheus.MustNewConstMetric(descPeerWritten, prometheus.CounterValue, float64(p.DocsWritten), p.Peer, p.DB)
	}
}

// WatchWorkarounds exports how often each PouchDB-Server-only path was
// taken (couch/workarounds.go); on Apache CouchDB 3 all stay at zero.
func (m *Metrics) WatchWorkarounds(counts func() map[string]int64) {
	m.reg.MustRegister(&workaroundCollector{counts: counts})
}

var descWorkaround = prometheus.NewDesc("couchnpm_pouchdb_workarounds_total", "Times a path that exists only for PouchDB Server was taken, by path.", []string{"path"}, nil)

type workaroundCollector struct{ counts func() map[string]int64 }

func (c *workaroundCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWorkaround }

func (c *workaroundCollector) Collect(ch chan<- prometheus.Metric) {
	for path, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(descWorkaround, prometheus.CounterValue, float64(n), path)
	}
}

// WatchAuditLog exports the audit log writer's counters (this instance).
func (m *Metrics) WatchAuditLog(written, dropped func() int64, queued func() int) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "couchnpm_audit_entries_written_total",
		Help: "Audit log entries this instance stored."}, func() float64 { return float64(written()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "couchnpm_audit_entries_dropped_total",
		Help: "Audit log entries lost because the queue was full (CouchDB too slow or down for long)."}, func() float64 { return float64(dropped()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "couchnpm_audit_entries_queued",
		Help: "Audit log entries waiting to be written."}, func() float64 { return float64(queued()) }))
}
