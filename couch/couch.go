// Package couch is the only code that talks to CouchDB. It opens the
// registry's databases, installs their design documents, and implements the
// storage interfaces of the registry package on kivik, translating CouchDB
// errors into registry error kinds in one place.
package couch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb" // registers the "couch" driver
	"github.com/go-kivik/kivik/v4/couchdb/chttp"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// Config says where CouchDB is and how to reach it.
type Config struct {
	URL      string // base URL; credentials in it are moved to User/Password
	User     string
	Password string
	Prefix   string        // database name prefix
	Timeout  time.Duration // bound on each metadata call
	// WrapTransport, when set, wraps the HTTP transport (metrics).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client is a connection to CouchDB and the registry's databases on it.
type Client struct {
	k        *kivik.Client
	base     *url.URL // without credentials
	user     string
	password string
	http     *http.Client
	timeout  time.Duration
	log      zerolog.Logger
	names    map[string]string // role → database name
}

// Database roles. Real names are the prefix plus a suffix.
const (
	RolePackages = "packages" // private packages
	RoleMirror   = "mirror"   // packuments mirrored from upstream
	RoleTarballs = "tarballs" // cached upstream tarballs
	RoleTokens   = "tokens"   // token hashes
	RoleSystem   = "system"   // leases, checkpoints
)

// DBNames maps each role to its database name for prefix.
func DBNames(prefix string) map[string]string {
	return map[string]string{
		RolePackages: prefix,
		RoleMirror:   prefix + "-mirror",
		RoleTarballs: prefix + "-tarballs",
		RoleTokens:   prefix + "-tokens",
		RoleSystem:   prefix + "-system",
	}
}

// Open prepares a client; it does not contact CouchDB.
func Open(cfg Config, log zerolog.Logger) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("COUCHDB_URL must be an http(s) URL, got %q", redactURL(cfg.URL))
	}
	user, password := cfg.User, cfg.Password
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && password == "" {
			password = p
		}
		u.User = nil
	}
	u.Path = trimSlash(u.Path)
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		// No gzip on responses either: tarballs do not shrink, and
		// compressing them costs the server far more than the loopback or
		// LAN bytes saved (PouchDB Server gzips everything it may).
		DisableCompression: true,
	}
	// No overall client timeout: tarball streams may take long. Every call
	// carries a context with a deadline instead.
	hc := &http.Client{Transport: transport}
	if cfg.WrapTransport != nil {
		hc.Transport = cfg.WrapTransport(transport)
	}
	// No gzip on request bodies: PouchDB Server stores a gzip-encoded
	// attachment upload as is (the bytes change), and tarballs are
	// compressed already.
	opts := []kivik.Option{couchdb.OptionHTTPClient(hc), couchdb.OptionNoRequestCompression(), couchdb.OptionUserAgent("couchnpm")}
	if user != "" {
		opts = append(opts, couchdb.BasicAuth(user, password))
	}
	k, err := kivik.New("couch", u.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("couchdb client: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Client{
		k: k, base: u, user: user, password: password, http: hc,
		timeout: cfg.Timeout, log: log, names: DBNames(cfg.Prefix),
	}, nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// redactURL drops credentials from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

// URL is CouchDB's base URL without credentials (safe to log).
func (c *Client) URL() string { return c.base.String() }

// DBName is the database name of a role.
func (c *Client) DBName(role string) string { return c.names[role] }

// ctx bounds a metadata call.
func (c *Client) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.timeout)
}

// Ping reports whether CouchDB answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	ok, err := c.k.Ping(ctx) // HEAD /_up: CouchDB's health endpoint
	if err != nil {
		return translate(err, "ping CouchDB")
	}
	if !ok {
		// PouchDB Server has no /_up (404); GET / answers on both servers.
		if _, err := c.k.Version(ctx); err != nil {
			return translate(err, "ping CouchDB")
		}
	}
	return nil
}

// WaitReady polls CouchDB with a bounded backoff until it answers or maxWait
// passes.
func (c *Client) WaitReady(ctx context.Context, maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("CouchDB at %s did not answer within %s: %w", c.URL(), maxWait, err)
		}
		c.log.Warn().Str("couchdb", c.URL()).Int("attempt", attempt).Dur("retry_in", delay).
			Str("error", registry.ReasonOf(err)).Msg("waiting for CouchDB")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// translate maps a kivik error to a registry error kind. It is the one place
// CouchDB statuses are interpreted.
func translate(err error, op string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return registry.Wrap(registry.KindUnavailable, err, "%s: the request was cancelled", op)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return registry.Wrap(registry.KindUnavailable, err, "%s: CouchDB did not answer in time", op)
	}
	reason := ""
	var he *chttp.HTTPError
	if errors.As(err, &he) {
		reason = he.Reason
	}
	switch status := kivik.HTTPStatus(err); status {
	case http.StatusNotFound:
		return registry.Wrap(registry.KindNotFound, err, "not_found")
	case http.StatusConflict, http.StatusPreconditionFailed:
		return registry.Wrap(registry.KindConflict, err, "%s: document update conflict", op)
	case http.StatusRequestEntityTooLarge:
		return registry.Wrap(registry.KindTooLarge, err, "%s: CouchDB refused the document as too large (raise CouchDB's max_document_size)", op)
	case http.StatusForbidden:
		// A validate_doc_update refusal: the registry's second line of defence.
		return registry.Wrap(registry.KindForbidden, err, "%s: %s", op, reasonOr(reason, "refused by CouchDB"))
	case http.StatusUnauthorized:
		return registry.Wrap(registry.KindUnavailable, err, "%s: CouchDB refused the service's credentials", op)
	case http.StatusBadRequest:
		return registry.Wrap(registry.KindInvalid, err, "%s: %s", op, reasonOr(reason, "CouchDB refused the request"))
	default:
		return registry.Wrap(registry.KindUnavailable, err, "%s: CouchDB is unavailable (status %s)", op, strconv.Itoa(status))
	}
}

func reasonOr(reason, fallback string) string {
	if reason == "" {
		return fallback
	}
	return reason
}
