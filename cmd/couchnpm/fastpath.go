package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/metrics"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// fastpathConfig holds the flags of the packument cache, the metrics and
// the profiler.
type fastpathConfig struct {
	CacheBytes int64
	Pprof      string             // listen address of /debug/pprof and /metrics; "" = off
	Tarballs   tarballCacheConfig // tarcache.go

	cache   *cache.Cache     // set by wiring, nil when the cache is off
	metrics *metrics.Metrics // set by wiring
}

func (f *fastpathConfig) register(e *envFlags) {
	f.CacheBytes = 256 << 20
	if v, ok := os.LookupEnv("COUCHNPM_CACHE_BYTES"); ok {
		if v == "0" {
			f.CacheBytes = 0
		} else if err := (byteSize{&f.CacheBytes}).Set(v); err != nil {
			e.errs = append(e.errs, fmt.Errorf("COUCHNPM_CACHE_BYTES: %w", err))
		}
	}
	e.fs.Var(cacheSize{byteSize{&f.CacheBytes}}, "cache-bytes", "memory bound of the packument cache, a `size` like 256MB; 0 turns it off (env COUCHNPM_CACHE_BYTES)")
	f.Tarballs.register(e)
	e.str(&f.Pprof, "pprof", "COUCHNPM_PPROF", "", "listen address for /debug/pprof/ and /metrics, like 127.0.0.1:6060 (default: off)")
}

// cacheSize is a byteSize that also takes 0 (off).
type cacheSize struct{ byteSize }

func (c cacheSize) Set(s string) error {
	if s == "0" {
		*c.n = 0
		return nil
	}
	return c.byteSize.Set(s)
}

func (f *fastpathConfig) check() error {
	if f.Pprof != "" {
		if _, _, err := net.SplitHostPort(f.Pprof); err != nil {
			return fmt.Errorf("--pprof %q is not host:port", f.Pprof)
		}
	}
	return nil
}

// packumentDB is a packument database as both the registry and the mirror
// use it: couch.Packuments, or the cache's decorator of it.
type packumentDB interface {
	registry.PackumentStore
	DeletePackument(ctx context.Context, name, rev string) error
}

// store returns the database of role, behind the cache when it is on.
func (f *fastpathConfig) store(db *couch.Client, role string) packumentDB {
	if f.cache == nil {
		return db.Packuments(role)
	}
	return f.cache.Store(db.DBName(role), db.Packuments(role))
}

// newFastpath builds the metrics and the cache; the stores are made after
// it, the followers started by runFastpath once they are.
func newFastpath(cfg *config, log zerolog.Logger) {
	f := &cfg.Fastpath
	f.metrics = metrics.New()
	if f.CacheBytes <= 0 {
		log.Info().Msg("packument cache off")
		return
	}
	f.cache = cache.New(cache.Config{MaxBytes: f.CacheBytes, Log: log})
	f.metrics.WatchCache(f.cache.Stats)
	log.Info().Str("max_size", formatBytes(f.CacheBytes)).Int64("max_bytes", f.CacheBytes).Dur("staleness_bound", f.cache.Bound()).Msg("packument cache on")
}

// runFastpath starts the cache's changes followers in bg.
func runFastpath(ctx context.Context, cfg *config, bg *sync.WaitGroup) {
	if c := cfg.Fastpath.cache; c != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			c.Run(ctx)
		}()
	}
}

// wireFastpath fills the handler configuration and starts the profiler's
// listener when asked.
func wireFastpath(ctx context.Context, cfg *config, mirror handlers.MirrorStatus, hc *handlers.Config, log zerolog.Logger) error {
	f := &cfg.Fastpath
	if f.cache != nil {
		hc.Bodies = f.cache
	}
	if r, ok := mirror.(*replication.Reporter); ok && r != nil {
		f.metrics.WatchMirror(r.Status)
	}
	hc.Metrics = f.metrics.Handler()
	hc.Observer = f.metrics
	if f.Pprof == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", f.metrics.Handler())
	ln, err := net.Listen("tcp", f.Pprof)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn().Err(err).Msg("pprof listener stopped")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info().Str("listen", f.Pprof).Msg("profiling on /debug/pprof/ and metrics on /metrics")
	return nil
}
