package registry

import (
	"context"
	"testing"
)

// A whole-document update read before a publish must not unpublish the new
// version or reset the tags (TestConcurrencyPublishTwoInstances found it):
// it is a conflict, and the same change read again lands.
func TestUpdateStaleBodyDoesNotUndoLaterWrites(t *testing.T) {
	ctx := context.Background()
	s, store := cmdService(t, Policy{})
	stale := writeForm(t, store)
	setVersionField(t, stale, "1.0.0", "deprecated", "old")
	if err := s.Publish(ctx, cmdAlice, "p", buildBody(t, "p", map[string]string{"latest": "1.2.0"}, pubVersion{version: "1.2.0"})); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Update(ctx, cmdAlice, "p", "", stale), KindConflict)
	p := store.stored(t, "p")
	if p.Versions["1.2.0"] == nil || p.DistTags["latest"] != "1.2.0" {
		t.Fatalf("a stale deprecate undid the publish: versions %d, dist-tags %v", len(p.Versions), p.DistTags)
	}
	fresh := writeForm(t, store)
	setVersionField(t, fresh, "1.0.0", "deprecated", "old")
	if err := s.Update(ctx, cmdAlice, "p", "", fresh); err != nil {
		t.Fatal(err)
	}
	p = store.stored(t, "p")
	if got := jsonString(t, manifestOf(t, p, "1.0.0")["deprecated"]); got != "old" || p.Versions["1.2.0"] == nil {
		t.Fatalf("deprecated = %q, 1.2.0 present %v", got, p.Versions["1.2.0"] != nil)
	}
	// A deprecation alone, named with an older revision, still applies: it
	// touches only the versions it names.
	older := writeForm(t, store)
	setVersionField(t, older, "1.1.0", "deprecated", "older")
	if err := s.Update(ctx, cmdAlice, "p", "1-stale", older); err != nil {
		t.Fatal(err)
	}
	if got := jsonString(t, manifestOf(t, store.stored(t, "p"), "1.1.0")["deprecated"]); got != "older" {
		t.Fatalf("1.1.0 deprecated = %q", got)
	}
	// A removal named with an older revision is a conflict.
	older = writeForm(t, store)
	delete(older.Versions, "1.2.0")
	older.DistTags = map[string]string{"latest": "1.1.0"}
	wantKind(t, s.Update(ctx, cmdAlice, "p", "1-stale", older), KindConflict)
}
