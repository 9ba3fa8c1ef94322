package replication

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// prefetcher pulls, in the background, the packuments of the dependencies
// of a packument just pulled from upstream: npm asks for them next, one
// round of requests at a time, and finds them here. It is bounded (a queue
// that drops when full, a few workers), deduplicated, and never asks the
// upstream about a private name: a private scope, or a name published here
// (the dependency-confusion guard), is not even looked up.
type prefetcher struct {
	pull    func(ctx context.Context, name string) error
	stored  func(ctx context.Context, name string) (bool, error)
	filter  *Filter
	private PrivateLookup
	stats   *Stats
	timeout time.Duration
	log     zerolog.Logger
	queue   chan string

	mu   sync.Mutex
	seen map[string]time.Time // names queued lately: not queued again within seenFor
}

// prefetchConfig sizes the prefetcher.
type prefetchConfig struct {
	Queue   int           // names waiting at most (default 512)
	Workers int           // pulls in flight (default 4)
	Timeout time.Duration // one name's check and pull (default 30s)
}

const (
	seenFor = 5 * time.Minute
	maxSeen = 50000
)

func newPrefetcher(cfg prefetchConfig, pull func(ctx context.Context, name string) error, stored func(ctx context.Context, name string) (bool, error),
	filter *Filter, private PrivateLookup, stats *Stats, log zerolog.Logger) *prefetcher {
	if cfg.Queue <= 0 {
		cfg.Queue = 512
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	pf := &prefetcher{pull: pull, stored: stored, filter: filter, private: private, stats: stats, timeout: cfg.Timeout,
		log: log, queue: make(chan string, cfg.Queue), seen: map[string]time.Time{}}
	for range cfg.Workers {
		go pf.run()
	}
	return pf
}

// dependencies queues the dependencies of p's latest version.
func (pf *prefetcher) dependencies(p *registry.Packument) {
	for _, name := range latestDependencies(p) {
		pf.add(name)
	}
}

// add queues name unless it may not be asked for upstream or was queued
// lately; a full queue drops it (npm's own request pulls it then).
func (pf *prefetcher) add(name string) {
	if !pf.filter.Allowed(name) || registry.ValidateName(name) != nil {
		return
	}
	now := time.Now()
	pf.mu.Lock()
	if t, ok := pf.seen[name]; ok && now.Sub(t) < seenFor {
		pf.mu.Unlock()
		return
	}
	if len(pf.seen) >= maxSeen {
		clear(pf.seen)
	}
	pf.seen[name] = now
	pf.mu.Unlock()
	select {
	case pf.queue <- name:
		pf.stats.prefetchQueued.Add(1)
	default:
		pf.stats.prefetchDropped.Add(1)
		pf.mu.Lock()
		delete(pf.seen, name)
		pf.mu.Unlock()
	}
}

func (pf *prefetcher) run() {
	for name := range pf.queue {
		ctx, cancel := context.WithTimeout(context.Background(), pf.timeout)
		pf.one(ctx, name)
		cancel()
	}
}

func (pf *prefetcher) one(ctx context.Context, name string) {
	if have, err := pf.stored(ctx, name); err != nil || have {
		return
	}
	// A name published here is never looked up upstream.
	if shadowed, err := pf.private.Shadows(ctx, name); err != nil || shadowed {
		return
	}
	if err := pf.pull(ctx, name); err != nil {
		pf.log.Debug().Str("pkg", name).Err(err).Msg("dependency prefetch failed")
		return
	}
	pf.stats.prefetched.Add(1)
}

// latestDependencies lists the registry dependencies of p's latest
// version: dependencies, optional and peer dependencies (npm installs
// peers), an alias ("npm:name@range") by its real name. Git, file, URL and
// workspace specs are skipped: no registry has them.
func latestDependencies(p *registry.Packument) []string {
	latest := p.DistTags["latest"]
	raw, ok := p.Versions[latest]
	if !ok {
		return nil
	}
	var m struct {
		Dependencies         map[string]string `json:"dependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
		PeerDependencies     map[string]string `json:"peerDependencies"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, deps := range []map[string]string{m.Dependencies, m.OptionalDependencies, m.PeerDependencies} {
		for name, spec := range deps {
			if alias, ok := strings.CutPrefix(spec, "npm:"); ok {
				// "npm:@scope/real@^1" or "npm:real"
				at := strings.LastIndex(alias, "@")
				if at > 0 {
					alias = alias[:at]
				}
				name = alias
			} else if strings.Contains(spec, ":") || strings.Contains(spec, "/") && !strings.HasPrefix(spec, "@") {
				continue // git+…, file:, http(s):, workspace:, github shorthand user/repo
			}
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}
