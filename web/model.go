package web

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// mirroredField marks a packument the mirror fetched from upstream (the
// replication package writes it when it stores a copy).
const mirroredField = "couchnpm_fetched"

// packagePath is the page (and packument) path of a package. Each part is
// escaped: names in dependency lists are publisher-controlled strings, and
// "//host" must never become a protocol-relative link.
func packagePath(name string) string {
	if scope, pkg, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(scope, "@") {
		return "/@" + url.PathEscape(scope[1:]) + "/" + url.PathEscape(pkg)
	}
	return "/" + url.PathEscape(name)
}

// versionPath is the page of one version of a package.
func versionPath(name, version string) string {
	return "/-/web/package" + packagePath(name) + "/v/" + url.PathEscape(version)
}

// tarballPath is where the registry serves a version's tarball.
func tarballPath(name, version string) string {
	_, base, _ := registry.SplitName(name)
	return packagePath(name) + "/-/" + url.PathEscape(base+"-"+version+".tgz")
}

// field decodes one raw JSON value into T, or T's zero value.
func field[T any](raw json.RawMessage) T {
	var v T
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

// text reads a string field that publishers also write as {name}/{url}
// objects or arrays (license, repository, author).
func text(raw json.RawMessage, key string) string {
	if s := field[string](raw); s != "" {
		return s
	}
	if m := field[map[string]any](raw); m != nil {
		if s, ok := m[key].(string); ok {
			return s
		}
	}
	return ""
}

// webURL turns a repository or homepage value into an http(s) link, or ""
// when it is none (javascript:, data:, ssh and other schemes are shown as
// text only).
func webURL(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "git+")
	if strings.HasPrefix(s, "git://") {
		s = "https://" + strings.TrimPrefix(s, "git://")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	u.Path = strings.TrimSuffix(u.Path, ".git")
	return u.String()
}

// Dep is a dependency and the range asked for.
type Dep struct {
	Name, Range, Href string
}

func deps(raw json.RawMessage) []Dep {
	m := field[map[string]string](raw)
	out := make([]Dep, 0, len(m))
	for n, r := range m {
		out = append(out, Dep{Name: n, Range: r, Href: packagePath(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// VersionRow is a line of the versions table.
type VersionRow struct {
	Version    string
	Href       string
	Date       string
	Tags       []string
	Deprecated string
}

// VersionInfo is what a page shows about one version.
type VersionInfo struct {
	Version      string
	Date         string
	Description  string
	Deprecated   string
	License      string
	Deps         []Dep
	DevDeps      []Dep
	PeerDeps     []Dep
	OptionalDeps []Dep
	Tarball      string
	Integrity    string
	Shasum       string
	Size         int64
	UnpackedSize int64
	FileCount    int
	Publisher    string
}

// PackageView is the package page's data.
type PackageView struct {
	Name        string
	Href        string
	Description string
	Keywords    []string
	Latest      *VersionInfo
	DistTags    map[string]string
	Versions    []VersionRow
	Maintainers []string
	License     string
	Repository  string // link, or "" (RepositoryText then)
	RepoText    string
	Homepage    string
	Mirrored    bool
	Restricted  bool
	Modified    string
	Install     []Install
}

// Install is one client's install command.
type Install struct {
	Client, Command string
}

func day(iso string) string {
	t, err := time.Parse(time.RFC3339, iso)
	if err != nil {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// versionInfo reads version v of p.
func versionInfo(p *registry.Packument, v string) *VersionInfo {
	m := field[map[string]json.RawMessage](p.Versions[v])
	if m == nil {
		return nil
	}
	dist := field[map[string]json.RawMessage](m["dist"])
	info := &VersionInfo{
		Version:      v,
		Date:         day(p.Time[v]),
		Description:  field[string](m["description"]),
		Deprecated:   field[string](m["deprecated"]),
		License:      text(m["license"], "type"),
		Deps:         deps(m["dependencies"]),
		DevDeps:      deps(m["devDependencies"]),
		PeerDeps:     deps(m["peerDependencies"]),
		OptionalDeps: deps(m["optionalDependencies"]),
		Tarball:      tarballPath(p.Name, v),
		Integrity:    field[string](dist["integrity"]),
		Shasum:       field[string](dist["shasum"]),
		UnpackedSize: field[int64](dist["unpackedSize"]),
		FileCount:    field[int](dist["fileCount"]),
		Publisher:    text(m["_npmUser"], "name"),
	}
	base := tarballPath(p.Name, v)
	if a, ok := p.Attachments[base[strings.LastIndex(base, "/")+1:]]; ok {
		info.Size = a.Length
	}
	return info
}

// packageView builds the package page's data from a packument the caller
// may read.
func packageView(p *registry.Packument) *PackageView {
	pv := &PackageView{
		Name:        p.Name,
		Href:        packagePath(p.Name),
		Description: field[string](p.Fields["description"]),
		Keywords:    field[[]string](p.Fields["keywords"]),
		DistTags:    p.DistTags,
		License:     text(p.Fields["license"], "type"),
		Homepage:    webURL(field[string](p.Fields["homepage"])),
		Mirrored:    p.Fields[mirroredField] != nil,
		Restricted:  registry.AccessOf(p) == registry.AccessRestricted,
		Modified:    day(p.Time["modified"]),
	}
	repo := text(p.Fields["repository"], "url")
	if pv.Repository = webURL(repo); pv.Repository == "" {
		pv.RepoText = repo
	}
	for _, m := range p.Maintainers {
		pv.Maintainers = append(pv.Maintainers, m.Name)
	}
	tags := map[string][]string{}
	for t, v := range p.DistTags {
		tags[v] = append(tags[v], t)
	}
	vs := p.SortedVersions()
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		sort.Strings(tags[v])
		m := field[map[string]json.RawMessage](p.Versions[v])
		pv.Versions = append(pv.Versions, VersionRow{
			Version: v, Href: versionPath(p.Name, v), Date: day(p.Time[v]),
			Tags: tags[v], Deprecated: field[string](m["deprecated"]),
		})
	}
	latest := p.DistTags["latest"]
	if _, ok := p.Versions[latest]; !ok && len(vs) > 0 {
		latest = vs[len(vs)-1]
	}
	if latest != "" {
		pv.Latest = versionInfo(p, latest)
		if pv.Description == "" && pv.Latest != nil {
			pv.Description = pv.Latest.Description
		}
		if pv.License == "" && pv.Latest != nil {
			pv.License = pv.Latest.License
		}
	}
	pv.Install = []Install{
		{"npm", "npm install " + p.Name},
		{"pnpm", "pnpm add " + p.Name},
		{"yarn", "yarn add " + p.Name},
	}
	return pv
}

// readmeOf is the packument's README: the root one, else latest's.
func readmeOf(p *registry.Packument) string {
	if s := field[string](p.Fields["readme"]); s != "" {
		return s
	}
	m := field[map[string]json.RawMessage](p.Versions[p.DistTags["latest"]])
	return field[string](m["readme"])
}

// DepSection is one titled dependency list of the version page.
type DepSection struct {
	Title string
	Deps  []Dep
}

// Sections lists the version's dependency kinds in the order people read
// them.
func (v *VersionInfo) Sections() []DepSection {
	return []DepSection{
		{"Dependencies", v.Deps}, {"Peer dependencies", v.PeerDeps},
		{"Optional dependencies", v.OptionalDeps}, {"Dev dependencies", v.DevDeps},
	}
}
