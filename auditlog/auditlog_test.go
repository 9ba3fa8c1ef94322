package auditlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// chainOf makes a valid chain of n entries for instance, linked after prev.
func chainOf(instance, start string, n int, prev string) []Entry {
	var out []Entry
	for i := 1; i <= n; i++ {
		e := newEntry(Event{At: time.Date(2026, 1, 2, 3, 4, i, 0, time.UTC), Actor: "alice", Address: "10.0.0.1",
			Action: "publish", Package: "pkg", Target: "1.0." + string(rune('0'+i))}, instance+"@"+start, instance, int64(i), prev)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func TestVerify(t *testing.T) {
	first := chainOf("a", "20260101T000000.000000Z", 5, "")
	second := chainOf("a", "20260102T000000.000000Z", 3, first[4].Hash)
	other := chainOf("b", "20260101T000000.000000Z", 2, "")
	cp := func(lists ...[]Entry) []Entry {
		var out []Entry
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	without := func(list []Entry, i int) []Entry {
		out := append([]Entry(nil), list[:i]...)
		return append(out, list[i+1:]...)
	}
	tests := []struct {
		name     string
		entries  []Entry
		wantKind string // "" = intact
		wantID   string
	}{
		{name: "intact chains", entries: cp(first, second, other)},
		{name: "edited field", wantKind: ProblemEdited, wantID: first[2].ID(), entries: func() []Entry {
			l := cp(first)
			l[2].Actor = "mallory"
			return l
		}()},
		{name: "edited outcome in a later chain", wantKind: ProblemEdited, wantID: second[1].ID(), entries: func() []Entry {
			l := cp(first, second)
			l[6].Outcome = OutcomeOK
			l[6].Status = 201
			return l
		}()},
		{name: "edited with a recomputed hash shows at the next entry", wantKind: ProblemLink, wantID: first[3].ID(), entries: func() []Entry {
			l := cp(first)
			l[2].Package = "other"
			l[2].Hash = l[2].ComputeHash()
			return l
		}()},
		{name: "deleted middle entry", wantKind: ProblemMissing, wantID: first[3].ID(), entries: without(cp(first), 2)},
		{name: "deleted first entry", wantKind: ProblemMissing, wantID: first[1].ID(), entries: without(cp(first), 0)},
		{name: "deleted last entry of an earlier chain", wantKind: ProblemLink, wantID: second[0].ID(), entries: without(cp(first, second), 4)},
		{name: "deleted earlier chain", wantKind: ProblemLink, wantID: second[0].ID(), entries: cp(second)},
		// The documented limit: nothing names the newest chain's last entry.
		{name: "deleted last entry of the newest chain is not seen", entries: without(cp(first, second), 7)},
		{name: "reordered entries (seqs swapped, hashes recomputed)", wantKind: ProblemLink, wantID: first[1].ID(), entries: func() []Entry {
			l := cp(first)
			l[1].Seq, l[2].Seq = 3, 2
			l[1].Hash, l[2].Hash = l[1].ComputeHash(), l[2].ComputeHash()
			return l
		}()},
		{name: "another instance's break does not hide", wantKind: ProblemMissing, wantID: other[1].ID(), entries: cp(first, without(cp(other), 0))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := Verify(tc.entries)
			if tc.wantKind == "" {
				if len(problems) != 0 {
					t.Fatalf("want intact, got %v", problems)
				}
				return
			}
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %v", problems)
			}
			if problems[0].Kind != tc.wantKind || problems[0].ID != tc.wantID {
				t.Fatalf("got %s, want %s at %s", problems[0], tc.wantKind, tc.wantID)
			}
		})
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	s := clip(strings.Repeat("é", 400))
	if !strings.HasSuffix(s, "…") || len(s) > maxField+len("…") || !strings.HasPrefix(s, "éé") {
		t.Fatalf("clip: %q", s)
	}
	for _, r := range s {
		if r == '\uFFFD' {
			t.Fatal("clip cut a character")
		}
	}
}

// memStore is a Store in memory that can be made to fail.
type memStore struct {
	mu      sync.Mutex
	docs    map[string]Entry
	fail    int // fail this many appends
	refuse  int // then refuse this many for good
	appends int
}

func (m *memStore) AppendEntries(_ context.Context, es []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	if m.fail > 0 {
		m.fail--
		return errors.New("couchdb is down")
	}
	if m.refuse > 0 {
		m.refuse--
		return fmt.Errorf("%w: forbidden", ErrRefused)
	}
	for _, e := range es {
		m.docs[e.ID()] = e
	}
	return nil
}

func (m *memStore) LastEntry(_ context.Context, prefix string) (*Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Entry
	for id, e := range m.docs {
		if strings.HasPrefix(id, prefix) && (best == nil || id > best.ID()) {
			e := e
			best = &e
		}
	}
	return best, nil
}

func (m *memStore) all() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.docs {
		out = append(out, e)
	}
	return out
}

// Entries written across restarts and failed writes chain up and verify.
// In a synctest bubble: the retries' backoff passes in fake time.
func TestWriterChainsAcrossRestartsAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{docs: map[string]Entry{}, fail: 2}
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		run := func(n int) *Writer {
			clock = clock.Add(time.Hour)
			now := clock
			w := NewWriter(store, "host:1", WriterConfig{MaxBackoff: time.Millisecond, now: func() time.Time { return now }}, zerolog.Nop())
			if err := w.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx, time.Second); close(done) }()
			for i := 0; i < n; i++ {
				w.Record(ctx, Event{Action: "publish", Actor: "alice", Outcome: OutcomeOK})
			}
			// The writer retries after a backoff: in the bubble, time moves
			// only when every goroutine waits, so this ends as soon as the
			// entries are written, without real waiting.
			deadline := time.Now().Add(time.Minute) // fake time too
			for w.Written() < int64(n) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d entries written", w.Written(), n)
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			return w
		}
		w1 := run(3)
		w2 := run(4)
		if w1.Chain() == w2.Chain() || !strings.HasPrefix(w1.Chain(), "host_1@") {
			t.Fatalf("chains %q %q", w1.Chain(), w2.Chain())
		}
		all := store.all()
		if len(all) != 7 {
			t.Fatalf("stored %d entries, want 7 (retries must not lose or duplicate)", len(all))
		}
		heads, problems := Verify(all)
		if len(problems) != 0 || len(heads) != 2 {
			t.Fatalf("heads %v problems %v", heads, problems)
		}
		if store.appends < 3 {
			t.Fatalf("the failing store was not retried: %d appends", store.appends)
		}
	})
}

func TestWriterDropsWhenFullAndFlushesOnShutdown(t *testing.T) {
	store := &memStore{docs: map[string]Entry{}}
	w := NewWriter(store, "i", WriterConfig{QueueSize: 2}, zerolog.Nop())
	for i := 0; i < 5; i++ {
		w.Record(context.Background(), Event{Action: "login", Outcome: OutcomeRefused})
	}
	if w.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", w.Dropped())
	}
	// Refused credentials may take only half the queue.
	w2 := NewWriter(store, "j", WriterConfig{QueueSize: 4}, zerolog.Nop())
	for i := 0; i < 4; i++ {
		w2.Record(context.Background(), Event{Action: ActionAuth, Outcome: OutcomeRefused})
	}
	w2.Record(context.Background(), Event{Action: "publish"})
	if w2.Queued() != 3 || w2.Dropped() != 2 {
		t.Fatalf("auth flood: queued %d dropped %d, want 3 (2 auth, the publish) and 2", w2.Queued(), w2.Dropped())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shut down before the writer ever ran: the queue is flushed
	w.Run(ctx, time.Second)
	if got := len(store.all()); got != 2 {
		t.Fatalf("flushed %d entries, want 2", got)
	}
}

// BenchmarkRecord is the cost a request pays: one queue send.
func BenchmarkRecord(b *testing.B) {
	w := NewWriter(&memStore{docs: map[string]Entry{}}, "bench", WriterConfig{QueueSize: b.N + 1}, zerolog.Nop())
	ev := Event{Actor: "alice", Address: "10.0.0.1", Action: "publish", Package: "pkg", Target: "1.0.0", Outcome: OutcomeOK, Status: 201}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Record(context.Background(), ev)
	}
}

// BenchmarkChainUp is the writer's work per entry: canonical JSON and
// SHA-256.
func BenchmarkChainUp(b *testing.B) {
	w := NewWriter(&memStore{docs: map[string]Entry{}}, "bench", WriterConfig{}, zerolog.Nop())
	ev := Event{Actor: "alice", Address: "10.0.0.1", Action: "publish", Package: "pkg", Target: "1.0.0", Outcome: OutcomeOK, Status: 201}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.chainUp([]Event{ev})
	}
}

// A batch CouchDB refuses for good is dropped (and counted), not retried
// forever in front of every later entry; verify shows the gap.
// (In a synctest bubble: synctest.Wait returns once the writer waits for more.)
func TestWriterDropsRefusedBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{docs: map[string]Entry{}, refuse: 1}
		w := NewWriter(store, "i", WriterConfig{BatchSize: 2}, zerolog.Nop())
		for i := 0; i < 4; i++ {
			w.Record(context.Background(), Event{Action: "publish"})
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx, time.Second); close(done) }()
		synctest.Wait() // the writer took every entry and waits for more
		cancel()
		<-done
		if w.Written() != 2 || w.Dropped() != 2 {
			t.Fatalf("written %d dropped %d, want 2 and 2", w.Written(), w.Dropped())
		}
		if _, problems := Verify(store.all()); len(problems) != 1 || problems[0].Kind != ProblemMissing {
			t.Fatalf("verify: %v, want the gap reported", problems)
		}
	})
}

// blockingStore holds its first append until released, failing it if the
// writer cancels the request meanwhile.
type blockingStore struct {
	*memStore
	inFlight, release chan struct{}
	once              sync.Once
	cut               atomic.Bool // the held append saw its context end
}

func (b *blockingStore) AppendEntries(ctx context.Context, es []Entry) error {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.inFlight)
		select {
		case <-b.release:
		case <-ctx.Done():
			b.cut.Store(true)
			return ctx.Err()
		}
	}
	return b.memStore.AppendEntries(ctx, es)
}

// Shutting down while a write is under way lets it finish: cancelling it
// could leave entries CouchDB took but the writer counts as unwritten.
func TestWriterShutdownLetsWriteFinish(t *testing.T) {
	store := &blockingStore{memStore: &memStore{docs: map[string]Entry{}}, inFlight: make(chan struct{}), release: make(chan struct{})}
	w := NewWriter(store, "i", WriterConfig{}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, time.Second); close(done) }()
	w.Record(ctx, Event{Action: "import", Package: "plain-tool"})
	<-store.inFlight
	w.Record(ctx, Event{Action: "import", Package: "@acme/widget"})
	cancel()
	close(store.release)
	<-done
	if w.Written() != 2 || len(store.all()) != 2 {
		t.Fatalf("written %d, stored %d, want 2 and 2", w.Written(), len(store.all()))
	}
	if store.cut.Load() {
		t.Fatal("shutdown cut short the write under way")
	}
}
