package importer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// memSource is a Source of packuments built in the test.
type memSource struct {
	pkgs     map[string]*Packument
	tarballs map[string][]byte // name@version → bytes
}

func (s *memSource) Names(context.Context) ([]string, error) {
	var out []string
	for n := range s.pkgs {
		out = append(out, n)
	}
	return out, nil
}

func (s *memSource) Packument(_ context.Context, name string) (*Packument, error) {
	return s.pkgs[name], nil
}

func (s *memSource) Tarball(_ context.Context, p *Packument, v string) ([]byte, error) {
	return s.tarballs[p.Name+"@"+v], nil
}

func TestImporterBatchesLargePackages(t *testing.T) {
	old := batchBytes
	batchBytes = 100 // every second version starts a new write
	defer func() { batchBytes = old }()
	ctx := context.Background()
	src := &memSource{pkgs: map[string]*Packument{}, tarballs: map[string][]byte{}}
	p := &Packument{Name: "big", Versions: map[string]json.RawMessage{}, Readme: "# big",
		DistTags: map[string]string{"latest": "1.4.0", "old": "1.0.0", "next": "2.0.0-rc.1"}}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0-rc.1"} {
		data := []byte(strings.Repeat("x", 60) + v)
		src.tarballs["big@"+v] = data
		p.Versions[v], _ = json.Marshal(versionDoc("big", v, "http://src/big/-/big-"+v+".tgz", data))
	}
	src.pkgs["big"] = p
	store := registrytest.NewMemStore()
	im := &Importer{Source: src, Target: registrytest.NewService(t, registry.Config{Store: store}), Accounts: someUsers{"carol": true},
		Operator: registry.Identity{Name: "ops"}, Owner: "carol", Access: registry.AccessRestricted}
	reps, err := im.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || len(reps[0].Copied) != 6 || len(reps[0].Refused) != 0 {
		t.Fatalf("reports %+v", reps)
	}
	// The store's revision counts the document's writes.
	doc, _ := store.GetPackument(ctx, "big")
	if doc.Rev != "3-r" {
		t.Errorf("revision %s, want 3-r: 3 batches of two versions", doc.Rev)
	}
	if doc.DistTags["latest"] != "1.4.0" || doc.DistTags["old"] != "1.0.0" || doc.DistTags["next"] != "2.0.0-rc.1" {
		t.Errorf("dist-tags %v", doc.DistTags)
	}
	if registry.AccessOf(doc) != registry.AccessRestricted || string(doc.Fields["readme"]) != `"# big"` || doc.Maintainers[0].Name != "carol" {
		t.Errorf("access %s, readme %s, maintainers %v", registry.AccessOf(doc), doc.Fields["readme"], doc.Maintainers)
	}
	// Again: nothing written, everything skipped.
	reps, _ = im.Run(ctx)
	doc, _ = store.GetPackument(ctx, "big")
	if doc.Rev != "3-r" || len(reps[0].Skipped) != 6 || reps[0].Outcome() != "skipped" {
		t.Errorf("rerun: revision %s, report %+v", doc.Rev, reps[0])
	}
}

func TestSummaryAndBar(t *testing.T) {
	reps := []PackageReport{
		{Name: "a", Copied: []string{"1.0.0", "1.1.0"}, Refused: map[string]string{}},
		{Name: "b", Skipped: []string{"1.0.0"}, Refused: map[string]string{}, Notes: []string{"dist-tag x stays on 1.0.0 here"}},
		{Name: "c", Copied: []string{"2.0.0"}, Refused: map[string]string{"1.0.0": "dist.shasum differs"}},
		{Name: "d", Refused: map[string]string{"": "no maintainer"}},
	}
	users := []UserReport{{Name: "u1", Outcome: "copied", Kind: "bcrypt"}, {Name: "u2", Outcome: "refused", Reason: "DES crypt is a weak hash kind"},
		{Name: "u3", Outcome: "copied", Kind: "DES crypt", Expires: time.Date(2027, 3, 2, 7, 0, 0, 0, time.UTC)},
		{Name: "u4", Outcome: "renewed", Kind: "MD5 (apr1)", Expires: time.Date(2027, 3, 2, 7, 0, 0, 0, time.UTC)}}
	var out strings.Builder
	refused := Summary(&out, reps, users)
	want := "packages: 1 copied, 1 skipped (already here), 2 refused\n" +
		"versions: 3 copied, 1 skipped (already here), 1 refused\n" +
		"users: 2 copied, 0 skipped (already here), 1 refused, 1 renewed (imported hash set anew: never logged in here)\n" +
		"note b: dist-tag x stays on 1.0.0 here\n" +
		"refused c@1.0.0: dist.shasum differs\n" +
		"refused d: no maintainer\n" +
		"user u1: bcrypt hash imported; CouchDB's PBKDF2 replaces it at the first login\n" +
		"refused user u2: DES crypt is a weak hash kind\n" +
		"user u3: DES crypt hash imported; CouchDB's PBKDF2 replaces it at the first login; a weak kind: it logs in until 2027-03-02T07:00:00Z only\n" +
		"user u4: MD5 (apr1) hash imported anew; CouchDB's PBKDF2 replaces it at the first login; a weak kind: it logs in until 2027-03-02T07:00:00Z only\n"
	if out.String() != want || refused != 3 {
		t.Errorf("summary (refused %d):\n%s\nwant:\n%s", refused, out.String(), want)
	}
	var bar strings.Builder
	b := &Bar{W: &bar}
	b.Start(len(reps))
	for _, r := range reps {
		b.Done(r)
	}
	last := bar.String()[strings.LastIndex(bar.String(), "\r"):]
	if !strings.Contains(last, "4/4  copied 1, skipped 1, refused 2  d") || !strings.HasSuffix(last, "\n") {
		t.Errorf("bar's last frame %q", last)
	}
}

// userSink records ImportUser calls; taken names conflict, and those
// still pending (an imported hash never used) are renewed.
type userSink struct {
	taken   map[string]bool
	pending map[string]bool
	expires map[string]time.Time
}

func (u *userSink) RenewImportedUser(_ context.Context, name, _ string, expires time.Time) (bool, error) {
	if !u.pending[name] {
		return false, nil
	}
	u.expires[name] = expires
	return true, nil
}

func (u *userSink) ImportUser(_ context.Context, name, _ string, expires time.Time) error {
	if u.taken[name] {
		return registry.E(registry.KindConflict, "taken")
	}
	u.expires[name] = expires
	return nil
}

func TestImportUsersPolicy(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	strong, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	entries := []HtpasswdEntry{
		{Name: "des", Hash: "+ayBhdASYkssU"},
		{Name: "apr", Hash: "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"},
		{Name: "sha", Hash: "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc="},
		{Name: "strong", Hash: string(strong)},
		{Name: "plain", Hash: "{PLAIN}secret"},
		{Name: "taken", Hash: "abNANd1rDfiNc"},
		{Name: "pending", Hash: "abNANd1rDfiNc"},
	}
	tests := []struct {
		name       string
		refuseWeak bool
		want       map[string]string // name: outcome kind
	}{
		{name: "weak kinds imported by default", want: map[string]string{
			"des": "copied DES crypt", "apr": "copied MD5 (apr1)", "sha": "copied SHA-1 ({SHA})",
			"strong": "copied bcrypt", "plain": "refused ", "taken": "skipped DES crypt", "pending": "renewed DES crypt"}},
		{name: "--refuse-weak-hashes", refuseWeak: true, want: map[string]string{
			"des": "refused DES crypt", "apr": "refused MD5 (apr1)", "sha": "refused SHA-1 ({SHA})",
			"strong": "copied bcrypt", "plain": "refused ", "taken": "refused DES crypt", "pending": "refused DES crypt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &userSink{taken: map[string]bool{"taken": true, "pending": true}, pending: map[string]bool{"pending": true}, expires: map[string]time.Time{}}
			reps := ImportUsers(context.Background(), entries, sink, UserPolicy{RefuseWeak: tc.refuseWeak, MaxAge: 90 * 24 * time.Hour, Now: now})
			for _, r := range reps {
				if got := r.Outcome + " " + r.Kind; got != tc.want[r.Name] {
					t.Errorf("%s: %q, want %q (%s)", r.Name, got, tc.want[r.Name], r.Reason)
				}
				exp, imported := sink.expires[r.Name]
				if imported != (r.Outcome == "copied" || r.Outcome == "renewed") {
					t.Errorf("%s: imported %v, outcome %s", r.Name, imported, r.Outcome)
				}
				wantExp := time.Time{}
				if imported && r.Kind != "bcrypt" {
					wantExp = now.Add(90 * 24 * time.Hour)
				}
				if !exp.Equal(wantExp) || !r.Expires.Equal(wantExp) {
					t.Errorf("%s: expires %v (report %v), want %v", r.Name, exp, r.Expires, wantExp)
				}
			}
			if r := reps[4]; !strings.Contains(r.Reason, "plain-text passwords are never imported") || strings.Contains(r.Reason, "secret") {
				t.Errorf("plain text: %q", r.Reason)
			}
		})
	}
}
