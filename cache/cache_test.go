package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// fakeDB is an in-memory CouchDB database with a changes feed the test
// drives.
type fakeDB struct {
	mu      sync.Mutex
	docs    map[string]*registry.Packument
	n       int
	gets    atomic.Int64
	revs    atomic.Int64
	down    atomic.Bool  // CouchDB unreachable
	getHook func(string) // called inside GetPackument (races)
	feed    chan string  // events to deliver: "" heartbeat, id change
	feedErr chan error   // ends the current feed with this error
	opened  atomic.Int64
}

func newFakeDB() *fakeDB {
	return &fakeDB{docs: map[string]*registry.Packument{}, feed: make(chan string), feedErr: make(chan error)}
}

var errDown = registry.E(registry.KindUnavailable, "CouchDB is unavailable")

// write stores a new revision (as another instance would) without telling
// the cache.
func (f *fakeDB) write(name string, versions ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	p := registry.NewPackument(name)
	for _, v := range versions {
		p.Versions[v] = json.RawMessage(fmt.Sprintf(`{"name":%q,"version":%q,"dist":{"tarball":"x"}}`, name, v))
		p.DistTags["latest"] = v
	}
	p.Rev = fmt.Sprintf("%d-%032x", f.n, f.n)
	f.docs[name] = p
	return p.Rev
}

func (f *fakeDB) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return f.GetPackument(ctx, name)
}

func (f *fakeDB) PeekPackument(ctx context.Context, name string) (*registry.Packument, error) {
	return f.GetPackument(ctx, name)
}

func (f *fakeDB) GetPackument(ctx context.Context, name string) (*registry.Packument, error) {
	f.gets.Add(1)
	if f.getHook != nil {
		f.getHook(name)
	}
	if f.down.Load() {
		return nil, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.docs[name]
	if !ok {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	return p.Clone(), nil
}

func (f *fakeDB) PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.docs[p.ID]; ok && old.Rev != p.Rev {
		return registry.Written{}, registry.E(registry.KindConflict, "conflict")
	}
	f.n++
	q := p.Clone()
	q.Rev = fmt.Sprintf("%d-%032x", f.n, f.n)
	f.docs[p.ID] = q
	return registry.Written{Rev: q.Rev, Quorum: true}, nil
}

func (f *fakeDB) DeletePackument(ctx context.Context, name, rev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.docs, name)
	return nil
}

func (f *fakeDB) OpenTarball(ctx context.Context, name, att string) (*registry.Tarball, error) {
	return nil, registry.E(registry.KindNotFound, "not_found")
}

func (f *fakeDB) StatTarball(ctx context.Context, name, att string) (*registry.Tarball, error) {
	return nil, registry.E(registry.KindNotFound, "not_found")
}

func (f *fakeDB) PackumentRev(ctx context.Context, name string) (string, error) {
	f.revs.Add(1)
	if f.down.Load() {
		return "", errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.docs[name]
	if !ok {
		return "", registry.E(registry.KindNotFound, "not_found")
	}
	return p.Rev, nil
}

func (f *fakeDB) FollowChanges(ctx context.Context, hb time.Duration, on func(string)) error {
	if f.down.Load() {
		return errDown
	}
	f.opened.Add(1)
	on("")
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-f.feed:
			on(id)
		case err := <-f.feedErr:
			return err
		}
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	c     *Cache
	db    *fakeDB
	s     *Store
	clock *clock
}

// newHarness builds a cache over one fake database; with follow set, the
// changes follower runs (and is connected when newHarness returns).
func newHarness(t testing.TB, maxBytes int64, follow bool) *harness {
	t.Helper()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c := New(Config{MaxBytes: maxBytes, Heartbeat: time.Second, Bound: 3 * time.Second})
	c.now = clk.now
	db := newFakeDB()
	h := &harness{c: c, db: db, s: c.Store("registry", db), clock: clk}
	if follow {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		h.waitLive(t)
	}
	return h
}

func (h *harness) waitLive(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.c.Stats().FeedsUp == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the changes follower did not connect")
		}
		time.Sleep(time.Millisecond)
	}
}

// change delivers a change (or, with "", a heartbeat) and waits until the
// follower took it.
func (h *harness) change(id string) { h.db.feed <- id; h.db.feed <- "" }

func (h *harness) get(t testing.TB, name string) *registry.Packument {
	t.Helper()
	p, err := h.s.GetPackument(context.Background(), name)
	if err != nil {
		t.Fatalf("GetPackument(%s): %v", name, err)
	}
	return p
}

func TestHitWithoutCouchDB(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	rev := h.db.write("left-pad", "1.0.0")
	if p := h.get(t, "left-pad"); p.Rev != rev {
		t.Fatalf("rev %s, want %s", p.Rev, rev)
	}
	for range 5 {
		h.get(t, "left-pad")
	}
	if g, r := h.db.gets.Load(), h.db.revs.Load(); g != 1 || r != 0 {
		t.Fatalf("CouchDB calls: %d GET, %d HEAD; want 1 and 0", g, r)
	}
	st := h.c.Stats()
	if st.Hits != 5 || st.Misses != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCallersGetTheirOwnCopy(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	p := h.get(t, "a")
	p.Versions["9.9.9"] = json.RawMessage(`{}`)
	p.DistTags["latest"] = "9.9.9"
	q := h.get(t, "a")
	if _, ok := q.Versions["9.9.9"]; ok || q.DistTags["latest"] != "1.0.0" {
		t.Fatal("a caller's change reached the cached document")
	}
}

func TestNotFoundIsCachedAndInvalidated(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	for range 3 {
		if _, err := h.s.GetPackument(context.Background(), "nope"); !registry.IsKind(err, registry.KindNotFound) {
			t.Fatalf("want not found, got %v", err)
		}
	}
	if g := h.db.gets.Load(); g != 1 {
		t.Fatalf("%d GETs for an absent document, want 1", g)
	}
	h.db.write("nope", "1.0.0")
	h.change("nope")
	if p := h.get(t, "nope"); p.DistTags["latest"] != "1.0.0" {
		t.Fatal("a publish of a name cached as absent was not seen")
	}
}

func TestChangeInvalidates(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	h.get(t, "a")
	rev2 := h.db.write("a", "1.0.0", "1.1.0") // another instance publishes
	h.change("a")
	if p := h.get(t, "a"); p.Rev != rev2 || p.DistTags["latest"] != "1.1.0" {
		t.Fatalf("after the change: rev %s latest %s", p.Rev, p.DistTags["latest"])
	}
	if st := h.c.Stats(); st.Invalidations != 1 || st.Misses != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLocalWriteInvalidatesAtOnce(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	p := h.get(t, "a")
	p.Versions["2.0.0"] = json.RawMessage(`{"name":"a","version":"2.0.0"}`)
	w, err := h.s.PutPackument(context.Background(), p)
	rev := w.Rev
	if err != nil {
		t.Fatal(err)
	}
	if q := h.get(t, "a"); q.Rev != rev {
		t.Fatalf("read after write: rev %s, want %s", q.Rev, rev)
	}
}

func TestFallbackWhenFeedDown(t *testing.T) {
	h := newHarness(t, 1<<20, false) // no follower at all
	h.db.write("a", "1.0.0")
	h.get(t, "a")
	h.get(t, "a")
	h.get(t, "a")
	if g, r := h.db.gets.Load(), h.db.revs.Load(); g != 1 || r != 2 {
		t.Fatalf("CouchDB calls: %d GET, %d HEAD; want 1 GET then a HEAD per read", g, r)
	}
	rev2 := h.db.write("a", "1.0.0", "2.0.0")
	if p := h.get(t, "a"); p.Rev != rev2 {
		t.Fatalf("a changed revision was served stale: %s", p.Rev)
	}
	// CouchDB unreachable: the error, never the old copy.
	h.db.down.Store(true)
	if _, err := h.s.GetPackument(context.Background(), "a"); !registry.IsKind(err, registry.KindUnavailable) {
		t.Fatalf("want unavailable, got %v", err)
	}
}

func TestFeedBreakFallsBackAndRecovers(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	h.get(t, "a")
	h.db.down.Store(true)
	h.db.feedErr <- errors.New("connection reset")
	deadline := time.Now().Add(5 * time.Second)
	for h.c.Stats().FeedsUp != 0 {
		if time.Now().After(deadline) {
			t.Fatal("feed still up")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.s.GetPackument(context.Background(), "a"); !registry.IsKind(err, registry.KindUnavailable) {
		t.Fatalf("feed and CouchDB down: want unavailable, got %v", err)
	}
	// CouchDB is back; a write happened while nobody followed.
	rev2 := h.db.write("a", "1.0.0", "2.0.0")
	h.db.down.Store(false)
	h.waitLive(t) // the follower reconnects (new generation)
	if p := h.get(t, "a"); p.Rev != rev2 {
		t.Fatalf("a write missed while the feed was down was served stale")
	}
	// Revalidated under the new feed: hits again.
	before := h.db.revs.Load() + h.db.gets.Load()
	h.get(t, "a")
	if after := h.db.revs.Load() + h.db.gets.Load(); after != before {
		t.Fatal("no memory hit after the feed came back")
	}
}

func TestSilentFeedPastBoundChecksRevision(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	h.get(t, "a")
	h.get(t, "a")
	if r := h.db.revs.Load(); r != 0 {
		t.Fatalf("%d HEADs while the feed is live", r)
	}
	h.clock.add(h.c.Bound() + time.Millisecond) // no heartbeat within the bound
	rev2 := h.db.write("a", "1.0.0", "2.0.0")
	if p := h.get(t, "a"); p.Rev != rev2 {
		t.Fatal("served beyond the staleness bound")
	}
	if r := h.db.revs.Load(); r != 1 {
		t.Fatalf("%d HEADs, want 1", r)
	}
	h.change("") // a heartbeat: live again
	before := h.db.gets.Load() + h.db.revs.Load()
	h.get(t, "a")
	if h.db.gets.Load()+h.db.revs.Load() != before {
		t.Fatal("no memory hit once the feed showed life")
	}
}

func TestChangeDuringLoadIsNotKept(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	var once sync.Once
	h.db.getHook = func(string) {
		once.Do(func() {
			// The document changes and its change arrives while the old
			// revision is being read.
			h.change("a")
		})
	}
	h.get(t, "a")
	h.db.getHook = nil
	h.get(t, "a")
	if g := h.db.gets.Load(); g != 2 {
		t.Fatalf("%d GETs: a load overtaken by a change was kept", g)
	}
}

// Eight concurrent reads of a document being loaded make one load. The
// test runs in a synctest bubble: synctest.Wait returns once every reader
// is blocked (the loading one on the held read, the others on its flight),
// so the load is released only after all of them asked.
func TestSingleFlightLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1<<20, true)
		h.db.write("big", "1.0.0")
		release := make(chan struct{})
		h.db.getHook = func(string) { <-release }
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() { defer wg.Done(); h.get(t, "big") }()
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if g := h.db.gets.Load(); g != 1 {
			t.Fatalf("%d concurrent loads of one document, want 1", g)
		}
	})
}

func TestByteBoundEvictsLeastRecentlyUsed(t *testing.T) {
	h := newHarness(t, 4000, true)
	for i := range 20 {
		h.db.write(fmt.Sprintf("p%d", i), "1.0.0")
	}
	h.get(t, "p0")
	for i := 1; i < 20; i++ {
		h.get(t, "p0") // keep p0 recent
		h.get(t, fmt.Sprintf("p%d", i))
	}
	st := h.c.Stats()
	if st.Bytes > 4000 || st.Evictions == 0 {
		t.Fatalf("bound not kept: %+v", st)
	}
	before := h.db.gets.Load()
	h.get(t, "p0")
	if h.db.gets.Load() != before {
		t.Fatal("the most recently used entry was evicted")
	}
	h.get(t, "p1")
	if h.db.gets.Load() != before+1 {
		t.Fatal("the least recently used entry was kept")
	}
}

// Concurrent requests for one revision's body render it once. In a
// synctest bubble the render's sleep holds it (in fake time) until every
// other request is waiting for it.
func TestBodyRenderedOncePerRevision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1<<20, true)
		h.db.write("a", "1.0.0")
		var renders atomic.Int64
		big := []byte(fmt.Sprintf(`{"x":%q}`, make([]byte, 4096)))
		render := func() ([]byte, error) {
			renders.Add(1)
			time.Sleep(20 * time.Millisecond)
			return big, nil
		}
		p := h.get(t, "a")
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				raw, gz, err := h.c.Body(p, "corgi", render)
				if err != nil || len(raw) != len(big) || len(gz) == 0 || len(gz) >= len(raw) {
					t.Errorf("body: %d raw, %d gz, %v", len(raw), len(gz), err)
				}
			}()
		}
		wg.Wait()
		if n := renders.Load(); n != 1 {
			t.Fatalf("%d renders of one revision", n)
		}
		// Another kind renders separately; a new revision renders again.
		h.c.Body(p, "full", render)
		h.db.write("a", "1.0.0", "2.0.0")
		h.change("a")
		p2 := h.get(t, "a")
		h.c.Body(p2, "corgi", render)
		if n := renders.Load(); n != 3 {
			t.Fatalf("%d renders, want 3", n)
		}
		// The old revision's body is gone with its entry: a request still
		// holding it renders it uncached.
		raw, gz, _ := h.c.Body(p, "corgi", render)
		if gz != nil || len(raw) == 0 || renders.Load() != 4 {
			t.Fatal("a body of a dropped revision was served from the cache")
		}
	})
}

// TestAccessControlOnHits runs the registry's read path over the cache: a
// restricted package stays invisible to anonymous callers and to users who
// do not maintain it on warm hits, packument and tarball alike.
func TestAccessControlOnHits(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("secret", "1.0.0")
	h.db.mu.Lock()
	h.db.docs["secret"].Fields["access"] = json.RawMessage(`"restricted"`)
	h.db.docs["secret"].Maintainers = []registry.Person{{Name: "alice"}}
	h.db.mu.Unlock()
	svc := registrytest.NewService(t, registry.Config{Store: h.s})
	ctx := context.Background()
	alice := registry.Identity{Name: "alice"}
	for range 3 {
		if _, err := svc.Packument(ctx, alice, "secret"); err != nil {
			t.Fatalf("maintainer's read: %v", err)
		}
		for _, who := range []registry.Identity{{}, {Name: "mallory"}} {
			if _, err := svc.Packument(ctx, who, "secret"); !registry.IsKind(err, registry.KindNotFound) {
				t.Fatalf("read of a restricted package by %q on a cache hit: %v", who.Name, err)
			}
			if _, err := svc.Tarball(ctx, who, "secret", "secret-1.0.0.tgz", true); !registry.IsKind(err, registry.KindNotFound) {
				t.Fatalf("tarball of a restricted package for %q on a cache hit: %v", who.Name, err)
			}
		}
	}
	if h.c.Stats().Hits == 0 {
		t.Fatal("no cache hit: the test proves nothing")
	}
}

// A read that precedes a write checks the revision even while the feed is
// live: a change made through another instance may not have arrived yet,
// and the writer sends the revision back.
func TestFreshReadChecksRevision(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	h.get(t, "a")
	// Changed behind the feed's back (another instance, before its change
	// reached this one).
	rev2 := h.db.write("a", "1.0.0", "2.0.0")
	if p := h.get(t, "a"); p.Rev == rev2 {
		t.Fatal("the test needs a stale entry: the feed already delivered the change")
	}
	p, err := h.s.GetPackumentForWrite(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if p.Rev != rev2 {
		t.Fatalf("fresh read returned rev %s, want %s", p.Rev, rev2)
	}
	if r := h.db.revs.Load(); r != 1 {
		t.Fatalf("%d revision checks, want 1", r)
	}
}
