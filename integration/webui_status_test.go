//go:build integration

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The status page in Chromium, with a mirror following a fake upstream:
// mode, state, progress bar, lag, counts and recent errors; it updates by
// itself (a tarball fetched through the registry shows up as a cache miss
// and a cached tarball without a reload); the upstream's address and the
// error texts only for an admin. The home page shows the counts too.
func TestWebUIStatusInBrowser(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	for i := range 4 {
		up.publish(fmt.Sprintf("st-pkg-%d", i), "1.0.0", nil)
	}
	up.publish("st-bad", "1.0.0", nil)
	up.setFail("st-bad", 500)
	prefix := newPrefix()
	admin := "stroot-" + prefix
	reg := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", "--admins", admin)})
	eventually(t, 30*time.Second, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, reg)
		return st["state"] == "following" && num(st["packuments_written"]) >= 4 && num(st["failures"]) >= 1, fmt.Sprint(st)
	})
	br := newBrowser(t)
	if err := br.do(chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := get(br, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	if err := br.do(chromedp.Navigate(reg.URL+"/"), chromedp.WaitVisible(chromedp.ID("counts"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#counts"); !strings.Contains(got, "Mirrored packages") {
		t.Errorf("home counts: %q", got)
	}
	if err := br.do(chromedp.Click(chromedp.ID("status-link")), chromedp.WaitVisible(chromedp.ID("mirror-progress"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#mirror"); !strings.Contains(got, "follow") || !strings.Contains(got, "following") {
		t.Errorf("mirror facts: %q", got)
	}
	if v, err := get(br, chromedp.Evaluate[[]float64](`(p => [p.value, p.max])(document.getElementById("mirror-progress"))`)); err != nil || len(v) != 2 || v[1] < 5 || v[0] != v[1] {
		t.Errorf("progress bar of a caught-up mirror: %v (%v)", v, err)
	}
	if got := text("#failures"); !strings.Contains(got, "st-bad") {
		t.Errorf("recent errors do not name the failing package: %q", got)
	}
	body, _ := get(br, chromedp.Text(chromedp.CSS("body")))
	if strings.Contains(body, strings.TrimPrefix(up.URL(), "http://")) || !strings.Contains(body, "(shown to administrators)") {
		t.Errorf("the upstream's address is shown to an anonymous visitor:\n%s", body)
	}
	shootPage(t, br, "status")

	// Live: a tarball fetched through the mirror is a cache miss, then a
	// cached tarball, on the open page.
	misses, _ := strconv.Atoi(text(`[data-k="mirror.cache_misses"]`))
	if res := reg.do("GET", tarballPath("st-pkg-1", "1.0.0"), "", nil); res.Status != 200 {
		t.Fatalf("mirrored tarball: %s", res)
	}
	eventually(t, 30*time.Second, "the open page shows the miss and the cached tarball", func() (bool, string) {
		m, _ := strconv.Atoi(text(`[data-k="mirror.cache_misses"]`))
		cached, _ := strconv.Atoi(text(`[data-k="counts.cached_tarballs"]`))
		return m == misses+1 && cached >= 1, fmt.Sprintf("misses %d (was %d), cached %d", m, misses, cached)
	})

	// An admin sees the upstream and the error texts.
	owner := newNPMUser(t, reg, admin)
	const password = "Pw-ui-status-8a7b6c5d"
	owner.mustLogin(admin, password, admin+"@example.com")
	if err := br.do(chromedp.Navigate(reg.URL+"/-/web/login?next=/-/web/status"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("name"), admin), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("mirror-progress"))); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	if got := text("#mirror"); !strings.Contains(got, up.URL()) {
		t.Errorf("the admin does not see the upstream: %q", got)
	}
	if got := text("#failures"); !strings.Contains(got, "500") {
		t.Errorf("the admin does not see the error texts: %q", got)
	}
	if v := br.cspViolations(); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", v)
	}
}
