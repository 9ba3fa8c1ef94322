package couch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb/chttp"

	"github.com/couchnpm/couchnpm/registry"
)

// This file reads what `couchnpm doctor` checks. Every call here only
// reads: the doctor changes nothing in CouchDB.

// ServerInfo is what GET / says about the server, and when it said it.
type ServerInfo struct {
	// Vendor is "Apache CouchDB", "PouchDB Server", or what an unknown
	// server calls itself.
	Vendor  string
	Version string
	PouchDB bool
	// Date is the server's Date header (whole seconds); zero without one.
	Date time.Time
	// Sent and Received bound the moment the server wrote Date, on the
	// local clock.
	Sent, Received time.Time
}

// ServerInfo reads GET / (the welcome document and the Date header).
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	info := ServerInfo{Sent: time.Now()}
	resp, err := c.do(ctx, rawRequest{method: http.MethodGet, path: "/", op: "GET /"})
	if err != nil {
		return ServerInfo{}, err
	}
	defer resp.Body.Close()
	info.Received = time.Now()
	var welcome struct {
		CouchDB  string `json:"couchdb"`
		PouchDB  string `json:"express-pouchdb"`
		Version  string `json:"version"`
		VendorOf struct {
			Name string `json:"name"`
		} `json:"vendor"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&welcome); err != nil {
		return ServerInfo{}, registry.Wrap(registry.KindUnavailable, err, "GET /: the answer is not a CouchDB welcome")
	}
	info.Version = welcome.Version
	switch {
	case welcome.CouchDB != "":
		info.Vendor = "Apache CouchDB"
		if v := welcome.VendorOf.Name; v != "" && v != "The Apache Software Foundation" {
			info.Vendor = "CouchDB (" + v + ")"
		}
	case welcome.PouchDB != "":
		info.Vendor, info.PouchDB = "PouchDB Server", true
	default:
		info.Vendor = reasonOr(welcome.VendorOf.Name, "an unknown server")
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		info.Date = d
	}
	return info, nil
}

// SizeLimits are the CouchDB settings that bound what couchnpm may write.
type SizeLimits struct {
	// Available is false on PouchDB Server, which has no
	// /_node/_local/_config (and no such limits).
	Available bool
	// MaxDocumentSize bounds a document's JSON body, attachments left out
	// ([couchdb] max_document_size); 0: no bound ("infinity").
	MaxDocumentSize int64
	// MaxHTTPRequestSize bounds a request body, inline attachments
	// included ([chttpd] max_http_request_size); 0: no bound.
	MaxHTTPRequestSize int64
	// MaxAttachmentSize bounds one attachment ([couchdb]
	// max_attachment_size); 0: no bound ("infinity").
	MaxAttachmentSize int64
	// Defaults names the settings that are not set, whose built-in
	// default is reported.
	Defaults []string
}

// CouchDB 3's built-in defaults, used when a setting is absent.
const (
	defaultMaxDocumentSize    = 8000000
	defaultMaxHTTPRequestSize = 4294967296
)

// SizeLimits reads max_document_size, max_attachment_size and
// max_http_request_size from /_node/_local/_config. It needs a server
// admin; without one the error is of kind Forbidden.
func (c *Client) SizeLimits(ctx context.Context) (SizeLimits, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	couchdb, err := c.k.ConfigSection(ctx, "_local", "couchdb")
	if kivik.HTTPStatus(err) == http.StatusNotFound {
		// PouchDB Server only: it has no /_node/_local/_config (its
		// CouchDB 1 style /_config is not CouchDB 3's, and it enforces no
		// document size).
		c.wa.add(WorkaroundNoNodeConfig)
		return SizeLimits{}, nil
	}
	if err != nil {
		return SizeLimits{}, adminOnly(err, "read the [couchdb] configuration")
	}
	chttpd, err := c.k.ConfigSection(ctx, "_local", "chttpd")
	if err != nil {
		return SizeLimits{}, adminOnly(err, "read the [chttpd] configuration")
	}
	l := SizeLimits{Available: true}
	// size reads key of section; when it is absent, CouchDB's default def
	// applies, and the setting is named in Defaults unless unset is the
	// usual state (max_attachment_size: no bound).
	size := func(section map[string]string, key string, def int64, usual bool) (int64, error) {
		v, ok := section[key]
		if !ok {
			if !usual {
				l.Defaults = append(l.Defaults, key)
			}
			return def, nil
		}
		if strings.TrimSpace(v) == "infinity" {
			return 0, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, registry.E(registry.KindInvalid, "%s = %q is not a number of bytes", key, v)
		}
		return n, nil
	}
	if l.MaxDocumentSize, err = size(couchdb, "max_document_size", defaultMaxDocumentSize, false); err != nil {
		return l, err
	}
	if l.MaxAttachmentSize, err = size(couchdb, "max_attachment_size", 0, true); err != nil {
		return l, err
	}
	if l.MaxHTTPRequestSize, err = size(chttpd, "max_http_request_size", defaultMaxHTTPRequestSize, false); err != nil {
		return l, err
	}
	return l, nil
}

// adminOnly translates err of a request only a server admin may make: a
// refusal there says the service's user is not an admin (its credentials
// were accepted elsewhere).
func adminOnly(err error, op string) error {
	var he *chttp.HTTPError
	if errors.As(err, &he) {
		if s := kivik.HTTPStatus(err); s == http.StatusUnauthorized || s == http.StatusForbidden {
			return registry.Wrap(registry.KindForbidden, err, "%s: CouchDB answered %d (%s): the service's user is not a server admin", op, s, reasonOr(he.Reason, http.StatusText(s)))
		}
	}
	return translate(err, op)
}

// AdminRights is what the service's user may do on the server.
type AdminRights struct {
	User       string   // as CouchDB knows it ("" for an anonymous session)
	Roles      []string // its roles; a server admin has _admin
	ReadsUsers error    // nil when it can read the _users database
}

// AdminRights asks CouchDB who the service is and whether it can read
// _users (which CouchDB 3 lets only admins list).
func (c *Client) AdminRights(ctx context.Context) (AdminRights, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	s, err := c.k.Session(ctx)
	if err != nil {
		return AdminRights{}, translate(err, "read the session")
	}
	r := AdminRights{User: s.Name, Roles: s.Roles}
	rows := c.k.DB("_users").AllDocs(ctx, kivik.Param("limit", 1))
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		r.ReadsUsers = adminOnly(err, "list _users")
	}
	_ = rows.Close()
	return r, nil
}

// InstalledDesignDoc reads the hash of the design document installed in
// role's database; exists is false when the database itself is missing,
// and the error is of kind NotFound when the design document is.
func (c *Client) InstalledDesignDoc(ctx context.Context, role, id string) (hash string, exists bool, err error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	name := c.names[role]
	exists, err = c.k.DBExists(ctx, name)
	if err != nil {
		return "", false, adminOnly(err, "check database "+name)
	}
	if !exists {
		return "", false, nil
	}
	var stored struct {
		Hash string `json:"couchnpm_hash"`
	}
	if err := c.k.DB(name).Get(ctx, id).ScanDoc(&stored); err != nil {
		return "", true, translate(err, "read "+id+" in "+name)
	}
	return stored.Hash, true, nil
}

// LargestPackument is the largest document the largest view knows of.
type LargestPackument struct {
	Name  string
	Bytes int64 // about: characters of the JSON body, as the view counts them
	// Stale is set when the view index was still being built: the answer
	// is what it held then.
	Stale bool
}

// Largest returns the largest packument of the database (the largest
// view, read backwards: one row), or nil when none reaches the view's
// threshold (designdoc/js/largest.map.js). When the index cannot be
// brought up to date within the metadata bound (a first build on a large
// mirror), what it holds is read instead and marked Stale.
func (s *Packuments) Largest(ctx context.Context) (*LargestPackument, error) {
	read := func(ctx context.Context, params map[string]any) (*LargestPackument, error) {
		cctx, cancel := s.c.ctx(ctx)
		defer cancel()
		rs := s.db.Query(cctx, designDoc, "_view/largest", kivik.Params(params))
		defer rs.Close()
		var out *LargestPackument
		for rs.Next() {
			var n float64
			if err := rs.ScanKey(&n); err != nil {
				return nil, registry.Wrap(registry.KindInternal, err, "view largest: unreadable row")
			}
			id, _ := rs.ID()
			out = &LargestPackument{Name: id, Bytes: int64(n)}
		}
		if err := rs.Err(); err != nil {
			return nil, translate(err, "query view largest")
		}
		return out, nil
	}
	params := map[string]any{"descending": true, "limit": 1}
	l, err := read(ctx, params)
	if err == nil || !registry.IsKind(err, registry.KindUnavailable) || ctx.Err() != nil {
		return l, err
	}
	params["update"] = "false"
	l, err2 := read(ctx, params)
	if err2 != nil {
		return nil, err // the first failure says more
	}
	if l == nil {
		l = &LargestPackument{}
	}
	l.Stale = true
	return l, nil
}
