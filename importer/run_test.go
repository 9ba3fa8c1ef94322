package importer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
	users := []UserReport{{Name: "u1", Outcome: "copied"}, {Name: "u2", Outcome: "refused", Reason: "DES crypt is a weak hash kind"}}
	var out strings.Builder
	refused := Summary(&out, reps, users)
	want := "packages: 1 copied, 1 skipped (already here), 2 refused\n" +
		"versions: 3 copied, 1 skipped (already here), 1 refused\n" +
		"users: 1 copied, 0 skipped (already here), 1 refused\n" +
		"note b: dist-tag x stays on 1.0.0 here\n" +
		"refused c@1.0.0: dist.shasum differs\n" +
		"refused d: no maintainer\n" +
		"refused user u2: DES crypt is a weak hash kind\n"
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
