package importer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Registry reads one scope's packages from an npm registry through its
// API: the search endpoint finds them, then each packument and tarball is
// fetched. The token goes only to the registry's own host.
type Registry struct {
	base   *url.URL
	scope  string // "@acme"
	token  string
	client *http.Client
	// Timeouts of one metadata request and of one tarball download.
	MetaTimeout, TarballTimeout time.Duration
}

// NewRegistry reads scope ("@acme" or "acme") from the registry at base.
func NewRegistry(base, scope, token string) (*Registry, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errf("the registry URL must be http(s)://host[/path], got %q", base)
	}
	scope = "@" + strings.TrimPrefix(strings.TrimSuffix(scope, "/"), "@")
	if len(scope) < 2 || strings.ContainsAny(scope[1:], "/@ ") {
		return nil, errf("--scope must name a scope such as @acme")
	}
	return &Registry{base: u, scope: strings.ToLower(scope), token: token,
		client:      &http.Client{CheckRedirect: sameHostRedirects},
		MetaTimeout: time.Minute, TarballTimeout: 10 * time.Minute}, nil
}

// sameHostRedirects drops the Authorization header on a redirect to
// another host (Go does this for Authorization since 1.8; this also
// bounds the number of hops).
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errf("too many redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// get fetches u, sending the token when u is on the registry's host.
func (r *Registry) get(ctx context.Context, u string, timeout time.Duration, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "couchnpm-import")
	if r.token != "" && req.URL.Scheme == r.base.Scheme && req.URL.Host == r.base.Host {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, errf("GET %s: %v", redactURL(req.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, errf("GET %s: status %d", redactURL(req.URL), resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, errf("GET %s: %v", redactURL(req.URL), err)
	}
	if int64(len(b)) > limit {
		return nil, errf("GET %s: larger than %d MiB", redactURL(req.URL), limit>>20)
	}
	return b, nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// Names implements Source: the search endpoint, asked for the scope
// (scope:acme, as the public registry understands it, then the text
// "@acme/" for registries that do not), every page; only names in the
// scope are kept.
func (r *Registry) Names(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	for _, text := range []string{"scope:" + r.scope[1:], r.scope + "/"} {
		const size = 250
		for from := 0; from < 100*size; from += size {
			q := url.Values{"text": {text}, "size": {strconv.Itoa(size)}, "from": {strconv.Itoa(from)}}
			b, err := r.get(ctx, r.base.String()+"/-/v1/search?"+q.Encode(), r.MetaTimeout, 64<<20)
			if err != nil {
				return nil, err
			}
			var page struct {
				Objects []struct {
					Package struct {
						Name string `json:"name"`
					} `json:"package"`
				} `json:"objects"`
				Total int `json:"total"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return nil, errf("search answer: %v", err)
			}
			for _, o := range page.Objects {
				if strings.HasPrefix(strings.ToLower(o.Package.Name), r.scope+"/") {
					seen[o.Package.Name] = true
				}
			}
			if len(page.Objects) < size || from+size >= page.Total {
				break
			}
		}
		if len(seen) > 0 {
			break
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Packument implements Source: the full document (not the abbreviated
// one npm install reads: it lacks the readme and the times).
func (r *Registry) Packument(ctx context.Context, name string) (*Packument, error) {
	b, err := r.get(ctx, r.base.String()+"/"+escapeName(name), r.MetaTimeout, 256<<20)
	if err != nil {
		return nil, err
	}
	var p Packument
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, errf("packument of %s: %v", name, err)
	}
	if p.Name != name {
		return nil, errf("the registry answered %q for %q", p.Name, name)
	}
	p.Attachments, p.Distfiles = nil, nil // a registry's answer has no Verdaccio bookkeeping
	if r.token != "" {
		// Readable only with the token: it stays restricted here.
		anon := *r
		anon.token = ""
		if _, err := anon.get(ctx, r.base.String()+"/"+escapeName(name), r.MetaTimeout, 256<<20); err != nil {
			p.Restricted = true
		}
	}
	return &p, nil
}

// Tarball implements Source: dist.tarball, which may be on another host
// (a CDN); the token is only sent to the registry's own.
func (r *Registry) Tarball(ctx context.Context, p *Packument, version string) ([]byte, error) {
	tb, _, _ := dist(p.Versions[version])
	u, err := url.Parse(tb)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errf("dist.tarball %q is not an http(s) URL", tb)
	}
	return r.get(ctx, u.String(), r.TarballTimeout, maxTarball)
}

func escapeName(name string) string { return strings.Replace(url.PathEscape(name), "%40", "@", 1) }
