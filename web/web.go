// Package web is couchnpm's web UI: server-rendered HTML pages for people
// browsing the registry (home, search, package, version). It reads through
// the same registry methods as the API, with the caller's identity, so a
// page shows exactly what the API would give that caller.
package web

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/downloads"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Registry is what the pages read; *registry.Service implements it.
type Registry interface {
	// SharedPackument is the packument as user may read it; on a warm
	// read it is the packument cache's own copy (no copy per page view),
	// so the pages only ever read it.
	SharedPackument(ctx context.Context, user registry.Identity, name string) (*registry.Packument, error)
	Search(ctx context.Context, user registry.Identity, q registry.SearchQuery) ([]registry.SearchHit, int, error)
	StarredBy(ctx context.Context, user registry.Identity, who string) ([]string, error)
}

// Recent lists the names of the most recently modified private packages,
// newest first (couch.Packuments implements it on the modified view).
type Recent interface {
	RecentlyModified(ctx context.Context, limit int) ([]string, error)
}

// Downloads is the download counter (downloads.Counter implements it).
type Downloads interface {
	Days(ctx context.Context, name string, from, to time.Time) ([]downloads.DayCount, error)
}

// MirrorStatus is the mirror's state for the home page.
type MirrorStatus interface {
	Status(ctx context.Context) (*replication.Status, error)
}

// Config is what the pages need.
type Config struct {
	PublicURL string       // the registry's URL, shown in the setup hint
	Recent    Recent       // nil: no "recently updated" list
	Mirror    MirrorStatus // nil: mirroring is off
	Downloads Downloads    // nil: no download counts on package pages
	// The status page's other readings (status.go); nil: not shown.
	Peers     PeerStatus
	Conflicts ConflictStatus
	Counts    Counts
	// IsAdmin tells who sees the admin-only details (peer hosts, error
	// texts, the upstream's address); nil: nobody.
	IsAdmin func(name string) bool
	// The package page's related lists (related.go); nil: not shown.
	Dependents Dependents
	Tarballs   TarballCache
}

// Site serves the pages.
type Site struct {
	cfg    Config
	reg    Registry
	pages  map[string]*template.Template
	static http.Handler
	frags  *fragmentCache

	anonPages      *shortCache                   // anonymous package pages, by name@rev and address
	charts         *ttlMap[*downloadChart]       // by package name, chartTTL
	dependents     *ttlMap[[]registry.Dependent] // by package name
	cachedState    *ttlMap[map[string]bool]      // by name@rev
	conflictsCache *ttlMap[*conflictsView]       // by kind of viewer, mirrorTTL
	countsCache    *cached[SiteCounts]           // nil without Counts
	mirrorCache    *cached[*replication.Status]  // nil without Mirror
}

// csp allows this site's own style sheet and script file only: no inline
// script or style at all, images from here or over https (README badges),
// never in a frame.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// searchPageSize is the number of hits per search page.
const searchPageSize = 20

// recentCount is the length of the home page's "recently updated" list.
const recentCount = 10

// New builds the site.
func New(cfg Config, reg Registry) *Site {
	funcs := template.FuncMap{
		"pkgHref":     packagePath,
		"userHref":    func(name string) string { return "/-/web/user/" + url.PathEscape(name) },
		"versionHref": versionPath,
		"bytes":       humanBytes,
		"add":         func(a, b int) int { return a + b },
		"shortKey":    func(k string) string { return k[:min(len(k), 6)] },
		"date":        dateOf,
		"hostOf":      hostOf,
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"home", "search", "package", "version", "error", "login", "user", "tokens", "status"} {
		pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	sub, _ := fs.Sub(staticFS, "static")
	s := &Site{cfg: cfg, reg: reg, pages: pages, static: http.StripPrefix("/-/web/static/", http.FileServerFS(sub)), frags: newFragmentCache(512)}
	s.anonPages = &shortCache{ttl: anonPageTTL, max: relatedEntries}
	s.charts = &ttlMap[*downloadChart]{ttl: chartTTL, max: relatedEntries}
	s.conflictsCache = &ttlMap[*conflictsView]{ttl: mirrorTTL, max: 2}
	s.dependents = &ttlMap[[]registry.Dependent]{ttl: relatedTTL, max: relatedEntries}
	s.cachedState = &ttlMap[map[string]bool]{ttl: relatedTTL, max: relatedEntries}
	if cfg.Counts != nil {
		s.countsCache = &cached[SiteCounts]{ttl: countsTTL, load: cfg.Counts.Counts}
	}
	if cfg.Mirror != nil {
		s.mirrorCache = &cached[*replication.Status]{ttl: mirrorTTL, load: cfg.Mirror.Status}
	}
	return s
}

// page is the data every page gets: its own data and the layout's.
type page struct {
	Title    string
	User     string
	Query    string
	Registry string
	Path     string // this page, for the log-in link's way back
	Data     any
}

// render writes a page; a template error is logged and answered with a
// plain 500 (never a stack or partial page).
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, name string, user registry.Identity, title string, data any) {
	s.renderKeep(w, r, status, name, user, title, data, nil)
}

// renderKeep is render; keep, when set, gets a copy of the page's bytes
// (the package page keeps anonymous pages a moment).
func (s *Site) renderKeep(w http.ResponseWriter, r *http.Request, status int, name string, user registry.Identity, title string, data any, keep func([]byte)) {
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	p := page{Title: title, User: user.Name, Registry: s.cfg.PublicURL, Path: r.URL.RequestURI(), Data: data}
	if q, ok := data.(*searchView); ok {
		p.Query = q.Query
	}
	if err := s.pages[name].ExecuteTemplate(buf, "layout.html", p); err != nil {
		zerolog.Ctx(r.Context()).Error().Str("page", name).Err(err).Msg("page template failed")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	if keep != nil {
		keep(bytes.Clone(buf.Bytes()))
	}
	writePage(w, r, status, name, user, buf.Bytes())
}

// writePage sends a rendered page with the site's headers.
func writePage(w http.ResponseWriter, r *http.Request, status int, name string, user registry.Identity, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page's own CSP (its script and style files, README images) and
	// caching; X-Frame-Options, Referrer-Policy and
	// Cross-Origin-Opener-Policy come from the one chain every answer
	// passes (handlers/chain.go, htmlSecurityHeaders).
	h.Set("Content-Security-Policy", csp)
	h.Add("Vary", "Accept")
	h.Add("Vary", "Authorization")
	h.Add("Vary", "Cookie")
	if name == "tokens" {
		h.Set("Cache-Control", "no-store") // a new token may be on it
	} else if user.Anonymous() {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "private, no-cache")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// pageBuffers are reused page buffers: a warm package page is mostly
// copied fragments, and growing a fresh buffer to the page's size was a
// third of its cost.
var pageBuffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 64<<10)) }}

func putPageBuffer(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return // a huge README's page: let it go
	}
	b.Reset()
	pageBuffers.Put(b)
}

// fail renders an error page for err: a readable reason and the status
// the API would give (404 for a package the caller may not see, exactly as
// for one that does not exist).
func (s *Site) fail(w http.ResponseWriter, r *http.Request, user registry.Identity, err error) {
	status := handlers.StatusOf(registry.KindOf(err))
	ev := zerolog.Ctx(r.Context()).Debug()
	if status >= 500 {
		ev = zerolog.Ctx(r.Context()).Error()
	}
	ev.Int("status", status).Err(err).Msg("page request failed")
	msg := registry.ReasonOf(err)
	switch {
	case status == http.StatusNotFound:
		msg = "There is no such package here, or you may not see it. Log in to see restricted packages."
	case status >= 500:
		msg = "The registry's storage or upstream is not answering; try again in a moment."
	}
	s.render(w, r, status, "error", user, http.StatusText(status), map[string]any{"Status": status, "Message": msg})
}

// homeView is the home page's data.
type homeView struct {
	Recent      []recentRow
	RecentError bool
	Mirror      *mirrorView // the status page's view of it (admin-only details left out)
	MirrorError bool
	Counts      *SiteCounts
}

type recentRow struct {
	Name, Href, Version, Description, Date string
	Restricted                             bool
}

// Home is GET / for a browser.
func (s *Site) Home(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var hv homeView
	if s.cfg.Recent != nil {
		names, err := s.cfg.Recent.RecentlyModified(ctx, 3*recentCount)
		if err != nil {
			hv.RecentError = true
			zerolog.Ctx(ctx).Warn().Err(err).Msg("home: recent packages unavailable")
		}
		for _, n := range names {
			if len(hv.Recent) == recentCount {
				break
			}
			// The same read as the package page: restricted packages are
			// listed only to those who may read them.
			p, err := s.reg.SharedPackument(ctx, user, n)
			if err != nil {
				continue
			}
			pv := packageView(p)
			row := recentRow{Name: p.Name, Href: pv.Href, Description: pv.Description, Date: pv.Modified, Restricted: pv.Restricted}
			if pv.Latest != nil {
				row.Version = pv.Latest.Version
			}
			hv.Recent = append(hv.Recent, row)
		}
	}
	if s.cfg.Mirror != nil {
		st, err := s.mirrorStatus(ctx)
		if err != nil {
			hv.MirrorError = true
		} else {
			hv.Mirror = mirrorOf(st, s.isAdmin(user))
		}
	}
	hv.Counts = s.counts(ctx)
	s.render(w, r, http.StatusOK, "home", user, "", &hv)
}

// packageData is the package page's data: the cached fragments of the
// revision, and what changes between views (downloads; the layout's user).
type packageData struct {
	*fragments
	Downloads      *downloadChart
	Dependents     []Dep
	MoreDependents bool
	Tarballs       *tarballCacheView // mirrored packages only
}

// fragments are the parts of a package page that depend on the package's
// revision only, rendered once per revision (README included).
type fragments struct {
	Main, Install, Facts template.HTML
}

// fragmentData is what the fragment templates read.
type fragmentData struct {
	*PackageView
	Readme template.HTML
}

// downloadChart is the last 30 days' downloads as bars.
type downloadChart struct {
	Week, Month int64
	Bars        []bar
}

type bar struct {
	Day       string
	Downloads int64
	Height    int // percent of the tallest day, 0..100, in steps of 5
}

// chartTTL is how long a package's download chart is reused: reading it
// costs CouchDB the last three days' count documents, which a busy page
// must not pay on every view; counts still show within seconds.
const chartTTL = 2 * time.Second

// downloadsOf reads the last 30 days of name's downloads; nil when there
// is no counter or the counts cannot be read (the page shows without).
func (s *Site) downloadsOf(ctx context.Context, name string) *downloadChart {
	if s.cfg.Downloads == nil {
		return nil
	}
	c, err := s.charts.load(ctx, name, func(ctx context.Context) (*downloadChart, error) {
		to := time.Now().UTC().Truncate(24 * time.Hour)
		days, err := s.cfg.Downloads.Days(ctx, name, to.AddDate(0, 0, -29), to)
		if err != nil {
			return nil, err
		}
		return chartOf(days), nil
	})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("package page: download counts unavailable")
		return nil
	}
	return c
}

// chartOf draws days as bars.
func chartOf(days []downloads.DayCount) *downloadChart {
	c := &downloadChart{}
	var peak int64
	for i, d := range days {
		c.Month += d.Downloads
		if i >= len(days)-7 {
			c.Week += d.Downloads
		}
		peak = max(peak, d.Downloads)
	}
	for _, d := range days {
		h := 0
		if peak > 0 {
			h = int(d.Downloads*20/peak) * 5
		}
		c.Bars = append(c.Bars, bar{Day: d.Day, Downloads: d.Downloads, Height: h})
	}
	return c
}

// Package is GET /<name> for a browser.
func (s *Site) Package(w http.ResponseWriter, r *http.Request, user registry.Identity, name string) {
	p, err := s.reg.SharedPackument(r.Context(), user, name)
	if err != nil {
		s.fail(w, r, user, err)
		return
	}
	// An anonymous page is the same for every anonymous visitor: it is
	// kept a moment by revision and address (the log-in link names it),
	// and a busy page is sent from memory. A signed-in visitor's page
	// names them and may list restricted dependents: rendered each time.
	var keep func([]byte)
	if user.Anonymous() && p.Rev != "" {
		key := p.Name + "@" + p.Rev + " " + r.URL.RequestURI()
		if body, ok := s.anonPages.fresh(key); ok {
			writePage(w, r, http.StatusOK, "package", user, body)
			return
		}
		keep = func(b []byte) { s.anonPages.set(key, b) }
	}
	fr, err := s.fragments(p)
	if err != nil {
		s.fail(w, r, user, err)
		return
	}
	pd := &packageData{fragments: fr, Downloads: s.downloadsOf(r.Context(), p.Name), Tarballs: s.cachedTarballs(r.Context(), p)}
	pd.Dependents, pd.MoreDependents = s.dependentsOf(r.Context(), user, p.Name)
	s.renderKeep(w, r, http.StatusOK, "package", user, p.Name, pd, keep)
}

// fragments renders (or finds) the revision's fragments. The key is the
// revision: a new publish, tag or deprecation renders anew. Pages are
// only built from packuments the caller may read, so a cached fragment is
// never shown to someone who could not have read it.
func (s *Site) fragments(p *registry.Packument) (*fragments, error) {
	key := ""
	if p.Rev != "" {
		key = p.Name + "@" + p.Rev
		if fr, ok := s.frags.get(key); ok {
			return fr, nil
		}
	}
	// #nosec: the README is bluemonday's output (readme.go).
	data := &fragmentData{PackageView: packageView(p), Readme: template.HTML(RenderReadme(readmeOf(p)))}
	fr := &fragments{}
	for _, f := range []struct {
		name string
		into *template.HTML
	}{{"pkg-main", &fr.Main}, {"pkg-install", &fr.Install}, {"pkg-facts", &fr.Facts}} {
		var buf bytes.Buffer
		if err := s.pages["package"].ExecuteTemplate(&buf, f.name, data); err != nil {
			return nil, registry.Wrap(registry.KindInternal, err, "render %s", f.name)
		}
		*f.into = template.HTML(buf.String()) // html/template's own, escaped output
	}
	if key != "" {
		s.frags.put(key, fr)
	}
	return fr, nil
}

// ServeWeb serves everything under /-/web/: static files, search and
// version pages.
func (s *Site) ServeWeb(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/-/web")
	switch {
	case strings.HasPrefix(path, "/static/"):
		w.Header().Set("Cache-Control", "public, max-age=3600")
		s.static.ServeHTTP(w, r)
	case path == "/status":
		s.statusPage(w, r, user)
	case path == "/status.json":
		s.statusJSON(w, r, user)
	case path == "/search":
		s.search(w, r, user)
	case strings.HasPrefix(path, "/package/"):
		s.version(w, r, user, strings.TrimPrefix(path, "/package/"))
	case strings.HasPrefix(path, "/user/"):
		s.userPage(w, r, user, strings.TrimPrefix(path, "/user/"))
	default:
		s.fail(w, r, user, registry.E(registry.KindNotFound, "no such page"))
	}
}

// searchView is the search page's data.
type searchView struct {
	Query      string
	Hits       []registry.SearchHit
	Total      int
	Page       int
	Pages      int
	Prev, Next string
	Error      string
}

func (s *Site) search(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if pg < 1 {
		pg = 1
	}
	sv := &searchView{Query: q, Page: pg}
	if q == "" {
		s.render(w, r, http.StatusOK, "search", user, "Search", sv)
		return
	}
	hits, total, err := s.reg.Search(r.Context(), user, registry.SearchQuery{Text: q, Size: searchPageSize, From: (pg - 1) * searchPageSize})
	if err != nil {
		if registry.KindOf(err) == registry.KindInvalid {
			sv.Error = registry.ReasonOf(err)
			s.render(w, r, http.StatusBadRequest, "search", user, "Search", sv)
			return
		}
		s.fail(w, r, user, err)
		return
	}
	sv.Hits, sv.Total = hits, total
	sv.Pages = (total + searchPageSize - 1) / searchPageSize
	link := func(n int) string {
		return "/-/web/search?" + url.Values{"q": {q}, "page": {strconv.Itoa(n)}}.Encode()
	}
	if pg > 1 {
		sv.Prev = link(pg - 1)
	}
	if pg < sv.Pages {
		sv.Next = link(pg + 1)
	}
	s.render(w, r, http.StatusOK, "search", user, "Search: "+q, sv)
}

// versionData is the version page's data.
type versionData struct {
	Name, Href string
	Mirrored   bool
	Restricted bool
	Tags       []string
	*VersionInfo
}

// version serves /-/web/package/<name>/v/<version>; rest is the escaped
// path after /package/.
func (s *Site) version(w http.ResponseWriter, r *http.Request, user registry.Identity, rest string) {
	rawName, rawVersion, ok := strings.Cut(rest, "/v/")
	if strings.HasPrefix(rest, "@") {
		// "@scope/name/v/1.0.0": the name holds one slash.
		if i := strings.Index(rest, "/"); i >= 0 {
			n, v, found := strings.Cut(rest[i+1:], "/v/")
			rawName, rawVersion, ok = rest[:i+1]+n, v, found
		}
	}
	name, err1 := url.PathUnescape(rawName)
	version, err2 := url.PathUnescape(rawVersion)
	if !ok || err1 != nil || err2 != nil || version == "" {
		s.fail(w, r, user, registry.E(registry.KindNotFound, "no such page"))
		return
	}
	if err := registry.ValidateName(name); err != nil {
		s.fail(w, r, user, err)
		return
	}
	p, err := s.reg.SharedPackument(r.Context(), user, name)
	if err != nil {
		s.fail(w, r, user, err)
		return
	}
	v, err := registry.ResolveVersion(p, version)
	if err != nil {
		s.fail(w, r, user, err)
		return
	}
	vd := &versionData{Name: p.Name, Href: packagePath(p.Name), Mirrored: p.Fields[mirroredField] != nil,
		Restricted: registry.AccessOf(p) == registry.AccessRestricted, VersionInfo: versionInfo(p, v)}
	for t, tv := range p.DistTags {
		if tv == v {
			vd.Tags = append(vd.Tags, t)
		}
	}
	if vd.VersionInfo == nil {
		s.fail(w, r, user, registry.E(registry.KindNotFound, "no such version"))
		return
	}
	s.render(w, r, http.StatusOK, "version", user, p.Name+"@"+v, vd)
}

// humanBytes writes a size as people read it.
func humanBytes(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " kB"
	default:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	}
}

// Login shows the log-in form or the log-out confirmation; the handlers
// check the password and keep the session.
func (s *Site) Login(w http.ResponseWriter, r *http.Request, user registry.Identity, p handlers.LoginPage) {
	title := "Log in"
	if p.Logout {
		title = "Log out"
	}
	if p.Status == 0 {
		p.Status = http.StatusOK
	}
	s.render(w, r, p.Status, "login", user, title, &p)
}

// maxUserPackages bounds the packages listed on a user page.
const maxUserPackages = 250

// userView is the user page's data.
type userView struct {
	Name     string
	Packages []registry.SearchHit
	Total    int
	Stars    []string
}

// userPage lists the packages a user maintains and the ones they starred,
// as the caller may see them (search and stars hide restricted packages
// from anonymous callers).
func (s *Site) userPage(w http.ResponseWriter, r *http.Request, user registry.Identity, raw string) {
	name, err := url.PathUnescape(raw)
	if err != nil || registry.ValidateUsername(name) != nil {
		s.fail(w, r, user, registry.E(registry.KindNotFound, "no such user"))
		return
	}
	uv := &userView{Name: name}
	uv.Packages, uv.Total, err = s.reg.Search(r.Context(), user, registry.SearchQuery{Text: "maintainer:" + strings.ToLower(name), Size: maxUserPackages})
	if err != nil {
		s.fail(w, r, user, err)
		return
	}
	if uv.Stars, err = s.reg.StarredBy(r.Context(), user, name); err != nil {
		s.fail(w, r, user, err)
		return
	}
	s.render(w, r, http.StatusOK, "user", user, name, uv)
}

// Tokens shows the logged-in user's tokens; the handlers check the
// password and make the changes (handlers/webtokens.go).
func (s *Site) Tokens(w http.ResponseWriter, r *http.Request, user registry.Identity, p handlers.TokensPage) {
	if p.Status == 0 {
		p.Status = http.StatusOK
	}
	s.render(w, r, p.Status, "tokens", user, "Tokens", &p)
}

// dateOf writes a time as a day (a token's creation or expiry).
func dateOf(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.UTC().Format("2006-01-02")
	case *time.Time:
		if v != nil {
			return v.UTC().Format("2006-01-02")
		}
	}
	return ""
}

// hostOf is the host (and port) of a URL, as npm's per-registry settings
// name it.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host + strings.TrimSuffix(u.Path, "/")
}
