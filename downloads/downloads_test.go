package downloads

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
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

// countingStore counts ListPrefix calls.
type countingStore struct {
	*memStore
	lists int
}

func (c *countingStore) ListPrefix(ctx context.Context, prefix string, limit int) ([]registry.StateDoc, error) {
	c.lists++
	return c.memStore.ListPrefix(ctx, prefix, limit)
}

func TestSettledDaysAreReadOnce(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := day("2026-11-01")
	c.now = func() time.Time { return clock }
	c.Count("foo", "1.0.0")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock = day("2026-12-02")
	from, to := day("2026-11-01"), day("2026-11-30")
	for i := 0; i < 3; i++ {
		days, err := c.Days(ctx, "foo", from, to)
		if err != nil || len(days) != 30 || days[0].Downloads != 1 {
			t.Fatalf("days = %v, %v", days, err)
		}
	}
	// 30 days read once; the unsettled last day (11-30) is kept for
	// recentTTL, so the two next queries read nothing.
	if store.lists != 30 {
		t.Errorf("%d reads for three 30-day queries, want 30", store.lists)
	}
	clock = clock.Add(recentTTL)
	if _, err := c.Days(ctx, "foo", from, to); err != nil {
		t.Fatal(err)
	}
	if store.lists != 31 {
		t.Errorf("%d reads after recentTTL, want 31 (the unsettled day again)", store.lists)
	}
}

// The sums of a day that still changes are shared by every package for a
// moment, and this instance's own downloads show at once all the same:
// pending before a flush, stored after it (a flush drops the kept sums).
func TestRecentDaysSharedAndOwnCountsAtOnce(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{memStore: newMemStore()}
	c := NewCounter(store, "a", zerolog.Nop())
	clock := day("2026-12-02").Add(10 * time.Hour)
	c.now = func() time.Time { return clock }
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
	reads := store.lists
	for _, name := range []string{"bar", "baz", "foo"} {
		week(name)
	}
	if store.lists != reads {
		t.Errorf("%d more reads for three packages within recentTTL, want 0", store.lists-reads)
	}
	c.Count("foo", "1.0.0") // pending: shows at once
	if n := week("foo"); n != 2 {
		t.Errorf("foo with a pending download: %d, want 2", n)
	}
	if err := c.Flush(ctx); err != nil { // stored now: the kept sums are dropped
		t.Fatal(err)
	}
	if n := week("foo"); n != 2 {
		t.Errorf("foo after this instance's flush: %d, want 2", n)
	}
	other.Count("foo", "1.0.0") // the other instance's: shows after recentTTL
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(recentTTL)
	if n := week("foo"); n != 3 {
		t.Errorf("foo after recentTTL: %d, want 3", n)
	}
}
