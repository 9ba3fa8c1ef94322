package handlers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/downloads"
	"github.com/couchnpm/couchnpm/registry"
)

// fakeDownloads counts in a map: name → version → n (all on one day).
type fakeDownloads struct {
	counts map[string]map[string]int64
}

func (f *fakeDownloads) Count(name, version string) {
	if f.counts[name] == nil {
		f.counts[name] = map[string]int64{}
	}
	f.counts[name][version]++
}

func (f *fakeDownloads) Days(_ context.Context, name string, from, to time.Time) ([]downloads.DayCount, error) {
	var out []downloads.DayCount
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		var n int64
		if d.Equal(to) {
			for _, c := range f.counts[name] {
				n += c
			}
		}
		out = append(out, downloads.DayCount{Day: d.Format(time.DateOnly), Downloads: n})
	}
	return out, nil
}

func (f *fakeDownloads) Versions(_ context.Context, name string, _, _ time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	for v, n := range f.counts[name] {
		out[v] = n
	}
	return out, nil
}

func TestDownloadCounts(t *testing.T) {
	e := newEnv(t, zerolog.Disabled)
	dl := &fakeDownloads{counts: map[string]map[string]int64{}}
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Downloads: dl}, fakeServices(t, accessRegistry{e.reg}, e.accounts, e.pinger), zerolog.Nop())
	secret := *e.reg.packs["@s/p"]
	secret.Fields = map[string]json.RawMessage{"access": json.RawMessage(`"restricted"`)}
	e.reg.packs["@s/p"] = &secret

	wantStatus(t, e.do(t, "GET", "/foo/-/foo-1.0.0.tgz", nil), 200)
	wantStatus(t, e.do(t, "GET", "/foo/-/foo-1.0.0.tgz", nil), 200)
	wantStatus(t, e.do(t, "HEAD", "/foo/-/foo-1.0.0.tgz", nil), 200) // a HEAD is no download
	wantStatus(t, e.do(t, "GET", "/foo/-/foo-9.9.9.tgz", nil), 404)  // nor is a miss
	if got := dl.counts["foo"]; len(got) != 1 || got["1.0.0"] != 2 {
		t.Fatalf("counted %v, want foo@1.0.0 twice", dl.counts)
	}

	rec := e.do(t, "GET", "/-/downloads/point/last-week/foo", nil)
	wantStatus(t, rec, 200)
	body := decodeJSON(t, rec)
	if body["downloads"] != float64(2) || body["package"] != "foo" || body["start"] == nil || body["end"] == nil {
		t.Errorf("point: %v", body)
	}
	rec = e.do(t, "GET", "/-/downloads/range/2026-01-01:2026-01-03/foo", nil)
	wantStatus(t, rec, 200)
	var rng struct {
		Downloads  []downloads.DayCount `json:"downloads"`
		Start, End string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &rng); err != nil || len(rng.Downloads) != 3 || rng.Start != "2026-01-01" || rng.End != "2026-01-03" {
		t.Errorf("range: %v %s", err, rec.Body)
	}
	rec = e.do(t, "GET", "/-/downloads/versions/foo/last-week", nil)
	wantStatus(t, rec, 200)
	if v := decodeJSON(t, rec)["downloads"].(map[string]any); v["1.0.0"] != float64(2) {
		t.Errorf("versions: %s", rec.Body)
	}
	wantStatus(t, e.do(t, "GET", "/-/downloads/point/yesterday/foo", nil), 400)
	wantStatus(t, e.do(t, "GET", "/-/downloads/point/last-day/nope", nil), 404)

	// A restricted package's counts are as invisible as the package.
	for _, p := range []string{"/-/downloads/point/last-day/@s%2fp", "/-/downloads/range/last-month/@s/p", "/-/downloads/versions/@s%2fp/last-week"} {
		wantStatus(t, e.do(t, "GET", p, nil), 404)
		wantStatus(t, e.do(t, "GET", p, nil, "Authorization: Bearer cnpm_alice"), 200)
	}
}

// accessRegistry applies the registry's read rule to the fake: restricted
// packages are not found for anonymous callers.
type accessRegistry struct{ *fakeRegistry }

func (a accessRegistry) Packument(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error) {
	p, err := a.fakeRegistry.Packument(ctx, user, name)
	if err == nil && user.Anonymous() && registry.AccessOf(p) == registry.AccessRestricted {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	return p, err
}
