//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The web UI in headless Chromium: search from the home page, open a
// package page, copy its install command with the copy button, log in
// through the page's link and see a restricted package appear; a hostile
// README runs nothing and no page trips its Content-Security-Policy.
// axe-core checks each page for serious or critical accessibility
// violations. With COUCHNPM_UI_SCREENSHOTS=<folder> it also writes light and dark
// PNG screenshots of each page there (docs/ui/ holds the committed ones).
func TestWebUIInBrowser(t *testing.T) {
	t.Parallel()
	br := newBrowser(t)
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "uialice")
	const password = "Pw-ui-alice-9e8d7c6b"
	alice.mustLogin("uialice", password, "uialice@example.com")

	widget := writePackageWith(t, "ui-widget", "2.1.0", map[string]any{"keywords": []string{"ui", "widgets"},
		"description": "Widgets for the web UI test", "repository": "https://git.example.com/ui/widget",
		"dependencies": map[string]string{"ui-helper": "^1.0.0"}})
	readme := "# ui-widget\n\nA widget.\n\n| option | default |\n|---|---|\n| size | 3 |\n\n" +
		"```js\nrequire('ui-widget')\n```\n\n" +
		"<script>window.pwned='script'</script>\n\n<img src=x onerror=\"window.pwned='onerror'\">\n\n" +
		"<svg onload=\"window.pwned='svg'\"></svg>\n\n[link](javascript:window.pwned='link')\n\n" +
		"<a href=\"#\" onclick=\"window.pwned='click'\" id=\"clickme\">click</a>\n\n" +
		"<div style=\"position:fixed;inset:0;background:red\">overlay</div>\n"
	if err := os.WriteFile(filepath.Join(widget, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.mustRunIn(writePackageWith(t, "ui-helper", "1.0.0", map[string]any{"description": "helps"}), "publish")
	alice.mustRunIn(widget, "publish")
	alice.mustRunIn("", "dist-tag", "add", "ui-widget@2.1.0", "stable")
	alice.mustOwnOrg("acme", "uialice") // a scope belongs to an org or a user
	secret := writePackageWith(t, "@acme/ui-secret", "1.0.0", map[string]any{"description": "restricted widget"})
	if err := os.WriteFile(filepath.Join(secret, "README.md"), []byte("# secret\n\nTOP-SECRET-UI\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.mustRunIn(secret, "publish", "--access", "restricted")

	shoot := func(name string) {
		t.Helper()
		shootPage(t, br, name)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := get(br, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if err := br.do(chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// Home → search → package page.
	if err := br.do(chromedp.Navigate(reg.URL+"/"), chromedp.WaitVisible(chromedp.ID("hq"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#recent"); !strings.Contains(got, "ui-widget") || strings.Contains(got, "ui-secret") {
		t.Errorf("home's recent list for an anonymous visitor: %q", got)
	}
	shoot("home")
	if err := br.do(chromedp.SendKeys(chromedp.ID("hq"), "widget"), chromedp.Submit(chromedp.ID("hq")), chromedp.WaitVisible(chromedp.ID("results"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#results"); !strings.Contains(got, "ui-widget") || strings.Contains(got, "ui-secret") {
		t.Errorf("search results for an anonymous visitor: %q", got)
	}
	shoot("search")
	if err := br.do(chromedp.Click(chromedp.CSS(`#results a[href="/ui-widget"]`)), chromedp.WaitVisible(chromedp.ID("pkg-name"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#pkg-name"); got != "ui-widget" {
		t.Fatalf("package page title %q", got)
	}
	if got := text("#readme table"); !strings.Contains(got, "size") {
		t.Errorf("README table not rendered: %q", got)
	}
	// Nothing from the README ran, even when clicked.
	_ = br.do(chromedp.Click(chromedp.CSS("#readme a"), chromedp.NodeVisible))
	if pwned, err := get(br, chromedp.Evaluate[string](`String(window.pwned)`)); err != nil || pwned != "undefined" {
		t.Errorf("a README payload ran: window.pwned = %q (%v)", pwned, err)
	}
	if n, _ := get(br, chromedp.Evaluate[int](`document.querySelectorAll("#readme [style], #readme svg, #readme script").length`)); n != 0 {
		t.Errorf("%d styled, svg or script elements survived in the README", n)
	}
	// The XSS corpus, published as a README, loaded and clicked through.
	xss := writePackageWith(t, "ui-xss", "1.0.0", nil)
	if err := os.WriteFile(filepath.Join(xss, "README.md"), []byte(strings.Join(xssPayloads, "\n\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.mustRunIn(xss, "publish")
	if err := br.do(chromedp.Navigate(reg.URL+"/ui-xss"), chromedp.WaitVisible(chromedp.ID("readme"))); err != nil {
		t.Fatal(err)
	}
	clicked, err := get(br, chromedp.Evaluate[int](`(() => { let n = 0; for (const el of document.querySelectorAll("#readme *")) { el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true})); el.dispatchEvent(new FocusEvent("focus")); const href = el.getAttribute("href") || ""; if (typeof el.click === "function" && !href.startsWith("http")) { el.click(); n++ } } return n })()`))
	if err != nil {
		t.Fatal(err)
	}
	if pwned, err := get(br, chromedp.Evaluate[string](`String(window.pwned) + " " + document.title`)); err != nil || !strings.HasPrefix(pwned, "undefined ") || strings.Contains(pwned, "PWNED") {
		t.Errorf("an XSS payload ran (%d elements clicked): %q (%v)", clicked, pwned, err)
	}
	if err := br.do(chromedp.Navigate(reg.URL+"/ui-widget"), chromedp.WaitVisible(chromedp.ID("pkg-name"))); err != nil {
		t.Fatal(err)
	}
	shoot("package")
	// At a phone's width the page folds to one column: nothing sticks out.
	if err := br.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	if wide, err := get(br, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || wide {
		t.Errorf("the package page scrolls sideways at 390 px (%v)", err)
	}
	shoot("package-phone")
	if err := br.do(chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// The copy button puts the install command on the clipboard.
	origin := reg.URL
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		err := br.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
				Permission: &cdpbrowser.PermissionDescriptor{Name: perm, AllowWithoutSanitization: true}, Setting: "granted", Origin: origin})
			return err
		}))
		if err != nil {
			t.Fatalf("grant %s: %v", perm, err)
		}
	}
	copyBtn := `button.copy[data-copy="pnpm add ui-widget"]`
	if err := br.do(chromedp.WaitVisible(chromedp.CSS(copyBtn)), chromedp.Click(chromedp.CSS(copyBtn)), chromedp.WaitVisible(chromedp.CSS(copyBtn+".done"))); err != nil {
		t.Fatalf("copy button: %v", err)
	}
	clip, err := get(br, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil || clip != "pnpm add ui-widget" {
		t.Errorf("clipboard after Copy: %q (%v)", clip, err)
	}

	// The version page and a dependency link.
	if err := br.do(chromedp.Click(chromedp.CSS(`#versions a`)), chromedp.WaitVisible(chromedp.ID("version-title"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#version-title"); !strings.Contains(got, "2.1.0") {
		t.Errorf("version page title %q", got)
	}
	// The registry's own version URL opens the same page in a browser.
	if err := br.do(chromedp.Navigate(reg.URL+"/ui-widget/stable"), chromedp.WaitVisible(chromedp.ID("version-title"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#version-title"); !strings.Contains(got, "2.1.0") {
		t.Errorf("/ui-widget/stable in a browser shows %q", got)
	}
	shoot("version")
	if err := br.do(chromedp.Navigate(reg.URL+"/ui-widget"), chromedp.Click(chromedp.CSS(`#deps a[href="/ui-helper"]`)), chromedp.WaitVisible(chromedp.ID("pkg-name"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#pkg-name"); got != "ui-helper" {
		t.Errorf("dependency link led to %q", got)
	}

	// A restricted package: absent until the visitor logs in.
	if err := br.do(chromedp.Navigate(reg.URL+"/@acme/ui-secret"), chromedp.WaitVisible(chromedp.ID("error-message"))); err != nil {
		t.Fatal(err)
	}
	if body, _ := get(br, chromedp.Text(chromedp.CSS("body"))); strings.Contains(body, "TOP-SECRET-UI") {
		t.Fatalf("the restricted README shows before logging in")
	}
	if err := br.do(chromedp.Click(chromedp.ID("login-link")), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
		t.Fatal(err)
	}
	shoot("login")
	if err := br.do(chromedp.SendKeys(chromedp.ID("name"), "uialice"), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("pkg-name"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if got := text("#pkg-name"); got != "@acme/ui-secret" {
		t.Errorf("after logging in the browser is at %q, want the restricted package", got)
	}
	if got := text("#readme"); !strings.Contains(got, "TOP-SECRET-UI") {
		t.Errorf("restricted README after logging in: %q", got)
	}
	if got := text("#whoami"); got != "uialice" {
		t.Errorf("header shows %q, want uialice", got)
	}
	if cookies, _ := get(br, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, "couchnpm_session") {
		t.Errorf("the session cookie is readable from script: %q", cookies)
	}
	if err := br.do(chromedp.Navigate(reg.URL+"/-/web/search?q=widget"), chromedp.WaitVisible(chromedp.ID("results"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#results"); !strings.Contains(got, "ui-secret") {
		t.Errorf("search after logging in misses the restricted package: %q", got)
	}
	// Log out: the restricted package is gone again.
	if err := br.do(chromedp.Click(chromedp.ID("logout-link")), chromedp.WaitVisible(chromedp.ID("logout")), chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("hq"))); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if err := br.do(chromedp.Navigate(reg.URL+"/@acme/ui-secret"), chromedp.WaitVisible(chromedp.ID("error-message"))); err != nil {
		t.Errorf("after logging out: %v", err)
	}
	if v := br.cspViolations(); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", v)
	}
}

// shootPage checks the browser's current page with axe-core and, with
// COUCHNPM_UI_SCREENSHOTS=<folder>, writes its light and dark screenshots
// there as name-light.png and name-dark.png.
func shootPage(t *testing.T, br *browser, name string) {
	t.Helper()
	checkAccessibility(t, br, name) // axe-core: every page shot is checked too
	shots := os.Getenv("COUCHNPM_UI_SCREENSHOTS")
	if shots == "" {
		return
	}
	for _, scheme := range []string{"light", "dark"} {
		err := br.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			return err
		}))
		if err != nil {
			t.Fatal(err)
		}
		png, err := get(br, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+"-"+scheme+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// axeSource is axe-core (pinned in integration/axe/package.json), installed
// with npm ci on first use.
var axeSource struct {
	once sync.Once
	src  string
	err  error
}

func loadAxe(t *testing.T) string {
	t.Helper()
	axeSource.once.Do(func() {
		dir := filepath.Join(suite.repoRoot, "integration", "axe")
		file := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
		if _, err := os.Stat(file); err != nil {
			fmt.Fprintln(os.Stderr, "integration: installing axe-core (npm ci --prefix integration/axe)...")
			cmd := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error")
			cmd.Env = npmEnv(os.Getenv("HOME"))
			if out, err := cmd.CombinedOutput(); err != nil {
				axeSource.err = fmt.Errorf("npm ci --prefix integration/axe: %v\n%s", err, out)
				return
			}
		}
		b, err := os.ReadFile(file)
		axeSource.src, axeSource.err = string(b), err
	})
	if axeSource.err != nil {
		t.Fatal(axeSource.err)
	}
	return axeSource.src
}

// axeViolation is one failed axe-core rule.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []string `json:"target"`
	} `json:"nodes"`
}

// checkAccessibility runs axe-core on the browser's current page (injected
// through DevTools, which the page's CSP does not govern) and fails on any
// serious or critical violation. The README is left out: it is the
// publisher's markup (an image without alt text there is theirs to fix).
func checkAccessibility(t *testing.T, br *browser, page string) {
	t.Helper()
	if _, err := get(br, chromedp.Evaluate[bool](loadAxe(t)+"\n;true")); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	vs, err := get(br, chromedp.Evaluate[[]axeViolation](`axe.run({exclude: [["#readme"]]}, {resultTypes: ["violations"]}).then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical"))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe.run on %s: %v", page, err)
	}
	for _, v := range vs {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, strings.Join(n.Target, " "))
		}
		t.Errorf("accessibility (%s page, %s): %s: %s at %v", page, v.Impact, v.ID, v.Help, where)
	}
}

// xssPayloads try to run script (each sets window.pwned or the title) or
// restyle the page from a README.
var xssPayloads = []string{
	"<script>window.pwned='script'</script>",
	"<script src=\"data:text/javascript,window.pwned='src'\"></script>",
	"<img src=x onerror=\"window.pwned='img'\">",
	"<body onload=\"window.pwned='body'\">",
	"<div onmouseover=\"window.pwned='over'\">hover</div>",
	"<a href=\"javascript:window.pwned='href'\">js link</a>",
	"[md link](javascript:window.pwned='md')",
	"<a href=\"&#106;avascript:window.pwned='entity'\">entity link</a>",
	"<a href=\" JaVaScRiPt:window.pwned='case'\">case link</a>",
	"[data link](data:text/html;base64,PHNjcmlwdD5wYXJlbnQucHduZWQ9MTwvc2NyaXB0Pg==)",
	"<svg onload=\"window.pwned='svg'\"><circle r=10 /></svg>",
	"<svg><script>window.pwned='svgscript'</script></svg>",
	"<svg><a xlink:href=\"javascript:window.pwned='xlink'\"><text y=20>svg link</text></a></svg>",
	"<math><a xlink:href=\"javascript:window.pwned='math'\">math link</a></math>",
	"<iframe src=\"javascript:parent.pwned='iframe'\"></iframe>",
	"<iframe srcdoc=\"<script>parent.pwned='srcdoc'</script>\"></iframe>",
	"<object data=\"javascript:window.pwned='object'\"></object>",
	"<embed src=\"javascript:window.pwned='embed'\">",
	"<form action=\"javascript:window.pwned='form'\"><button>send</button></form>",
	"<input autofocus onfocus=\"window.pwned='focus'\">",
	"<details open ontoggle=\"window.pwned='toggle'\"><summary>x</summary></details>",
	"<style>body{display:none}</style><p style=\"position:fixed;inset:0\">style</p>",
	"<link rel=stylesheet href=\"data:text/css,body{display:none}\">",
	"<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.pwned='meta'\">",
	"<base href=\"javascript:window.pwned='base'//\">",
	"<noscript><p title=\"</noscript><img src=x onerror=window.pwned='noscript'>\"></noscript>",
	"<!--><img src=x onerror=window.pwned='comment'>-->",
	"<title>PWNED</title>",
	"<img id=\"readme\" name=\"pwned\" src=\"https://img.example/x.png\">",
	"<video><source onerror=\"window.pwned='video'\"></video>",
	"<marquee onstart=\"window.pwned='marquee'\">m</marquee>",
	"| cell |\n|---|\n| <b onclick=\"window.pwned='cell'\">bold</b> |",
}
