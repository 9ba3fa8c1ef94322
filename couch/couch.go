// Package couch is the only code that talks to CouchDB. It opens the
// registry's databases, installs their design documents, and implements the
// storage interfaces of the registry package on kivik, translating CouchDB
// errors into registry error kinds in one place.
package couch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb" // registers the "couch" driver
	"github.com/go-kivik/kivik/v4/couchdb/chttp"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
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
	wa       workarounds       // PouchDB-only paths taken (workarounds.go)
}

// Database roles. Real names are the prefix plus a suffix.
const (
	RolePackages = "packages" // private packages
	RoleMirror   = "mirror"   // packuments mirrored from upstream
	RoleTarballs = "tarballs" // cached upstream tarballs
	RoleTokens   = "tokens"   // token hashes
	RoleSystem   = "system"   // leases, checkpoints
	RoleAudit    = "audit"    // the audit log (append-only, auditlog package)
)

// DBNames maps each role to its database name for prefix.
func DBNames(prefix string) map[string]string {
	return map[string]string{
		RolePackages: prefix,
		RoleMirror:   prefix + "-mirror",
		RoleTarballs: prefix + "-tarballs",
		RoleTokens:   prefix + "-tokens",
		RoleSystem:   prefix + "-system",
		RoleAudit:    prefix + "-audit",
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
		// PouchDB Server only: it has no /_up (404); GET / answers on both
		// servers.
		c.wa.add(WorkaroundNoUp)
		if _, err := c.k.Version(ctx); err != nil {
			return translate(err, "ping CouchDB")
		}
	}
	return nil
}

// WaitReady polls CouchDB with a bounded backoff until it answers or maxWait
// passes. Refused credentials end the wait at once: a 401 never heals.
func (c *Client) WaitReady(ctx context.Context, maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	backoff := retry.Backoff{First: 200 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		// The credentials first: GET /_session carries CouchDB's reason
		// for a refusal (HEAD /_up has no body), and costs one failed
		// login, not two, towards CouchDB's account lockout.
		err := c.checkCredentials(ctx)
		if err == nil {
			err = c.Ping(ctx)
		}
		if err == nil {
			return nil
		}
		if cerr := c.credentialsError(err); cerr != nil {
			return cerr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		delay := backoff.Next()
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("CouchDB at %s did not answer within %s: %s", c.URL(), maxWait, registry.DetailOf(err))
		}
		c.log.Warn().Str("couchdb", c.URL()).Int("attempt", attempt).Dur("retry_in", delay).
			Str("error", registry.DetailOf(err)).Msg("waiting for CouchDB")
		if err := retry.Wait(ctx, delay); err != nil {
			return err
		}
	}
}

// checkCredentials asks CouchDB who the service is logged in as. CouchDB
// refuses a wrong password on any request (401), but a server that lets
// anyone read /_up, or a user name it does not know, shows only here.
func (c *Client) checkCredentials(ctx context.Context) error {
	if c.user == "" {
		return nil
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	s, err := c.k.Session(ctx)
	if err != nil {
		return translate(err, "ping CouchDB")
	}
	if s.Name != c.user {
		return &credentialsError{url: c.URL(), user: c.user, status: http.StatusUnauthorized}
	}
	return nil
}

// credentialsError is CouchDB refusing the service's credentials.
type credentialsError struct {
	url, user string
	status    int
	reason    string // CouchDB's, when it gave one other than the usual
}

func (e *credentialsError) Error() string {
	status := strconv.Itoa(e.status)
	if e.reason != "" {
		// CouchDB 3.4+ locks an account out after repeated failures: say
		// so, or the operator hunts for a typo that is not there.
		status += ": " + e.reason
	}
	if e.user == "" {
		return fmt.Sprintf("CouchDB at %s needs a login (%s): set COUCHDB_USER and COUCHDB_PASSWORD", e.url, status)
	}
	return fmt.Sprintf("CouchDB at %s refused the credentials of user %q (%s): check COUCHDB_USER/COUCHDB_PASSWORD", e.url, e.user, status)
}

// credentialsError returns a credentials error when err is CouchDB refusing
// the credentials, nil otherwise.
func (c *Client) credentialsError(err error) error {
	var ce *credentialsError
	if errors.As(err, &ce) {
		return ce
	}
	switch status := kivik.HTTPStatus(err); status {
	case http.StatusUnauthorized, http.StatusForbidden:
		var he *chttp.HTTPError
		if errors.As(err, &he) { // an answer from the server, not a transport failure
			reason := he.Reason
			if reason == "Name or password is incorrect." || reason == http.StatusText(status) {
				reason = ""
			}
			return &credentialsError{url: c.URL(), user: c.user, status: status, reason: reason}
		}
	}
	return nil
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
	} else if ue := (*url.Error)(nil); errors.As(err, &ue) {
		// No answer at all: kivik calls it 502, but nothing answered.
		return registry.WrapDetail(registry.KindUnavailable, err, unavailable(op), "%s: cannot reach CouchDB at %s: %s", op, origin(ue.URL), netReason(ue.Err))
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
		return registry.WrapDetail(registry.KindUnavailable, err, unavailable(op), "%s: CouchDB refused the service's credentials (check COUCHDB_USER/COUCHDB_PASSWORD)", op)
	case http.StatusBadRequest:
		return registry.Wrap(registry.KindInvalid, err, "%s: %s", op, reasonOr(reason, "CouchDB refused the request"))
	default:
		if he == nil {
			// Not an answer with a status: a broken or unreadable one.
			return registry.Wrap(registry.KindUnavailable, err, "%s: CouchDB's answer could not be read", op)
		}
		return registry.WrapDetail(registry.KindUnavailable, err, unavailable(op), "%s: CouchDB answered %d (%s)", op, status, reasonOr(reason, http.StatusText(status)))
	}
}

// unavailable is what clients are told when CouchDB cannot serve op: the
// address, CouchDB's own texts and the service's configuration stay in the
// log and in the operator's commands.
func unavailable(op string) string {
	return op + ": the registry's database is unavailable; retry later"
}

// origin is the scheme and host of raw, for messages (no credentials, no
// path).
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// netReason says in a few words why a request got no answer.
func netReason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "name lookup failed for " + dns.Name
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed without an answer"
	default:
		return err.Error()
	}
}

func reasonOr(reason, fallback string) string {
	if reason == "" {
		return fallback
	}
	return reason
}
