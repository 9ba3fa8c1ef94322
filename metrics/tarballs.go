package metrics

import "github.com/couchnpm/couchnpm/cache"

// WatchTarballs exports the tarball cache's counters.
func (m *Metrics) WatchTarballs(stats func() cache.TarballStats) {
	counter, gauge := statsFuncs(m.reg, stats)
	counter("couchnpm_tarball_cache_hits_total", "Tarball GETs served from memory without a CouchDB call.", func(s cache.TarballStats) int64 { return s.Hits })
	counter("couchnpm_tarball_cache_misses_total", "Tarball GETs of a cacheable size streamed from CouchDB.", func(s cache.TarballStats) int64 { return s.Misses })
	counter("couchnpm_tarball_cache_fills_total", "Tarballs kept in memory after a verified read.", func(s cache.TarballStats) int64 { return s.Fills })
	counter("couchnpm_tarball_cache_evictions_total", "Tarballs dropped to stay within --tarball-cache-bytes.", func(s cache.TarballStats) int64 { return s.Evictions })
	gauge("couchnpm_tarball_cache_bytes", "Bytes held by the tarball cache.", func(s cache.TarballStats) int64 { return s.Bytes })
	gauge("couchnpm_tarball_cache_entries", "Tarballs held by the tarball cache.", func(s cache.TarballStats) int64 { return s.Entries })
}
