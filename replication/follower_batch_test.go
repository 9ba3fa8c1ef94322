package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// countingUpstream serves {"name":…,"_rev":"1-<name>"} for every name
// except those in missing (404), and counts the requests per name.
type countingUpstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    map[string]int
	missing map[string]bool
	docs    map[string]string // name → body served instead
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{hits: map[string]int{}, missing: map[string]bool{}, docs: map[string]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.Replace(strings.TrimPrefix(r.URL.Path, "/"), "%2f", "/", 1)
		u.mu.Lock()
		u.hits[name]++
		missing, body := u.missing[name], u.docs[name]
		u.mu.Unlock()
		if missing {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		if body == "" {
			body = fmt.Sprintf(`{"_id":%q,"_rev":"1-%s","name":%q,"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":%q,"version":"1.0.0"}}}`, name, name, name, name)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *countingUpstream) hitsOf(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[name]
}

func (u *countingUpstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, h := range u.hits {
		n += h
	}
	return n
}

// bulkMem is memPackuments with the follower's batch operations, and
// switches to refuse documents.
type bulkMem struct {
	*memPackuments
	mu        sync.Mutex
	calls     []int            // documents per PutPackuments call
	perDocErr map[string]error // id → error of its first bulk write
	whole     error            // error of every PutPackuments call
	tooLarge  map[string]bool  // ids that make CouchDB 3 refuse their whole batch (413)
	private   map[string]bool  // Existing answers (the private database)
}

func newBulkMem() *bulkMem {
	return &bulkMem{memPackuments: &memPackuments{docs: map[string]*registry.Packument{}}, perDocErr: map[string]error{}, private: map[string]bool{}}
}

func (b *bulkMem) GetPackuments(ctx context.Context, names []string) (map[string]*registry.Packument, error) {
	out := map[string]*registry.Packument{}
	for _, n := range names {
		if p, err := b.GetPackument(ctx, n); err == nil {
			out[n] = p
		}
	}
	return out, nil
}

func (b *bulkMem) PutPackuments(_ context.Context, docs []json.RawMessage) ([]registry.BulkResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.whole != nil {
		return nil, b.whole
	}
	b.calls = append(b.calls, len(docs))
	for _, raw := range docs {
		var d struct {
			ID string `json:"_id"`
		}
		_ = json.Unmarshal(raw, &d)
		if b.tooLarge[d.ID] {
			return nil, registry.E(registry.KindTooLarge, "write a batch of packages: CouchDB refused the document as too large")
		}
	}
	out := make([]registry.BulkResult, len(docs))
	for i, raw := range docs {
		var p registry.Packument
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		out[i].ID = p.ID
		if err := b.perDocErr[p.ID]; err != nil {
			delete(b.perDocErr, p.ID)
			out[i].Err = err
			continue
		}
		b.memPackuments.mu.Lock()
		if string(p.Fields["_deleted"]) == "true" {
			delete(b.memPackuments.docs, p.ID)
		} else {
			p.Rev = "2-bulk"
			b.memPackuments.docs[p.ID] = &p
		}
		b.memPackuments.mu.Unlock()
		out[i].Rev = "2-bulk"
	}
	return out, nil
}

func (b *bulkMem) Existing(_ context.Context, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		if b.private[n] {
			out[n] = true
		}
	}
	return out, nil
}

// shadowsSet is a PrivateLookup: names published here.
type shadowsSet map[string]bool

func (s shadowsSet) Shadows(_ context.Context, name string) (bool, error) { return s[name], nil }

func changeOf(name, rev string, deleted bool) Change {
	c := Change{ID: name, Deleted: deleted}
	c.Changes = append(c.Changes, struct {
		Rev string `json:"rev"`
	}{Rev: rev})
	return c
}

func newTestFollower(t *testing.T, up *countingUpstream, store *bulkMem, private shadowsSet, cfg FollowerConfig) *Follower {
	t.Helper()
	u, err := NewUpstream(UpstreamConfig{Registry: up.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMirror(t, MirrorConfig{Mode: ModeFollow, Store: store, Upstream: u, Filter: NewFilter(nil, []string{"@corp"}), Stats: &Stats{}, Log: zerolog.Nop()})
	cfg.Attempts = 1
	return NewFollower(cfg, u, m, store, private, store, nil, zerolog.Nop())
}

// A page is written in _bulk_docs batches bounded in documents, the stored
// revision of each change is compared first, and a change whose upstream
// revision is stored already costs no upstream request.
func TestFollowerBatchesAndSkipsUnchanged(t *testing.T) {
	up := newCountingUpstream(t)
	store := newBulkMem()
	f := newTestFollower(t, up, store, shadowsSet{}, FollowerConfig{BatchDocs: 40, Workers: 4})
	var page []Change
	for i := range 250 {
		name := fmt.Sprintf("pkg-%03d", i)
		page = append(page, changeOf(name, "1-"+name, false))
	}
	if err := f.apply(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	if got := len(store.docs); got != 250 {
		t.Fatalf("%d packuments stored, want 250", got)
	}
	for _, n := range store.calls {
		if n > 40 {
			t.Fatalf("a _bulk_docs call carried %d documents; the batch bound is 40 (calls %v)", n, store.calls)
		}
	}
	if len(store.calls) < 7 {
		t.Fatalf("%d _bulk_docs calls for 250 documents in batches of 40, want at least 7", len(store.calls))
	}
	cp := f.snapshot()
	if cp.Written != 250 || cp.Failed != 0 {
		t.Fatalf("checkpoint counts written %d, failed %d; want 250, 0", cp.Written, cp.Failed)
	}
	if got := upstreamRevOf(store.docs["pkg-007"]); got != "1-pkg-007" {
		t.Fatalf("stored upstream revision %q, want 1-pkg-007", got)
	}

	// The same page again, with one package changed upstream.
	before := up.total()
	page[7] = changeOf("pkg-007", "2-pkg-007", false)
	if err := f.apply(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	if got := up.total() - before; got != 1 {
		t.Fatalf("the repeated page cost %d upstream requests, want 1 (only the changed package)", got)
	}
	if got := f.snapshot().Unchanged; got != 249 {
		t.Fatalf("%d changes skipped as unchanged, want 249", got)
	}
}

// The last change of a name in a page counts; deletions are written in
// the batches; names published here (the private database) and private
// scopes are never fetched.
func TestFollowerDeletesAndPrivateNames(t *testing.T) {
	up := newCountingUpstream(t)
	store := newBulkMem()
	store.docs["gone"] = &registry.Packument{ID: "gone", Rev: "1-a", Fields: map[string]json.RawMessage{}}
	store.docs["vanished"] = &registry.Packument{ID: "vanished", Rev: "1-b", Fields: map[string]json.RawMessage{}}
	up.missing["vanished"] = true
	store.private["ours"] = true
	store.private["fork"] = true
	// "fork" is in the private database but falls back upstream
	// (an unpublished fork): it is mirrored.
	f := newTestFollower(t, up, store, shadowsSet{"ours": true}, FollowerConfig{})
	page := []Change{
		changeOf("gone", "2-x", true),
		changeOf("vanished", "2-y", false),
		changeOf("ours", "5-z", false),
		changeOf("@corp/secret", "1-s", false),
		changeOf("fork", "1-f", false),
		changeOf("twice", "1-t", false),
		changeOf("twice", "2-t", false),
	}
	if err := f.apply(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gone", "vanished", "ours", "@corp/secret"} {
		if _, ok := store.docs[name]; ok {
			t.Errorf("%s is in the mirror", name)
		}
	}
	for _, name := range []string{"ours", "@corp/secret"} {
		if h := up.hitsOf(name); h != 0 {
			t.Errorf("the upstream was asked for private name %s %d times", name, h)
		}
	}
	if _, ok := store.docs["fork"]; !ok {
		t.Error("the unpublished fork was not mirrored")
	}
	if h := up.hitsOf("twice"); h != 1 {
		t.Errorf("a name changed twice in one page was fetched %d times, want 1", h)
	}
	if cp := f.snapshot(); cp.Deleted != 2 {
		t.Errorf("%d deletions counted, want 2", cp.Deleted)
	}
}

// A document CouchDB refuses in a batch is never dropped silently: a
// conflict is written again over the current copy, a document over
// max_document_size is recorded as a failure with its name, and a batch
// CouchDB cannot take at all fails the page (its checkpoint stays).
func TestFollowerPerDocumentErrors(t *testing.T) {
	up := newCountingUpstream(t)
	store := newBulkMem()
	store.perDocErr["racy"] = registry.E(registry.KindConflict, "conflict")
	store.perDocErr["huge"] = registry.E(registry.KindTooLarge, "write package huge: too large")
	store.perDocErr["refused"] = registry.E(registry.KindForbidden, "stale")
	f := newTestFollower(t, up, store, shadowsSet{}, FollowerConfig{})
	page := []Change{changeOf("racy", "1-racy", false), changeOf("huge", "1-huge", false), changeOf("refused", "1-refused", false), changeOf("fine", "1-fine", false)}
	if err := f.apply(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"racy", "refused", "fine"} {
		if _, ok := store.docs[name]; !ok {
			t.Errorf("%s was not written", name)
		}
	}
	cp := f.snapshot()
	if cp.Failed != 1 || len(cp.LastFailures) != 1 || cp.LastFailures[0].Package != "huge" || !strings.Contains(cp.LastFailures[0].Error, "too large") {
		t.Fatalf("failures %d %+v; want one for huge, saying too large", cp.Failed, cp.LastFailures)
	}
	if cp.Written != 3 {
		t.Fatalf("written %d, want 3", cp.Written)
	}

	store.whole = registry.E(registry.KindUnavailable, "CouchDB is down")
	err := f.apply(context.Background(), []Change{changeOf("later", "1-later", false)})
	if !registry.IsKind(err, registry.KindUnavailable) {
		t.Fatalf("a batch CouchDB could not take: apply = %v, want unavailable (the page is read again)", err)
	}
}

func TestNewerRev(t *testing.T) {
	tests := []struct {
		name        string
		rev, stored string
		want        bool
	}{
		{name: "the same revision is not newer", rev: "3-abc", stored: "3-abc", want: false},
		{name: "a higher generation is newer", rev: "4-abc", stored: "3-abc", want: true},
		{name: "an older change read again is not", rev: "2-abc", stored: "3-def", want: false},
		{name: "the same generation, another hash: fetch", rev: "3-abc", stored: "3-def", want: true},
		{name: "nothing stored: fetch", rev: "1-abc", stored: "", want: true},
		{name: "an unreadable revision: fetch", rev: "x", stored: "3-abc", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newerRev(tc.rev, tc.stored); got != tc.want {
				t.Fatalf("newerRev(%q, %q) = %v, want %v", tc.rev, tc.stored, got, tc.want)
			}
		})
	}
}

// CouchDB 3.5 refuses a whole _bulk_docs request (413 document_too_large)
// when one of its documents is over max_document_size: the batch is split
// until that document is alone, it is recorded as a failure, and every
// other document of the batch is written.
func TestFollowerBatchWithADocumentTooLarge(t *testing.T) {
	up := newCountingUpstream(t)
	store := newBulkMem()
	store.tooLarge = map[string]bool{"pkg-013": true}
	f := newTestFollower(t, up, store, shadowsSet{}, FollowerConfig{BatchDocs: 40, Workers: 2})
	var page []Change
	for i := range 40 {
		name := fmt.Sprintf("pkg-%03d", i)
		page = append(page, changeOf(name, "1-"+name, false))
	}
	if err := f.apply(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	cp := f.snapshot()
	if len(store.docs) != 39 || cp.Written != 39 {
		t.Fatalf("stored %d, written %d; want 39 (all but the one too large)", len(store.docs), cp.Written)
	}
	if cp.Failed != 1 || cp.LastFailures[0].Package != "pkg-013" || !strings.Contains(cp.LastFailures[0].Error, "too large") {
		t.Fatalf("failures %d %+v; want pkg-013, too large", cp.Failed, cp.LastFailures)
	}
	if len(store.calls) > 16 {
		t.Fatalf("%d _bulk_docs calls to isolate one document in 40", len(store.calls))
	}
}
