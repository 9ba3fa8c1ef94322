package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/metrics"
	"github.com/couchnpm/couchnpm/registry"
)

// tarballCacheConfig holds the flags of the in-memory tarball cache.
type tarballCacheConfig struct {
	Bytes   int64 // bound of the cache; 0: off
	MaxItem int64 // larger tarballs always stream from CouchDB
}

func (t *tarballCacheConfig) register(e *envFlags) {
	t.Bytes, t.MaxItem = 256<<20, 4<<20
	for _, v := range []struct {
		env string
		n   *int64
	}{{"COUCHNPM_TARBALL_CACHE_BYTES", &t.Bytes}, {"COUCHNPM_TARBALL_CACHE_MAX_ITEM", &t.MaxItem}} {
		if s, ok := os.LookupEnv(v.env); ok {
			if err := (cacheSize{byteSize{v.n}}).Set(s); err != nil {
				e.errs = append(e.errs, fmt.Errorf("%s: %w", v.env, err))
			}
		}
	}
	e.fs.Var(cacheSize{byteSize{&t.Bytes}}, "tarball-cache-bytes", "memory bound of the cache of hot tarballs, a `size` like 256MB; 0 turns it off (env COUCHNPM_TARBALL_CACHE_BYTES)")
	e.fs.Var(cacheSize{byteSize{&t.MaxItem}}, "tarball-cache-max-item", "tarballs larger than this `size` are never kept in memory and stream from CouchDB (env COUCHNPM_TARBALL_CACHE_MAX_ITEM)")
}

// build returns the tarball cache for the registry's Config; nil (an
// untyped nil: off) when it is off.
func (t *tarballCacheConfig) build(m *metrics.Metrics, log zerolog.Logger) registry.TarballCache {
	if t.Bytes <= 0 || t.MaxItem <= 0 {
		log.Info().Msg("tarball cache off")
		return nil
	}
	log.Info().Str("max_size", formatBytes(t.Bytes)).Str("max_item", formatBytes(t.MaxItem)).Msg("tarball cache on")
	c := cache.NewTarballs(t.Bytes, t.MaxItem)
	if m != nil {
		m.WatchTarballs(c.Stats)
	}
	return c
}
