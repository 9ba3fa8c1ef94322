package registry

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Unit tests of the command surface (update, unpublish, tags, search) on
// the in-memory store; the npm-driven scenarios are in
// integration/commands*_test.go.

// stubIndex is a PackageIndex over fixed search rows keyed by term.
type stubIndex struct{ rows map[string][]SearchRow }

func (x stubIndex) SearchTerm(_ context.Context, term string, prefix bool, _ int) ([]SearchRow, error) {
	var out []SearchRow
	for k, rs := range x.rows {
		if k == term || (prefix && strings.HasPrefix(k, term)) {
			out = append(out, rs...)
		}
	}
	return out, nil
}
func (stubIndex) StarredBy(context.Context, string) ([]string, error)    { return nil, nil }
func (stubIndex) MaintainedBy(context.Context, string) ([]string, error) { return nil, nil }

var (
	cmdAlice = Identity{Name: "alice", Email: "alice@example.com"}
	cmdBob   = Identity{Name: "bob", Email: "bob@example.com"}
)

// cmdService returns a service whose package "p" alice published at 1.0.0
// and 1.1.0, with users alice, bob and carol.
func cmdService(t *testing.T, p Policy) (*Service, *memStore) {
	t.Helper()
	return cmdServiceWith(t, Config{Policy: p})
}

// cmdServiceWith is cmdService built from cfg; its store and users are
// the ones cmdService sets up.
func cmdServiceWith(t *testing.T, cfg Config) (*Service, *memStore) {
	t.Helper()
	store := newMemStore()
	users := newFakeUsers()
	for _, u := range []string{"alice", "bob", "carol"} {
		users.add(u, "pw", u+"@example.com")
	}
	cfg.Store, cfg.Users = store, users
	s := newServiceFor(cfg)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := s.Publish(context.Background(), cmdAlice, "p", buildBody(t, "p", map[string]string{"latest": v}, pubVersion{version: v})); err != nil {
			t.Fatal(err)
		}
	}
	return s, store
}

// writeForm is the document npm reads with ?write=true, as an update body.
func writeForm(t *testing.T, s *memStore) *UpdateBody {
	t.Helper()
	raw, err := Render{BaseURL: "http://reg.example"}.Full(s.stored(t, "p"), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeUpdateBody(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setVersionField(t *testing.T, b *UpdateBody, v, key string, val any) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b.Versions[v], &m); err != nil {
		t.Fatal(err)
	}
	m[key] = val
	b.Versions[v] = mustJSON(m)
}

func TestUpdateDeprecate(t *testing.T) {
	ctx := context.Background()
	s, store := cmdService(t, Policy{})
	b := writeForm(t, store)
	setVersionField(t, b, "1.0.0", "deprecated", "old")
	wantKind(t, s.Update(ctx, cmdBob, "p", "", b), KindForbidden)
	if err := s.Update(ctx, cmdAlice, "p", "", b); err != nil {
		t.Fatal(err)
	}
	if got := jsonString(t, manifestOf(t, store.stored(t, "p"), "1.0.0")["deprecated"]); got != "old" {
		t.Fatalf("deprecated = %q", got)
	}
	b = writeForm(t, store)
	setVersionField(t, b, "1.0.0", "deprecated", "")
	if err := s.Update(ctx, cmdAlice, "p", "", b); err != nil {
		t.Fatal(err)
	}
	if _, ok := manifestOf(t, store.stored(t, "p"), "1.0.0")["deprecated"]; ok {
		t.Fatal(`deprecated "" did not remove the field`)
	}

	b = writeForm(t, store)
	setVersionField(t, b, "1.0.0", "deprecated", 42)
	wantKind(t, s.Update(ctx, cmdAlice, "p", "", b), KindInvalid)
	b = writeForm(t, store)
	setVersionField(t, b, "1.0.0", "main", "evil.js")
	wantKind(t, s.Update(ctx, cmdAlice, "p", "", b), KindForbidden)
	b = writeForm(t, store)
	b.Versions["2.0.0"] = b.Versions["1.1.0"]
	wantKind(t, s.Update(ctx, cmdAlice, "p", "", b), KindInvalid)
}

func TestUpdateStarsAreOwnOnly(t *testing.T) {
	ctx := context.Background()
	s, store := cmdService(t, Policy{})
	star := func(id Identity, users map[string]bool) error {
		return s.Update(ctx, id, "p", "", &UpdateBody{PublishBody: PublishBody{ID: "p"}, Users: users})
	}
	if err := star(cmdBob, map[string]bool{"bob": true}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, star(cmdAlice, map[string]bool{}), KindForbidden) // drops bob's star
	if err := star(cmdAlice, map[string]bool{"bob": true, "alice": true}); err != nil {
		t.Fatal(err)
	}
	if err := star(cmdBob, map[string]bool{"alice": true}); err != nil {
		t.Fatal(err)
	}
	if u := store.stored(t, "p").Users; !u["alice"] || u["bob"] {
		t.Fatalf("users = %v, want only alice", u)
	}
	wantKind(t, star(Identity{Name: "bob", ReadOnly: true}, map[string]bool{"alice": true, "bob": true}), KindForbidden)
}

func TestUpdateOwners(t *testing.T) {
	ctx := context.Background()
	s, store := cmdService(t, Policy{})
	owners := func(id Identity, rev string, names ...string) error {
		ms := []Person{}
		for _, n := range names {
			ms = append(ms, Person{Name: n})
		}
		return s.Update(ctx, id, "p", rev, &UpdateBody{PublishBody: PublishBody{ID: "p"}, Maintainers: ms})
	}
	rev := store.stored(t, "p").Rev
	wantKind(t, owners(cmdBob, rev, "alice", "bob"), KindForbidden)
	wantKind(t, owners(cmdAlice, rev, "alice", "nobody"), KindNotFound)
	wantKind(t, owners(cmdAlice, rev), KindForbidden)
	wantKind(t, owners(cmdAlice, "1-stale", "alice", "bob"), KindConflict)
	if err := owners(cmdAlice, rev, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	p := store.stored(t, "p")
	if len(p.Maintainers) != 2 || p.Maintainers[1] != (Person{Name: "bob", Email: "bob@example.com"}) {
		t.Fatalf("maintainers = %v", p.Maintainers)
	}
}

func TestUnpublishPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("window", func(t *testing.T) {
		s, store := cmdService(t, Policy{Unpublish: UnpublishPolicy{Mode: UnpublishWindow, Window: time.Hour}})
		s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		wantKind(t, s.Unpublish(ctx, cmdAlice, "p", store.stored(t, "p").Rev), KindForbidden)
		s.now = time.Now
		wantKind(t, s.Unpublish(ctx, cmdAlice, "p", "1-stale"), KindConflict)
		wantKind(t, s.Unpublish(ctx, cmdBob, "p", store.stored(t, "p").Rev), KindForbidden)
		if err := s.Unpublish(ctx, cmdAlice, "p", store.stored(t, "p").Rev); err != nil {
			t.Fatal(err)
		}
		p := store.stored(t, "p")
		if !p.IsTombstone() || p.Time["1.0.0"] == "" || len(p.Attachments) != 0 {
			t.Fatalf("tombstone: versions %d, time %v, attachments %d", len(p.Versions), p.Time, len(p.Attachments))
		}
		_, err := s.Packument(ctx, cmdAlice, "p")
		wantKind(t, err, KindNotFound)
		err = s.Publish(ctx, cmdAlice, "p", buildBody(t, "p", nil, pubVersion{version: "1.0.0"}))
		wantKind(t, err, KindForbidden)
	})
	t.Run("admins", func(t *testing.T) {
		s, store := cmdService(t, Policy{Unpublish: UnpublishPolicy{Mode: UnpublishAdmins}, Admins: []string{"carol"}})
		b := writeForm(t, store)
		delete(b.Versions, "1.1.0")
		b.DistTags = map[string]string{"latest": "1.0.0"}
		wantKind(t, s.Update(ctx, cmdAlice, "p", "", b), KindForbidden)
		if err := s.Update(ctx, Identity{Name: "carol"}, "p", "", b); err != nil {
			t.Fatal(err)
		}
		p := store.stored(t, "p")
		if _, ok := p.Versions["1.1.0"]; ok || p.DistTags["latest"] != "1.0.0" || p.Time["1.1.0"] == "" {
			t.Fatalf("after unpublishing 1.1.0: tags %v, time %v", p.DistTags, p.Time)
		}
		if _, ok := p.Attachments["p-1.1.0.tgz"]; ok {
			t.Fatal("the tarball of the unpublished version is still attached")
		}
		wantKind(t, s.DeleteTarball(ctx, Identity{Name: "carol"}, "p", "p-1.0.0.tgz"), KindForbidden)
		if err := s.DeleteTarball(ctx, Identity{Name: "carol"}, "p", "p-1.1.0.tgz"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDistTagRules(t *testing.T) {
	ctx := context.Background()
	s, store := cmdService(t, Policy{})
	wantKind(t, s.SetDistTag(ctx, cmdAlice, "p", "beta", "9.0.0"), KindInvalid)
	wantKind(t, s.SetDistTag(ctx, cmdAlice, "p", "1.0", "1.0.0"), KindInvalid)
	wantKind(t, s.SetDistTag(ctx, cmdBob, "p", "beta", "1.0.0"), KindForbidden)
	wantKind(t, s.SetDistTag(ctx, Identity{}, "p", "beta", "1.0.0"), KindUnauthorized)
	wantKind(t, s.DeleteDistTag(ctx, cmdAlice, "p", "latest"), KindForbidden)
	wantKind(t, s.DeleteDistTag(ctx, cmdAlice, "p", "nope"), KindNotFound)
	if err := s.SetDistTag(ctx, cmdAlice, "p", "beta", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.SetDistTags(ctx, cmdAlice, "p", map[string]string{"beta": "1.0.0"}, true), KindForbidden)
	if err := s.SetDistTags(ctx, cmdAlice, "p", map[string]string{"latest": "1.0.0"}, true); err != nil {
		t.Fatal(err)
	}
	if tags := store.stored(t, "p").DistTags; len(tags) != 1 || tags["latest"] != "1.0.0" {
		t.Fatalf("tags after replace = %v", tags)
	}
}

func TestSearchRanksAndHides(t *testing.T) {
	row := func(name string, restricted, deprecated bool, kw ...string) SearchRow {
		r := SearchRow{Name: name, Keywords: kw, Restricted: restricted, Deprecated: deprecated}
		if restricted {
			r.Maintainers = []Person{{Name: "alice"}}
		}
		return r
	}
	s := newServiceFor(Config{Index: stubIndex{rows: map[string][]SearchRow{
		"pad":      {row("padder", false, false, "pad"), row("left-pad", false, false, "pad"), row("@x/pad", true, false, "pad"), row("old", false, true, "pad")},
		"left-pad": {row("left-pad", false, false, "pad")},
		"left":     {row("left-pad", false, false, "pad"), row("lefty", false, false)},
	}}})
	names := func(id Identity, text string) string {
		hits, _, err := s.Search(context.Background(), id, SearchQuery{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, h.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(Identity{}, "pad"); got != "padder,left-pad,old" {
		t.Errorf("anonymous pad = %s", got)
	}
	if got := names(cmdAlice, "keywords:pad not:deprecated"); got != "@x/pad,left-pad,padder" {
		t.Errorf("alice keywords:pad not:deprecated = %s", got)
	}
	// A restricted package reaches its maintainer only, not every user.
	if got := names(cmdBob, "keywords:pad not:deprecated"); got != "left-pad,padder" {
		t.Errorf("bob keywords:pad not:deprecated = %s", got)
	}
	if got := names(cmdAlice, "left pad"); got != "left-pad" {
		t.Errorf("alice 'left pad' (both terms) = %s", got)
	}
	_, _, err := s.Search(context.Background(), cmdAlice, SearchQuery{Text: "  "})
	wantKind(t, err, KindInvalid)
}

func TestParseUnpublishPolicy(t *testing.T) {
	for in, want := range map[string]UnpublishPolicy{
		"": {Mode: UnpublishMaintainers}, "maintainers": {Mode: UnpublishMaintainers},
		"admins": {Mode: UnpublishAdmins}, "window:72h": {Mode: UnpublishWindow, Window: 72 * time.Hour},
	} {
		if got, err := ParseUnpublishPolicy(in); err != nil || got != want {
			t.Errorf("ParseUnpublishPolicy(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"window:", "window:-1h", "everyone"} {
		if _, err := ParseUnpublishPolicy(bad); err == nil {
			t.Errorf("ParseUnpublishPolicy(%q) accepted", bad)
		}
	}
}

func TestCreateToken(t *testing.T) {
	ctx := context.Background()
	a, users, _ := newTestAccounts(false)
	users.add("alice", "pw", "alice@example.com")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	_, _, err := a.CreateToken(ctx, cmdAlice, TokenRequest{Password: "wrong"}, netip.Addr{})
	wantKind(t, err, KindUnauthorized)
	_, _, err = a.CreateToken(ctx, Identity{Name: "alice", ReadOnly: true}, TokenRequest{Password: "pw"}, netip.Addr{})
	wantKind(t, err, KindForbidden)
	for _, bad := range []TokenRequest{
		{Password: "pw", CIDR: []string{"10.0.0.0/33"}},
		{Password: "pw", Expires: -1},
		{Password: "pw", Permission: "no-access"},
		{Password: "pw", Scopes: []string{"@acme"}},
	} {
		_, _, err = a.CreateToken(ctx, cmdAlice, bad, netip.Addr{})
		wantKind(t, err, KindInvalid)
	}
	tok, rec, err := a.CreateToken(ctx, cmdAlice, TokenRequest{Password: "pw", Permission: "read-only",
		CIDR: []string{"10.1.2.3/8", "192.168.0.7"}, Expires: 2, Name: "ci"}, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.ReadOnly || strings.Join(rec.CIDR, ",") != "10.0.0.0/8,192.168.0.7/32" || rec.Name != "ci" ||
		rec.Expires == nil || !rec.Expires.Equal(now.Add(48*time.Hour)) || rec.Key != TokenKey(tok) {
		t.Fatalf("token record = %+v", rec)
	}
	id, err := a.ByToken(ctx, tok, mustAddr(t, "10.9.9.9"))
	if err != nil || !id.ReadOnly || id.CanWrite() == nil {
		t.Fatalf("ByToken: %+v, %v; want a read-only identity", id, err)
	}
	_, err = a.ByToken(ctx, tok, mustAddr(t, "127.0.0.1"))
	wantKind(t, err, KindUnauthorized)
	a.now = func() time.Time { return now.Add(49 * time.Hour) }
	_, err = a.ByToken(ctx, tok, mustAddr(t, "10.9.9.9"))
	wantKind(t, err, KindUnauthorized)
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
