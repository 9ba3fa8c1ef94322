// Package replication keeps the mirror database in step with an upstream
// registry: a follower of the upstream's paged changes feed, a manager of a
// CouchDB _replicator document, on-demand pull-through of packuments, and a
// verified cache of upstream tarballs.
package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// UpstreamConfig says where the upstream registry is.
type UpstreamConfig struct {
	Registry string      // base URL for packuments and tarballs
	Changes  string      // the follower's _changes URL
	Headers  http.Header // extra headers (opt-in flags, auth)
	User     string      // optional Basic credentials
	Password string
	Token    string        // optional bearer token
	Timeout  time.Duration // bound on metadata calls
	// TarballTimeout bounds a whole tarball download.
	TarballTimeout time.Duration
	// MaxPackumentBytes bounds one upstream packument: a larger (or
	// endless) answer is refused before it exhausts memory.
	MaxPackumentBytes int64
	// MaxConcurrent bounds the packument and tarball fetches in flight at
	// once (default 16); further fetches wait for a free slot.
	MaxConcurrent int
}

// DefaultMaxPackumentBytes is the default bound on one upstream packument.
// The public registry's largest documents are tens of megabytes.
const DefaultMaxPackumentBytes = 256 << 20

// Upstream is an HTTP client for the upstream registry.
type Upstream struct {
	cfg    UpstreamConfig
	base   *url.URL
	client *http.Client
	slots  chan struct{} // one token per packument or tarball fetch in flight
}

// NewUpstream checks the configuration and returns a client.
func NewUpstream(cfg UpstreamConfig) (*Upstream, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Registry, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream registry URL %q must be an http(s) URL", withoutUserinfo(cfg.Registry))
	}
	if u.User != nil {
		// Credentials in the URL would travel into every message that
		// names an upstream URL; they have their own settings.
		return nil, fmt.Errorf("upstream registry URL %s must not hold credentials: set the upstream user/password or token instead", withoutUserinfo(cfg.Registry))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TarballTimeout <= 0 {
		cfg.TarballTimeout = 5 * time.Minute
	}
	if cfg.MaxPackumentBytes <= 0 {
		cfg.MaxPackumentBytes = DefaultMaxPackumentBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 16
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	return &Upstream{cfg: cfg, base: u, slots: make(chan struct{}, cfg.MaxConcurrent), client: &http.Client{
		Transport: transport,
		// Redirects may only stay on the upstream origin.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || !sameOrigin(req.URL, u) {
				return errors.New("upstream redirect leaves the upstream origin")
			}
			return nil
		},
	}}, nil
}

// Base is the upstream registry URL (safe to log: credentials are separate).
func (u *Upstream) Base() string { return u.base.String() }

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// SameOrigin reports whether raw points at the upstream's origin: the only
// place couchnpm fetches tarballs from (an SSRF guard).
func (u *Upstream) SameOrigin(raw string) bool {
	t, err := url.Parse(raw)
	return err == nil && sameOrigin(t, u.base)
}

// StatusError is an upstream HTTP answer couchnpm could not use.
type StatusError struct {
	URL        string
	Status     int
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("upstream %s answered %d", withoutUserinfo(e.URL), e.Status)
}

// withoutUserinfo is raw for a message: any user and password a URL holds
// (an upstream's packument may name tarballs so) never reach a client or a
// log.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

func (u *Upstream) get(ctx context.Context, target, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, registry.Wrap(registry.KindInternal, err, "build upstream request")
	}
	for k, vs := range u.cfg.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	switch {
	case u.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+u.cfg.Token)
	case u.cfg.User != "":
		req.SetBasicAuth(u.cfg.User, u.cfg.Password)
	}
	req.Header.Set("User-Agent", "couchnpm")
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "the upstream registry cannot be reached")
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	se := &StatusError{URL: target, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, registry.Wrap(registry.KindNotFound, se, "not_found")
	default:
		// 429, 5xx and anything unexpected: the upstream is not usable now.
		// Never a 404: npm reads 404 as "this package does not exist".
		return nil, registry.Wrap(registry.KindUnavailable, se, "the upstream registry answered %d", resp.StatusCode)
	}
}

func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), time.Hour)
	}
	return 0
}

// RetryAfterOf extracts the upstream's Retry-After from an error, if any.
func RetryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// EscapeName writes a package name as npm requests it: "@scope%2fname".
func EscapeName(name string) string {
	return strings.Replace(url.PathEscape(name), "%40", "@", 1)
}

// acquire takes one of the MaxConcurrent upstream fetch slots, waiting
// until one is free or ctx ends. release is idempotent.
func (u *Upstream) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "gave up waiting for a free upstream connection")
	}
	select {
	case u.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-u.slots }) }, nil
	case <-ctx.Done():
		return nil, registry.Wrap(registry.KindUnavailable, ctx.Err(), "gave up waiting for a free upstream connection (%d fetches in flight)", cap(u.slots))
	}
}

// Packument fetches a package's full document from the upstream registry.
func (u *Upstream) Packument(ctx context.Context, name string) (*registry.Packument, error) {
	release, err := u.acquire(ctx) // the wait does not count against the timeout
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.get(ctx, u.base.String()+"/"+EscapeName(name), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > u.cfg.MaxPackumentBytes {
		return nil, registry.E(registry.KindUnavailable, "the upstream document for %s is %d bytes, over the %d-byte limit", name, resp.ContentLength, u.cfg.MaxPackumentBytes)
	}
	limited := &io.LimitedReader{R: resp.Body, N: u.cfg.MaxPackumentBytes + 1}
	var p registry.Packument
	if err := json.NewDecoder(limited).Decode(&p); err != nil {
		if limited.N <= 0 {
			return nil, registry.E(registry.KindUnavailable, "the upstream document for %s is over the %d-byte limit", name, u.cfg.MaxPackumentBytes)
		}
		// Truncated or garbled: the upstream is not usable now.
		return nil, registry.Wrap(registry.KindUnavailable, err, "the upstream registry sent an unreadable document for %s", name)
	}
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return nil, registry.E(registry.KindUnavailable, "the upstream registry answered for %q with a document for %q", name, p.Name)
	}
	p.ID = name
	return &p, nil
}

// OpenTarball starts a tarball download from the upstream origin. The
// caller closes the body (which frees its upstream fetch slot); cancel ends
// the download. The whole download is bounded by TarballTimeout.
func (u *Upstream) OpenTarball(ctx context.Context, target string) (body io.ReadCloser, size int64, cancel context.CancelFunc, err error) {
	if !u.SameOrigin(target) {
		return nil, 0, nil, registry.E(registry.KindBadGateway, "the tarball URL is not on the upstream origin; not following it")
	}
	release, err := u.acquire(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	ctx, cancel = context.WithTimeout(ctx, u.cfg.TarballTimeout)
	resp, err := u.get(ctx, target, "application/octet-stream")
	if err != nil {
		cancel()
		release()
		if registry.IsKind(err, registry.KindNotFound) {
			// The packument names it, so upstream ought to have it.
			return nil, 0, nil, registry.Wrap(registry.KindUnavailable, err, "the upstream registry has no tarball at %s", withoutUserinfo(target))
		}
		return nil, 0, nil, err
	}
	return &releasingBody{ReadCloser: resp.Body, release: release}, resp.ContentLength, cancel, nil
}

// releasingBody frees an upstream fetch slot when the download is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	defer b.release()
	return b.ReadCloser.Close()
}

// ChangesPage is one page of the upstream changes feed.
type ChangesPage struct {
	Results []Change        `json:"results"`
	LastSeq json.RawMessage `json:"last_seq"`
}

// Change is one entry of the changes feed.
type Change struct {
	Seq     json.RawMessage `json:"seq"`
	ID      string          `json:"id"`
	Deleted bool            `json:"deleted"`
	Changes []struct {
		Rev string `json:"rev"`
	} `json:"changes"`
}

// Rev is the change's newest revision.
func (c Change) Rev() string {
	if len(c.Changes) == 0 {
		return ""
	}
	return c.Changes[0].Rev
}

// Changes reads one page of the upstream changes feed after since (an
// opaque sequence; empty means from the start).
func (u *Upstream) Changes(ctx context.Context, since string, limit int) (*ChangesPage, error) {
	if u.cfg.Changes == "" {
		return nil, errors.New("no upstream changes URL configured")
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	q.Set("limit", strconv.Itoa(limit))
	sep := "?"
	if strings.Contains(u.cfg.Changes, "?") {
		sep = "&"
	}
	resp, err := u.get(ctx, u.cfg.Changes+sep+q.Encode(), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page ChangesPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, registry.Wrap(registry.KindUnavailable, err, "the upstream changes feed sent an unreadable page")
	}
	return &page, nil
}

// UpdateSeq reads the upstream database's update_seq (GET on the changes
// URL without /_changes), for the lag report. Optional: errors are
// returned, not fatal.
func (u *Upstream) UpdateSeq(ctx context.Context) (json.RawMessage, error) {
	base, ok := strings.CutSuffix(strings.SplitN(u.cfg.Changes, "?", 2)[0], "/_changes")
	if !ok {
		return nil, errors.New("changes URL does not end in /_changes")
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	resp, err := u.get(ctx, base, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info struct {
		UpdateSeq json.RawMessage `json:"update_seq"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return nil, err
	}
	return info.UpdateSeq, nil
}
