package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/replication"
)

// mirrorConfig is the upstream side of the configuration.
type mirrorConfig struct {
	ModeName      string
	Mode          replication.Mode
	Upstream      string
	Changes       string
	UpstreamCouch string
	ReplTarget    string
	Headers       string
	Allow         string
	PrivateScopes string
	MaxAge        time.Duration
	Timeout       time.Duration
	// NameCheckTimeout bounds the takeover guard's upstream question.
	NameCheckTimeout time.Duration
	// TarballTimeout bounds one whole upstream tarball download.
	TarballTimeout time.Duration
	// MaxConcurrent bounds upstream packument and tarball fetches in flight.
	MaxConcurrent int
	// MaxPackumentBytes bounds one upstream packument.
	MaxPackumentBytes int64
	PageSize          int
	PollInterval      time.Duration
	UpstreamUser      string
	UpstreamPass      string
	UpstreamToken     string
	parsedHeaders     http.Header
	allowList         []string
	privateScopes     []string
}

func (m *mirrorConfig) register(e *envFlags) {
	e.str(&m.ModeName, "mirror", "COUCHNPM_MIRROR", "off", "upstream mirror mode: off, on-demand, follow or replicate")
	e.str(&m.Upstream, "upstream", "COUCHNPM_UPSTREAM", "", "upstream registry base URL (packuments and tarballs)")
	e.str(&m.Changes, "upstream-changes", "COUCHNPM_UPSTREAM_CHANGES", "", "the follower's upstream _changes URL (follow mode)")
	e.str(&m.UpstreamCouch, "upstream-couchdb", "COUCHNPM_UPSTREAM_COUCHDB", "", "upstream CouchDB database URL (replicate mode)")
	e.str(&m.ReplTarget, "replication-target", "COUCHNPM_REPLICATION_TARGET", "", "CouchDB's URL as CouchDB itself reaches it, for the _replicator target (default: COUCHDB_URL)")
	e.str(&m.Headers, "upstream-headers", "COUCHNPM_UPSTREAM_HEADERS", "", `extra upstream request headers, "Name: value" pairs separated by ";"`)
	e.str(&m.Allow, "mirror-allow", "COUCHNPM_MIRROR_ALLOW", "", "comma-separated names and @scopes to mirror (default: everything)")
	e.str(&m.PrivateScopes, "private-scopes", "COUCHNPM_PRIVATE_SCOPES", "", "comma-separated scopes never looked up upstream, like @acme")
	e.duration(&m.MaxAge, "mirror-max-age", "COUCHNPM_MIRROR_MAX_AGE", 5*time.Minute, "on-demand mode: refresh a mirrored packument older than this")
	e.duration(&m.Timeout, "upstream-timeout", "COUCHNPM_UPSTREAM_TIMEOUT", 30*time.Second, "bound on each upstream metadata request")
	e.duration(&m.NameCheckTimeout, "upstream-name-check-timeout", "COUCHNPM_UPSTREAM_NAME_CHECK_TIMEOUT", 10*time.Second, "how long the first publish of a name waits for the upstream to say whether it has that name (no answer: 503)")
	e.duration(&m.TarballTimeout, "upstream-tarball-timeout", "COUCHNPM_UPSTREAM_TARBALL_TIMEOUT", 5*time.Minute, "bound on one whole upstream tarball download")
	e.size(&m.MaxPackumentBytes, "upstream-max-packument-bytes", "COUCHNPM_UPSTREAM_MAX_PACKUMENT_BYTES", replication.DefaultMaxPackumentBytes, "largest upstream packument accepted, a `size` like 256MB")
	e.integer(&m.MaxConcurrent, "upstream-max-concurrent", "COUCHNPM_UPSTREAM_MAX_CONCURRENT", 16, "most upstream packument and tarball fetches in flight at once; others wait")
	e.duration(&m.PollInterval, "follow-poll", "COUCHNPM_FOLLOW_POLL", 2*time.Second, "follow mode: wait between polls once caught up")
	e.integer(&m.PageSize, "follow-page-size", "COUCHNPM_FOLLOW_PAGE_SIZE", 1000, "follow mode: changes read per page (at most 10000)")
	m.UpstreamUser = os.Getenv("COUCHNPM_UPSTREAM_USER")
	m.UpstreamPass = os.Getenv("COUCHNPM_UPSTREAM_PASSWORD")
	m.UpstreamToken = os.Getenv("COUCHNPM_UPSTREAM_TOKEN")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkHTTPURL(flag, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--%s must be an http(s) URL", flag)
	}
	return nil
}

// check checks the mirror's flags and parses its lists and headers; the
// upstream URLs are needed by the mode that uses them.
func (m *mirrorConfig) check(couchURL string) error {
	mode, err := replication.ParseMode(m.ModeName)
	if err != nil {
		return err
	}
	m.Mode = mode
	m.allowList = splitList(m.Allow)
	m.privateScopes = splitList(m.PrivateScopes)
	if m.parsedHeaders, err = parseHeaders(m.Headers); err != nil {
		return err
	}
	if err := m.checkBounds(); err != nil {
		return err
	}
	return m.checkUpstreams(couchURL)
}

// parseHeaders reads --upstream-headers: "Name: value" pairs separated by
// ";".
func parseHeaders(raw string) (http.Header, error) {
	h := http.Header{}
	for _, pair := range strings.Split(raw, ";") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--upstream-headers: %q is not a \"Name: value\" pair", pair)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// checkBounds checks the sizes, counts and durations.
func (m *mirrorConfig) checkBounds() error {
	if m.PageSize < 1 || m.PageSize > 10000 {
		return errors.New("--follow-page-size must be between 1 and 10000")
	}
	if m.MaxAge <= 0 || m.Timeout <= 0 || m.TarballTimeout <= 0 || m.PollInterval <= 0 || m.NameCheckTimeout <= 0 {
		return errors.New("mirror durations must be positive")
	}
	if m.MaxConcurrent < 1 || m.MaxConcurrent > 4096 {
		return errors.New("--upstream-max-concurrent must be between 1 and 4096")
	}
	return nil
}

// checkUpstreams checks the URLs the mode needs; replicate mode's target
// defaults to COUCHDB_URL.
func (m *mirrorConfig) checkUpstreams(couchURL string) error {
	if m.Mode == replication.ModeOff {
		return nil
	}
	if err := checkHTTPURL("upstream", m.Upstream); err != nil {
		return fmt.Errorf("mirror mode %s needs COUCHNPM_UPSTREAM: %w", m.Mode, err)
	}
	switch m.Mode {
	case replication.ModeFollow:
		if err := checkHTTPURL("upstream-changes", m.Changes); err != nil {
			return fmt.Errorf("follow mode needs COUCHNPM_UPSTREAM_CHANGES: %w", err)
		}
	case replication.ModeReplicate:
		if err := checkHTTPURL("upstream-couchdb", m.UpstreamCouch); err != nil {
			return fmt.Errorf("replicate mode needs COUCHNPM_UPSTREAM_COUCHDB: %w", err)
		}
		if m.ReplTarget == "" {
			m.ReplTarget = couchURL
		}
		if err := checkHTTPURL("replication-target", m.ReplTarget); err != nil {
			return err
		}
	}
	return nil
}
