package registry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// namesMirror is a fakeMirror whose upstream knows the names in known, or
// cannot be asked at all when down is set.
type namesMirror struct {
	*fakeMirror
	known map[string]bool
	down  bool

	mu    sync.Mutex
	asked []string // names Known was asked about
}

func (m *namesMirror) Known(_ context.Context, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, name)
	if m.down {
		return false, E(KindUnavailable, "the upstream registry cannot be reached")
	}
	return m.known[name], nil
}

func newNamesMirror(known ...string) *namesMirror {
	m := &namesMirror{fakeMirror: &fakeMirror{private: "@corp/"}, known: map[string]bool{}}
	for _, n := range known {
		m.known[n] = true
	}
	return m
}

// claimsOf returns a claim book holding claims of name for owner.
func claimsOf(t *testing.T, pairs ...string) *Claims {
	t.Helper()
	c := NewClaims(newMemDocs())
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := c.Add(context.Background(), Claim{Name: pairs[i], Owner: pairs[i+1], By: "ops", Reason: "internal fork"}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// takeoverService is a service with users alice and bob over store, the
// mirror m and the claims book (both optional).
func takeoverService(store PackumentStore, m Mirror, claims ClaimBook) *Service {
	users := newFakeUsers()
	for _, u := range []string{"alice", "bob"} {
		users.add(u, "pw", u+"@example.com")
	}
	// alice owns the orgs of the scoped names the tests publish
	return newTestServiceWith(Config{Store: store, Users: users, Orgs: orgDocs("alice", "types", "corp"), Mirror: m, Claims: claims})
}

func TestTakeoverFirstPublish(t *testing.T) {
	ctx := context.Background()
	publish := func(s *Service, who Identity, name, v string) error {
		return s.Publish(ctx, who, name, buildBody(t, name, nil, pubVersion{version: v}))
	}
	tests := []struct {
		name    string
		mirror  *namesMirror // nil: mirror off
		claims  *Claims
		before  func(s *Service) // runs with the mirror off (existing data)
		pkg     string
		who     Identity
		kind    Kind     // -1: accepted
		reason  []string // parts of the refusal the client must see
		asked   []string // names the upstream was asked about
		claimed bool     // the stored package records the claim
	}{
		{name: "a name the upstream does not know is accepted", mirror: newNamesMirror("ms"),
			pkg: "my-internal-lib", who: cmdAlice, kind: -1, asked: []string{"my-internal-lib"}},
		{name: "a name the upstream knows is refused with what to do", mirror: newNamesMirror("ms"),
			pkg: "ms", who: cmdAlice, kind: KindForbidden, asked: []string{"ms"},
			reason: []string{"ms exists on the upstream registry", "shadow it for everyone", "@yourorg/ms", "couchnpm claim ms"}},
		{name: "a scoped name the upstream knows is refused", mirror: newNamesMirror("@types/node"),
			pkg: "@types/node", who: cmdAlice, kind: KindForbidden, asked: []string{"@types/node"},
			reason: []string{"a scope of your own"}},
		{name: "an upstream that cannot be asked refuses, never accepts", mirror: &namesMirror{fakeMirror: &fakeMirror{}, down: true},
			pkg: "is-odd", who: cmdAlice, kind: KindUnavailable, asked: []string{"is-odd"},
			reason: []string{"cannot check whether is-odd exists on the upstream registry", "couchnpm claim is-odd"}},
		{name: "an invalid new name is refused without asking the upstream", mirror: newNamesMirror("JSONStream"),
			pkg: "JSONStream", who: cmdAlice, kind: KindInvalid},
		{name: "a private scope needs no upstream check", mirror: &namesMirror{fakeMirror: &fakeMirror{private: "@corp/"}, down: true},
			pkg: "@corp/ms", who: cmdAlice, kind: -1},
		{name: "with the mirror off nothing is checked", pkg: "ms", who: cmdAlice, kind: -1},
		{name: "a claimed name is accepted from its owner without asking", mirror: newNamesMirror("ms"), claims: claimsOf(t, "ms", "alice"),
			pkg: "ms", who: cmdAlice, kind: -1, claimed: true},
		{name: "a claim also works with the upstream down", mirror: &namesMirror{fakeMirror: &fakeMirror{}, down: true}, claims: claimsOf(t, "ms", "alice"),
			pkg: "ms", who: cmdAlice, kind: -1, claimed: true},
		{name: "a claimed name is refused to anyone but its owner", mirror: newNamesMirror("ms"), claims: claimsOf(t, "ms", "bob"),
			pkg: "ms", who: cmdAlice, kind: KindForbidden, reason: []string{"claimed by an operator", "bob"}},
		{name: "a package published before keeps taking versions (it shadows the upstream)", mirror: newNamesMirror("ms"),
			before: func(s *Service) {
				if err := publish(s, cmdAlice, "ms", "0.0.1"); err != nil {
					t.Fatal(err)
				}
			},
			pkg: "ms", who: cmdAlice, kind: -1},
		{name: "a private tombstone stays its maintainers' without asking", mirror: newNamesMirror("gone-lib"),
			before: func(s *Service) {
				if err := publish(s, cmdAlice, "gone-lib", "1.0.0"); err != nil {
					t.Fatal(err)
				}
				p, _ := s.store.GetPackument(ctx, "gone-lib")
				if err := s.Unpublish(ctx, cmdAlice, "gone-lib", p.Rev); err != nil {
					t.Fatal(err)
				}
			},
			pkg: "gone-lib", who: cmdAlice, kind: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			if tc.before != nil {
				tc.before(takeoverService(store, nil, nil))
			}
			var m Mirror // a nil *namesMirror would not be a nil Mirror
			if tc.mirror != nil {
				m = tc.mirror
			}
			var claims ClaimBook
			if tc.claims != nil {
				claims = tc.claims
			}
			s := takeoverService(store, m, claims)
			err := publish(s, tc.who, tc.pkg, "99.0.0")
			if tc.kind == -1 {
				if err != nil {
					t.Fatalf("publish refused: %v", err)
				}
			} else {
				wantKind(t, err, tc.kind)
				if _, gerr := store.GetPackument(ctx, tc.pkg); tc.before == nil && !IsKind(gerr, KindNotFound) {
					t.Errorf("a refused first publish stored something (%v)", gerr)
				}
			}
			for _, part := range tc.reason {
				if !strings.Contains(ReasonOf(err), part) {
					t.Errorf("reason %q does not say %q", ReasonOf(err), part)
				}
			}
			var asked []string
			if tc.mirror != nil {
				asked = tc.mirror.asked
			}
			if strings.Join(asked, ",") != strings.Join(tc.asked, ",") {
				t.Errorf("upstream asked about %v, want %v", asked, tc.asked)
			}
			if err == nil {
				p, _ := store.GetPackument(ctx, tc.pkg)
				if got := ClaimOf(p) != nil; got != tc.claimed {
					t.Errorf("claim recorded on the package: %v, want %v", got, tc.claimed)
				}
			}
		})
	}
}

// After an unpublish, a claimed fork's name resolves upstream again; a
// genuinely private name never does.
func TestTakeoverUnpublishFallsBack(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	m := newNamesMirror("ms", "left-pad", "priv-lib")
	claims := claimsOf(t, "ms", "alice")
	s := takeoverService(store, m, claims)
	unpublish := func(name string) {
		t.Helper()
		p, err := store.GetPackument(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Unpublish(ctx, cmdAlice, name, p.Rev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Publish(ctx, cmdAlice, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.0.0"})); err != nil {
		t.Fatal(err)
	}
	// The fork shadows the upstream while published.
	p, err := s.Packument(ctx, Identity{}, "ms")
	if err != nil || p.Fields["x-from"] != nil {
		t.Fatalf("published fork: %v, from the mirror: %v", err, p != nil && p.Fields["x-from"] != nil)
	}
	body, err := Render{BaseURL: "http://reg.example"}.Full(p, true)
	if err != nil || strings.Contains(string(body), fieldClaim) || strings.Contains(string(body), "internal fork") {
		t.Fatalf("the claim record reaches clients: %v %s", err, body)
	}
	if _, err := s.Tarball(ctx, Identity{}, "ms", "ms-2.1.3.tgz", true); !IsKind(err, KindNotFound) || len(m.tarballs) != 0 {
		t.Fatalf("tarball of an upstream version while the fork is published: %v (upstream saw %v)", err, m.tarballs)
	}

	unpublish("ms")
	p, err = s.Packument(ctx, Identity{}, "ms")
	if err != nil || string(p.Fields["x-from"]) != `"upstream"` {
		t.Fatalf("unpublished fork: %v; want the upstream's document", err)
	}
	if _, err := s.Tarball(ctx, Identity{}, "ms", "ms-2.1.3.tgz", false); err != nil || strings.Join(m.tarballs, ",") != "ms@2.1.3" {
		t.Fatalf("tarball of an unpublished fork: %v (upstream saw %v)", err, m.tarballs)
	}

	// Unclaimed, the name is the upstream's: publishing it again is
	// refused like any first publish.
	if err := claims.Remove(ctx, "ms"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Publish(ctx, cmdAlice, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.1.0"})), KindForbidden)
	if p, err := s.Packument(ctx, Identity{}, "ms"); err != nil || p.Fields["x-from"] == nil {
		t.Fatalf("after unclaim the tombstone (claimed at publish) must still resolve upstream: %v", err)
	}
	// Claimed again for bob, bob publishes the fork anew and answers for it.
	if _, err := claims.Add(ctx, Claim{Name: "ms", Owner: "bob", By: "ops", Reason: "new maintainer"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, cmdBob, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.1.0"})); err != nil {
		t.Fatalf("republish under a new claim: %v", err)
	}
	if p, _ := store.GetPackument(ctx, "ms"); !p.HasMaintainer("bob") || p.HasMaintainer("alice") || ClaimOf(p).Owner != "bob" {
		t.Fatalf("maintainers %v, claim %+v; want bob under bob's claim", p.Maintainers, ClaimOf(p))
	}

	// A genuinely private name (unknown upstream when published) stays
	// private after unpublish, even once the upstream knows it.
	if err := s.Publish(ctx, cmdAlice, "my-private", buildBody(t, "my-private", nil, pubVersion{version: "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	unpublish("my-private")
	m.known["my-private"] = true
	m.fakeMirror.asked, m.fakeMirror.tarballs = nil, nil
	if _, err := s.Packument(ctx, Identity{}, "my-private"); !IsKind(err, KindNotFound) {
		t.Fatalf("unpublished private name: %v, want not found", err)
	}
	if _, err := s.Tarball(ctx, Identity{}, "my-private", "my-private-2.0.0.tgz", false); !IsKind(err, KindNotFound) {
		t.Fatalf("tarball of an unpublished private name: %v, want not found", err)
	}
	if len(m.fakeMirror.asked)+len(m.fakeMirror.tarballs) != 0 {
		t.Fatalf("an unpublished private name reached the upstream: %v %v", m.fakeMirror.asked, m.fakeMirror.tarballs)
	}
	// Its maintainer may publish it again (no upstream check: it is theirs).
	if err := s.Publish(ctx, cmdAlice, "my-private", buildBody(t, "my-private", nil, pubVersion{version: "1.1.0"})); err != nil {
		t.Fatalf("republish of a private name: %v", err)
	}
}

// A name taken over before the guard existed (published without a claim,
// then unpublished: a tombstone that blocks the upstream) is handed back by
// claiming it.
func TestTakeoverClaimReleasesOldTombstone(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	old := takeoverService(store, nil, nil) // the mirror was not checked back then
	if err := old.Publish(ctx, cmdBob, "is-odd", buildBody(t, "is-odd", nil, pubVersion{version: "99.0.0"})); err != nil {
		t.Fatal(err)
	}
	p, _ := store.GetPackument(ctx, "is-odd")
	if err := old.Unpublish(ctx, cmdBob, "is-odd", p.Rev); err != nil {
		t.Fatal(err)
	}
	claims := NewClaims(newMemDocs())
	s := takeoverService(store, newNamesMirror("is-odd"), claims)
	if _, err := s.Packument(ctx, Identity{}, "is-odd"); !IsKind(err, KindNotFound) {
		t.Fatalf("old tombstone: %v, want not found until claimed", err)
	}
	if _, err := claims.Add(ctx, Claim{Name: "is-odd", Owner: "alice", By: "ops", Reason: "hand back to upstream"}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Packument(ctx, Identity{}, "is-odd"); err != nil || p.Fields["x-from"] == nil {
		t.Fatalf("claimed old tombstone: %v; want the upstream's document", err)
	}
	// The old maintainer cannot take it again; the claim's owner can.
	wantKind(t, s.Publish(ctx, cmdBob, "is-odd", buildBody(t, "is-odd", nil, pubVersion{version: "99.1.0"})), KindForbidden)
}

// A claim store that fails makes the guard fail closed.
func TestTakeoverClaimStoreDown(t *testing.T) {
	s := takeoverService(newMemStore(), newNamesMirror(), failingClaims{})
	err := s.Publish(context.Background(), cmdAlice, "fresh", buildBody(t, "fresh", nil, pubVersion{version: "1.0.0"}))
	wantKind(t, err, KindUnavailable)
}

type failingClaims struct{}

func (failingClaims) Lookup(context.Context, string) (*Claim, error) {
	return nil, Wrap(KindUnavailable, errors.New("connection refused"), "CouchDB is unavailable")
}

func TestClaimsBook(t *testing.T) {
	ctx := context.Background()
	docs := newMemDocs()
	c := NewClaims(docs)
	for _, tc := range []struct {
		name string
		in   Claim
		kind Kind
	}{
		{"no reason", Claim{Name: "ms", Owner: "alice", By: "ops"}, KindInvalid},
		{"blank reason", Claim{Name: "ms", Owner: "alice", By: "ops", Reason: "  "}, KindInvalid},
		{"no operator", Claim{Name: "ms", Owner: "alice", Reason: "fork"}, KindInvalid},
		{"no owner", Claim{Name: "ms", By: "ops", Reason: "fork"}, KindInvalid},
		{"bad owner", Claim{Name: "ms", Owner: "Alice!", By: "ops", Reason: "fork"}, KindInvalid},
		{"bad name", Claim{Name: "../x", Owner: "alice", By: "ops", Reason: "fork"}, KindInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Add(ctx, tc.in)
			wantKind(t, err, tc.kind)
		})
	}
	if docs.count() != 0 {
		t.Fatalf("invalid claims were stored")
	}
	if replaced, err := c.Add(ctx, Claim{Name: "ms", Owner: "alice", By: "ops", Reason: "fork"}); err != nil || replaced {
		t.Fatalf("add: %v, replaced %v", err, replaced)
	}
	if replaced, err := c.Add(ctx, Claim{Name: "ms", Owner: "bob", By: "ops", Reason: "new owner"}); err != nil || !replaced {
		t.Fatalf("re-add: %v, replaced %v", err, replaced)
	}
	if _, err := c.Add(ctx, Claim{Name: "@acme/ms", Owner: "alice", By: "ops", Reason: "fork"}); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, docs)
	if err != nil || len(list) != 2 || list[0].Name != "@acme/ms" || list[1].Owner != "bob" || list[1].At.IsZero() {
		t.Fatalf("list: %v %+v", err, list)
	}
	if cl, err := c.Lookup(ctx, "ms"); err != nil || cl == nil || cl.Reason != "new owner" {
		t.Fatalf("lookup: %v %+v", err, cl)
	}
	if cl, err := c.Lookup(ctx, "other"); err != nil || cl != nil {
		t.Fatalf("lookup of an unclaimed name: %v %+v", err, cl)
	}
	if err := c.Remove(ctx, "ms"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, c.Remove(ctx, "ms"), KindNotFound)
}

// A live package taken over before the guard existed is handed back for
// good: claim the name, unpublish the package, withdraw the claim.
func TestTakeoverRepairLiveTakeover(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	if err := takeoverService(store, nil, nil).Publish(ctx, cmdBob, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.0.0"})); err != nil {
		t.Fatal(err)
	}
	claims := NewClaims(newMemDocs())
	s := takeoverService(store, newNamesMirror("ms"), claims)
	if p, err := s.Packument(ctx, Identity{}, "ms"); err != nil || p.Fields["x-from"] != nil {
		t.Fatalf("the existing package must keep shadowing: %v", err)
	}
	if _, err := claims.Add(ctx, Claim{Name: "ms", Owner: "alice", By: "ops", Reason: "hand back to upstream"}); err != nil {
		t.Fatal(err)
	}
	p, _ := store.GetPackument(ctx, "ms")
	if err := s.Unpublish(ctx, cmdBob, "ms", p.Rev); err != nil {
		t.Fatal(err)
	}
	if err := claims.Remove(ctx, "ms"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Packument(ctx, Identity{}, "ms"); err != nil || p.Fields["x-from"] == nil {
		t.Fatalf("after claim, unpublish and unclaim: %v; want the upstream's document", err)
	}
	wantKind(t, s.Publish(ctx, cmdBob, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.1.0"})), KindForbidden)
}

// npm's read-modify-write commands (deprecate, here) send back the write
// form, which leaves the claim record out; the stored record stays.
func TestTakeoverClaimSurvivesUpdates(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	s := takeoverService(store, newNamesMirror("ms"), claimsOf(t, "ms", "alice"))
	if err := s.Publish(ctx, cmdAlice, "ms", buildBody(t, "ms", nil, pubVersion{version: "99.0.0"})); err != nil {
		t.Fatal(err)
	}
	p := store.stored(t, "ms")
	raw, err := Render{BaseURL: "http://reg.example"}.Full(p, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeUpdateBody(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	setVersionField(t, b, "99.0.0", "deprecated", "use upstream")
	if err := s.Update(ctx, cmdAlice, "ms", p.Rev, b); err != nil {
		t.Fatal(err)
	}
	if ClaimOf(store.stored(t, "ms")) == nil {
		t.Fatal("a deprecate dropped the claim record")
	}
}

// Shadows tells the follower which names to leave alone.
func TestTakeoverShadows(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	s := takeoverService(store, newNamesMirror("fork"), claimsOf(t, "fork", "alice"))
	for _, name := range []string{"live", "gone", "fork"} {
		if err := s.Publish(ctx, cmdAlice, name, buildBody(t, name, nil, pubVersion{version: "1.0.0"})); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"gone", "fork"} {
		if err := s.Unpublish(ctx, cmdAlice, name, store.stored(t, name).Rev); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"live": true, "gone": true, "fork": false, "absent": false} {
		if got, err := s.Shadows(ctx, name); err != nil || got != want {
			t.Errorf("Shadows(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}
