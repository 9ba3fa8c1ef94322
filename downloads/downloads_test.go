package downloads

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// memStore is a document store with CouchDB's revision check.
type memStore struct {
	mu     sync.Mutex
	docs   map[string][]byte
	revs   map[string]int
	puts   int
	failOn int // Put number that fails (1-based); 0: none
}

func newMemStore() *memStore { return &memStore{docs: map[string][]byte{}, revs: map[string]int{}} }

func (m *memStore) Get(_ context.Context, id string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.docs[id]
	if !ok {
		return "", registry.E(registry.KindNotFound, "missing")
	}
	return string(rune('0' + m.revs[id])), json.Unmarshal(b, v)
}

func (m *memStore) Put(_ context.Context, id, rev string, v any) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.puts == m.failOn {
		return "", registry.E(registry.KindUnavailable, "couchdb down")
	}
	cur := ""
	if _, ok := m.docs[id]; ok {
		cur = string(rune('0' + m.revs[id]))
	}
	if rev != cur {
		return "", registry.E(registry.KindConflict, "conflict")
	}
	b, _ := json.Marshal(v)
	m.docs[id] = b
	m.revs[id]++
	return string(rune('0' + m.revs[id])), nil
}

func (m *memStore) ListPrefix(_ context.Context, prefix string, limit int) ([]registry.StateDoc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []registry.StateDoc
	for id, b := range m.docs {
		if strings.HasPrefix(id, prefix) {
			out = append(out, registry.StateDoc{ID: id, Doc: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func day(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }

func TestCountsFlushAndSum(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	clock := day("2026-12-01").Add(10 * time.Hour)
	a := NewCounter(store, "a", zerolog.Nop())
	b := NewCounter(store, "b", zerolog.Nop())
	a.now = func() time.Time { return clock }
	b.now = a.now

	for i := 0; i < 3; i++ {
		a.Count("foo", "1.0.0")
	}
	b.Count("foo", "2.0.0")
	b.Count("bar", "1.0.0")
	// Not flushed yet: the instance's own pending counts are visible.
	got, _ := a.Versions(ctx, "foo", day("2026-12-01"), day("2026-12-01"))
	if got["1.0.0"] != 3 {
		t.Errorf("pending counts not visible: %v", got)
	}
	if store.puts != 0 {
		t.Fatalf("counting wrote to the store (%d puts)", store.puts)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(24 * time.Hour)
	a.Count("foo", "1.0.0")
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a.Count("foo", "1.0.0")
	if err := a.Flush(ctx); err != nil { // adds to the same document
		t.Fatal(err)
	}
	if len(store.docs) != 3 {
		t.Errorf("documents: %d, want one per instance and day (3)", len(store.docs))
	}

	days, err := b.Days(ctx, "foo", day("2026-11-30"), day("2026-12-02"))
	if err != nil {
		t.Fatal(err)
	}
	want := []DayCount{{"2026-11-30", 0}, {"2026-12-01", 4}, {"2026-12-02", 2}}
	if len(days) != len(want) {
		t.Fatalf("days = %v, want %v", days, want)
	}
	for i := range want {
		if days[i] != want[i] {
			t.Errorf("days = %v, want %v", days, want)
		}
	}
	vs, _ := b.Versions(ctx, "foo", day("2026-11-26"), day("2026-12-02"))
	if vs["1.0.0"] != 5 || vs["2.0.0"] != 1 || len(vs) != 2 {
		t.Errorf("versions = %v", vs)
	}
	if vs, _ := a.Versions(ctx, "bar", day("2026-12-01"), day("2026-12-01")); vs["1.0.0"] != 1 {
		t.Errorf("bar = %v", vs)
	}
}

func TestFailedFlushKeepsCounts(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	store.failOn = 1
	c := NewCounter(store, "a", zerolog.Nop())
	c.now = func() time.Time { return day("2026-12-01") }
	c.Count("foo", "1.0.0")
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err == nil {
		t.Fatal("flush over a failing store succeeded")
	}
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	other := NewCounter(store, "b", zerolog.Nop())
	vs, _ := other.Versions(ctx, "foo", day("2026-12-01"), day("2026-12-01"))
	if vs["1.0.0"] != 3 {
		t.Errorf("after a failed flush and a good one: %v, want 3", vs)
	}
}

func TestRunFlushesAtShutdown(t *testing.T) {
	store := newMemStore()
	c := NewCounter(store, "a", zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, time.Hour); close(done) }()
	c.Count("foo", "1.0.0")
	cancel()
	<-done
	if len(store.docs) != 1 {
		t.Errorf("shutdown did not flush: %d documents", len(store.docs))
	}
}

func TestConcurrentCounting(t *testing.T) {
	store := newMemStore()
	c := NewCounter(store, "a", zerolog.Nop())
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				c.Count("foo", "1.0.0")
				if i%100 == 0 {
					_ = c.Flush(ctx)
				}
			}
		}()
	}
	wg.Wait()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	vs, _ := NewCounter(store, "b", zerolog.Nop()).Versions(ctx, "foo", today, today)
	if vs["1.0.0"] != 4000 {
		t.Errorf("counted %d, want 4000", vs["1.0.0"])
	}
}

// countingStore counts ListPrefix calls; with gate set, each call waits
// for a value on it first (a slow CouchDB).
type countingStore struct {
	*memStore
	lists atomic.Int64
	gate  chan struct{}
}

func (c *countingStore) ListPrefix(ctx context.Context, prefix string, limit int) ([]registry.StateDoc, error) {
	c.lists.Add(1)
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.memStore.ListPrefix(ctx, prefix, limit)
}

// testClock is a clock the test moves while background reads look at it.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }

// waitFor polls cond for a second (background reads finish in
// microseconds against the memory store).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within a second: %s", what)
}

// idle waits until no read of c is in flight.
func idle(t *testing.T, c *Counter) {
	t.Helper()
	waitFor(t, "no read in flight", func() bool {
		c.recentMu.Lock()
		defer c.recentMu.Unlock()
		return len(c.flights) == 0
	})
}

func TestSettledDaysAreReadOnce(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := newClock(day("2026-11-01"))
	c.now = clock.now
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.set(day("2026-12-02"))
	from, to := day("2026-11-01"), day("2026-11-30")
	for i := 0; i < 3; i++ {
		days, err := c.Days(ctx, "foo", from, to)
		if err != nil || len(days) != 30 || days[0].Downloads != 1 {
			t.Fatalf("days = %v, %v", days, err)
		}
	}
	// 30 days read once; the unsettled last day (11-30) is kept for
	// recentTTL, so the two next queries read nothing.
	if n := store.lists.Load(); n != 30 {
		t.Errorf("%d reads for three 30-day queries, want 30", n)
	}
	clock.add(recentTTL)
	if _, err := c.Days(ctx, "foo", from, to); err != nil {
		t.Fatal(err)
	}
	// The unsettled day is read again, in the background.
	waitFor(t, "the unsettled day read again", func() bool { return store.lists.Load() == 31 })
	idle(t, c)
	if _, err := c.Days(ctx, "foo", from, to); err != nil {
		t.Fatal(err)
	}
	if n := store.lists.Load(); n != 31 {
		t.Errorf("%d reads after the refresh, want 31", n)
	}
}

// The sums of a day that still changes are shared by every package for a
// moment, and this instance's own downloads show at once all the same:
// pending before a flush, its own flushed document after it (which no
// read has to fetch).
func TestRecentDaysSharedAndOwnCountsAtOnce(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := newClock(day("2026-12-02").Add(10 * time.Hour))
	c.now = clock.now
	today := day("2026-12-02")
	week := func(name string) int64 {
		t.Helper()
		days, err := c.Days(ctx, name, today.AddDate(0, 0, -6), today)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, d := range days {
			n += d.Downloads
		}
		return n
	}
	// Another instance's flushed counts.
	other := NewCounter(store, "b", zerolog.Nop())
	other.now = c.now
	other.Count("foo", "1.0.0")
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := week("foo"); n != 1 {
		t.Fatalf("foo: %d, want 1", n)
	}
	reads := store.lists.Load()
	for _, name := range []string{"bar", "baz", "foo"} {
		week(name)
	}
	if n := store.lists.Load(); n != reads {
		t.Errorf("%d more reads for three packages within recentTTL, want 0", n-reads)
	}
	c.Count("foo", "1.0.0") // pending: shows at once
	if n := week("foo"); n != 2 {
		t.Errorf("foo with a pending download: %d, want 2", n)
	}
	if err := c.Flush(ctx); err != nil { // stored now: its own document is known
		t.Fatal(err)
	}
	if n := week("foo"); n != 2 {
		t.Errorf("foo after this instance's flush: %d, want 2", n)
	}
	if n := store.lists.Load(); n != reads {
		t.Errorf("this instance's flush cost %d reads, want 0", n-reads)
	}
	other.Count("foo", "1.0.0") // the other instance's: shows after recentTTL and one refresh
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.add(recentTTL)
	if n := week("foo"); n != 2 && n != 3 {
		t.Errorf("foo after recentTTL: %d, want 2 (kept) or 3 (refreshed)", n)
	}
	waitFor(t, "the other instance's download shows", func() bool { return week("foo") == 3 })
}

// Many pages of a cold instance at once read each day once, not once per
// page.
func TestConcurrentReadersShareOneRead(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore(), gate: make(chan struct{})}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := newClock(day("2026-12-02").Add(10 * time.Hour))
	c.now = clock.now
	today := day("2026-12-02")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Days(ctx, "foo", today.AddDate(0, 0, -4), today); err != nil {
				t.Error(err)
			}
		}()
	}
	// The first day's read is in flight; let every read through.
	waitFor(t, "a read started", func() bool { return store.lists.Load() >= 1 })
	close(store.gate)
	wg.Wait()
	if n := store.lists.Load(); n != 5 {
		t.Errorf("20 concurrent 5-day queries made %d reads, want 5 (one a day)", n)
	}
}

// Once warm, a query never waits for CouchDB: stale sums are served while
// one background read refreshes them; only sums older than recentStale
// make the caller wait.
func TestStaleSumsServedWhileRefreshing(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := newClock(day("2026-12-02").Add(10 * time.Hour))
	c.now = clock.now
	other := NewCounter(store, "b", zerolog.Nop())
	other.now = c.now
	today := day("2026-12-02")
	count := func(ctx context.Context) (int64, error) {
		days, err := c.Days(ctx, "foo", today, today)
		if err != nil {
			return 0, err
		}
		return days[0].Downloads, nil
	}
	if n, err := count(ctx); err != nil || n != 0 {
		t.Fatalf("cold: %d, %v", n, err)
	}
	other.Count("foo", "1.0.0")
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	store.gate = make(chan struct{}) // CouchDB hangs from now on
	clock.add(recentTTL)
	for i := 0; i < 50; i++ {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		n, err := count(qctx)
		cancel()
		if err != nil || n != 0 {
			t.Fatalf("stale query %d: %d, %v (want the kept 0 at once)", i, n, err)
		}
	}
	waitFor(t, "one refresh started", func() bool { return store.lists.Load() == 2 })
	for i := 0; i < 10; i++ {
		if n, err := count(ctx); err != nil || n != 0 {
			t.Fatalf("stale query during the refresh: %d, %v", n, err)
		}
	}
	if n := store.lists.Load(); n != 2 {
		t.Errorf("%d reads for 60 stale queries, want 2 (the cold one and one refresh)", n)
	}
	store.gate <- struct{}{}
	idle(t, c)
	if n, _ := count(ctx); n != 1 {
		t.Errorf("after the refresh: %d, want 1", n)
	}
	// Too old to serve: the caller waits for the read (here: times out).
	clock.add(recentStale)
	qctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := count(qctx); !registry.IsKind(err, registry.KindUnavailable) {
		t.Errorf("sums older than recentStale with CouchDB hanging: %v, want unavailable", err)
	}
	close(store.gate)
	idle(t, c)
}

// A read in flight while this instance flushes never counts its own
// downloads twice (or drops them): its own document is the one it wrote.
func TestFlushDuringReadCountsOnce(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := newClock(day("2026-12-02").Add(10 * time.Hour))
	c.now = clock.now
	today := day("2026-12-02")
	count := func() int64 {
		t.Helper()
		days, err := c.Days(ctx, "foo", today, today)
		if err != nil {
			t.Fatal(err)
		}
		return days[0].Downloads
	}
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d, want 1", n)
	}
	store.gate = make(chan struct{})
	clock.add(recentTTL)
	count() // starts a refresh, which waits
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err != nil { // written while the read waits
		t.Fatal(err)
	}
	close(store.gate) // the read sees the new document
	idle(t, c)
	if n := count(); n != 2 {
		t.Errorf("after a flush during a read: %d, want 2", n)
	}
	// A new instance with the same documents agrees.
	if vs, _ := NewCounter(store, "x", zerolog.Nop()).Versions(ctx, "foo", today, today); vs["1.0.0"] != 2 {
		t.Errorf("stored: %v, want 2", vs)
	}
}
