package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestMergeKeyrings(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := func(id string, created time.Time, expires *time.Time) SigningKey {
		return SigningKey{KeyID: id, Public: "pub-" + id, Private: "priv-" + id, Created: created, Expires: expires}
	}
	exp := func(d time.Duration) *time.Time { e := t0.Add(d); return &e }
	ids := func(d keyringDoc) []string {
		var out []string
		for _, k := range d.Keys {
			e := "never"
			if k.Expires != nil {
				e = k.Expires.Sub(t0).String()
			}
			out = append(out, k.KeyID+"@"+e)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		leaves []keyringDoc
		want   []string
	}{
		{
			name: "two first starts on two sides: both keys stay",
			leaves: []keyringDoc{
				{Keys: []SigningKey{key("a", t0, nil)}},
				{Keys: []SigningKey{key("b", t0.Add(time.Second), nil)}},
			},
			want: []string{"a@never", "b@never"},
		},
		{
			name: "two rotations at once: both new keys stay, the old key keeps the earlier expiry",
			leaves: []keyringDoc{
				{Keys: []SigningKey{key("old", t0, exp(2*time.Hour)), key("r1", t0.Add(time.Hour), nil)}},
				{Keys: []SigningKey{key("old", t0, exp(3*time.Hour)), key("r2", t0.Add(2*time.Hour), nil)}},
			},
			want: []string{"old@2h0m0s", "r1@never", "r2@never"},
		},
		{
			name: "a rotation beside an untouched keyring: the expiry stays",
			leaves: []keyringDoc{
				{Keys: []SigningKey{key("old", t0, nil)}},
				{Keys: []SigningKey{key("old", t0, exp(time.Hour)), key("new", t0.Add(time.Hour), nil)}},
			},
			want: []string{"old@1h0m0s", "new@never"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeKeyrings(tc.leaves)
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("merged = %v, want %v", ids(got), tc.want)
			}
			rev := slices.Clone(tc.leaves)
			slices.Reverse(rev)
			if again := mergeKeyrings(rev); !reflect.DeepEqual(again, got) {
				t.Errorf("merge depends on the leaves' order: %v, %v", ids(again), ids(got))
			}
			if again := mergeKeyrings(append([]keyringDoc{got}, tc.leaves...)); !reflect.DeepEqual(again, got) {
				t.Errorf("merging the merge again changed it: %v", ids(again))
			}
		})
	}
}

// A keyring rotated on two nodes at once: the keys served are the union
// (a version signed with either key verifies), a rotation writes the merge
// and deletes the losing leaf, and a 202 is read back.
func TestKeyringMergesConflictingRotations(t *testing.T) {
	ctx := context.Background()
	docs := newLeafDocs()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := NewKeyring(docs, nil).WithLeaves(docs)
	a.now = func() time.Time { return now }
	if _, err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Another node rotated on the same revision; CouchDB's winner lacks it.
	var base keyringDoc
	if _, err := docs.Get(ctx, keyringDocID, &base); err != nil {
		t.Fatal(err)
	}
	other, err := NewSigningKey(now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	loser := keyringDoc{Keys: append(slices.Clone(base.Keys), other)}
	b, _ := json.Marshal(loser)
	docs.losers[keyringDocID] = []DocLeaf{{Rev: "9-other", Body: b}}
	sig, err := other.Sign("pkg", "1.0.0", "sha512-x")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := a.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(pub, "pkg", "1.0.0", "sha512-x", now.Add(time.Minute), sig); err != nil {
		t.Errorf("a version signed with the losing side's key does not verify: %v (keys %+v)", err, pub)
	}
	if len(docs.losers[keyringDocID]) != 0 || !slices.Equal(docs.deleted, []string{"9-other"}) {
		t.Errorf("the read did not write the merge: losers %v, deleted %v", docs.losers[keyringDocID], docs.deleted)
	}

	// A rotation answered with 202 whose key shows up: confirmed.
	now = now.Add(time.Hour)
	docs.quorum = []bool{false}
	k3, err := a.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate after a 202 that landed: %v", err)
	}
	pub, _ = a.PublicKeys(ctx)
	if len(pub) != 3 || pub[2].KeyID != k3.KeyID {
		t.Errorf("keys after the rotation: %+v", pub)
	}

	// One that never shows up fails, saying so.
	var before keyringDoc
	if _, err := docs.Get(ctx, keyringDocID, &before); err != nil {
		t.Fatal(err)
	}
	docs.quorum = []bool{false}
	docs.afterWrite = func() {
		_, err := docs.Put(ctx, keyringDocID, fmt.Sprint(docs.docs[keyringDocID].rev), before)
		must(err)
	}
	if _, err := a.Rotate(ctx); !IsKind(err, KindUnavailable) {
		t.Errorf("Rotate whose 202 never shows up: %v, want KindUnavailable", err)
	}
}
