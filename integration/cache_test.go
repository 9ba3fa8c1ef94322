//go:build integration

package integration

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// cacheBound is the packument cache's documented staleness bound (README,
// "The packument cache"): heartbeat 1 s, bound 3 s. The test allows the
// bound plus a margin for a loaded test machine.
const cacheBound = 3 * time.Second

// waitVersion polls reg's packument of name until it lists version; it
// returns how long that took, failing the test past limit.
func waitVersion(t *testing.T, reg *registry, name, version string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		h, err := reg.tryDo("GET", "/"+name, "", nil, 5*time.Second)
		if err == nil && h.Status == 200 {
			p := decodePackument(t, h.Body, "GET /"+name+" on "+reg.URL)
			if _, ok := p.Versions[version]; ok && p.DistTags["latest"] == version {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: %s@%s not visible within %v (last: %v %v)", reg.URL, name, version, limit, h, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var hitsRe = regexp.MustCompile(`(?m)^couchnpm_cache_hits_total ([0-9.e+]+)$`)

func cacheHits(t *testing.T, reg *registry) float64 {
	t.Helper()
	h := reg.do("GET", "/-/metrics", "", nil)
	if h.Status != 200 {
		t.Fatalf("GET /-/metrics: %s", h)
	}
	m := hitsRe.FindSubmatch(h.Body)
	if m == nil {
		t.Fatalf("no couchnpm_cache_hits_total in /-/metrics:\n%s", tail(string(h.Body), 3000))
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return f
}

// TestCacheTwoInstancesSeePublishes: two instances on one CouchDB, both
// caching. Each serves warm reads from memory, sees its own publish on the
// next read, and sees a publish made through the other within the bound.
func TestCacheTwoInstancesSeePublishes(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	a := startRegistry(t, registryOpts{Prefix: prefix})
	b := startRegistry(t, registryOpts{Prefix: prefix})
	_, tok := rawAddUser(t, a, "cache")
	const pkg = "cachedpkg"
	publish := func(reg *registry, v string) {
		t.Helper()
		body := publishBodyWith(reg, pkg, v, markedTarball(t, pkg, v, "m"+v))
		if h := reg.do("PUT", "/"+pkg, tok, body); !is2xx(h.Status) {
			t.Fatalf("publish %s@%s through %s: %s", pkg, v, reg.URL, h)
		}
	}

	publish(a, "1.0.0")
	waitVersion(t, a, pkg, "1.0.0", 0) // read-your-writes: the very next read
	waitVersion(t, b, pkg, "1.0.0", cacheBound+2*time.Second)
	// Warm both, then make sure reads are served from memory.
	for _, reg := range []*registry{a, b} {
		before := cacheHits(t, reg)
		for range 5 {
			getPackument(t, reg, pkg, "")
		}
		if after := cacheHits(t, reg); after < before+4 {
			t.Errorf("%s: cache hits went from %v to %v over 5 warm reads", reg.URL, before, after)
		}
	}

	for i, through := range []*registry{a, b, a, b} {
		v := "1." + strconv.Itoa(i+1) + ".0"
		other := b
		if through == b {
			other = a
		}
		publish(through, v)
		waitVersion(t, through, pkg, v, 0)
		took := waitVersion(t, other, pkg, v, cacheBound+2*time.Second)
		t.Logf("publish through %s seen by the other instance after %v", through.URL, took.Round(time.Millisecond))
	}

	// The abbreviated document follows too.
	h := b.do("GET", "/"+pkg, "", nil)
	if h.Status != 200 {
		t.Fatal(h)
	}

	// CouchDB goes away and comes back: the feed breaks; a publish made
	// right after it returns is still seen within the bound (revision
	// checks until the feed is followed again).
	b.Proxy.Stop()
	if h, ok := b.waitStatus("/"+pkg, "", 503, 15*time.Second); !ok {
		t.Fatalf("GET while CouchDB is unreachable: %s, want 503 (never the cached copy)", h)
	}
	if err := b.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	publish(a, "2.0.0")
	waitVersion(t, b, pkg, "2.0.0", cacheBound+2*time.Second)
}
