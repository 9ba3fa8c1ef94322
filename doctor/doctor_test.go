package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/designdoc"
	"github.com/couchnpm/couchnpm/replication"
)

const prefix = "reg"

// fakeCouch answers as CouchDB 3.5 does for what the doctor reads (or, with
// pouch set, as PouchDB Server 4.2 does). Every field starts healthy
// (healthy()); each test case spoils one.
type fakeCouch struct {
	mu        sync.Mutex
	pouch     bool
	version   string
	skew      time.Duration // added to the Date header
	noDate    bool
	roles     []string
	sessionAs string            // the session's user ("" = anonymous)
	usersOK   bool              // _users readable
	configOK  bool              // /_node/_local/_config readable
	couchdb   map[string]string // [couchdb] section
	chttpd    map[string]string // [chttpd] section
	dbs       map[string]bool
	docs      map[string]any    // "/db/id" → body
	views     map[string][]any  // "/db/view" → rows
	scheduler map[string]any    // _replicator doc id → /_scheduler/docs answer
	users     []map[string]any  // _users documents, in id order
	requests  map[string]string // method+path of every write, to prove there were none
}

func healthy() *fakeCouch {
	f := &fakeCouch{
		version: "3.5.0", roles: []string{"_admin"}, sessionAs: "admin", usersOK: true, configOK: true,
		couchdb:   map[string]string{"max_document_size": "134217728", "uuid": "x"},
		chttpd:    map[string]string{"max_http_request_size": "536870912", "port": "5984"},
		dbs:       map[string]bool{"_users": true, "_replicator": true},
		docs:      map[string]any{},
		views:     map[string][]any{},
		scheduler: map[string]any{},
		requests:  map[string]string{},
	}
	for _, d := range designdoc.All() {
		db := couch.DBNames(prefix)[d.DB]
		f.dbs[db] = true
		f.docs["/"+db+"/"+d.ID] = map[string]any{"_id": d.ID, "_rev": "1-a", "couchnpm_hash": d.Hash}
	}
	f.dbs[prefix+"-system"] = true
	f.docs["/"+prefix+"-system/signing-keys"] = map[string]any{"keys": []any{
		map[string]any{"keyid": "SHA256:old", "public": "x", "private": "y", "created": "2025-01-01T00:00:00Z", "expires": "2025-06-01T00:00:00Z"},
		map[string]any{"keyid": "SHA256:new", "public": "x", "private": "y", "created": "2025-06-01T00:00:00Z"},
	}}
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, reason string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "reason": reason})
}

func (f *fakeCouch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		f.requests[r.Method+" "+r.URL.Path] = "write"
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "reason": "the doctor only reads"})
		return
	}
	if f.noDate {
		w.Header()["Date"] = nil
	} else {
		w.Header().Set("Date", time.Now().Add(f.skew).UTC().Format(http.TimeFormat))
	}
	notAdmin := func() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "reason": "You are not a server admin."})
	}
	p := r.URL.Path
	switch {
	case p == "/":
		if f.pouch {
			writeJSON(w, 200, map[string]any{"express-pouchdb": "Welcome!", "version": "4.2.0", "vendor": map[string]any{"name": "PouchDB authors", "version": "4.2.0"}})
			return
		}
		writeJSON(w, 200, map[string]any{"couchdb": "Welcome", "version": f.version, "vendor": map[string]any{"name": "The Apache Software Foundation"}})
	case p == "/_session":
		var name any
		if f.sessionAs != "" {
			name = f.sessionAs
		}
		writeJSON(w, 200, map[string]any{"ok": true, "userCtx": map[string]any{"name": name, "roles": f.roles}})
	case strings.HasPrefix(p, "/_node/_local/_config/"):
		if f.pouch {
			notFound(w, "no_db_file")
			return
		}
		if !f.configOK {
			notAdmin()
			return
		}
		switch strings.TrimPrefix(p, "/_node/_local/_config/") {
		case "couchdb":
			writeJSON(w, 200, f.couchdb)
		case "chttpd":
			writeJSON(w, 200, f.chttpd)
		default:
			writeJSON(w, 200, map[string]string{})
		}
	case p == "/_users/_all_docs":
		if !f.usersOK {
			notAdmin()
			return
		}
		rows := []any{}
		for _, u := range f.users {
			rows = append(rows, map[string]any{"id": "org.couchdb.user:" + u["name"].(string), "key": "org.couchdb.user:" + u["name"].(string), "doc": u})
		}
		writeJSON(w, 200, map[string]any{"total_rows": len(rows), "offset": 0, "rows": rows})
	case strings.HasPrefix(p, "/_scheduler/docs/_replicator/"):
		if f.pouch {
			notFound(w, "no_db_file")
			return
		}
		st, ok := f.scheduler[strings.TrimPrefix(p, "/_scheduler/docs/_replicator/")]
		if !ok {
			notFound(w, "missing")
			return
		}
		writeJSON(w, 200, st)
	default:
		f.serveDB(w, r)
	}
}

func (f *fakeCouch) serveDB(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	db, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !f.dbs[db] {
		notFound(w, "Database does not exist.")
		return
	}
	if rest == "" {
		writeJSON(w, 200, map[string]any{"db_name": db})
		return
	}
	if view, ok := strings.CutPrefix(rest, "_design/couchnpm/_view/"); ok {
		if _, ok := f.docs["/"+db+"/_design/couchnpm"]; !ok {
			notFound(w, "missing")
			return
		}
		rows, ok := f.views["/"+db+"/"+view]
		if !ok && view == "largest" && f.docs["/"+db+"/_design/couchnpm"].(map[string]any)["couchnpm_hash"] == "old" {
			notFound(w, "missing_named_view")
			return
		}
		if rows == nil {
			rows = []any{}
		}
		writeJSON(w, 200, map[string]any{"total_rows": len(rows), "offset": 0, "rows": rows})
		return
	}
	doc, ok := f.docs[p]
	if !ok {
		notFound(w, "missing")
		return
	}
	// CouchDB answers every document with its _id, _rev and an ETag.
	body := map[string]any{"_id": rest, "_rev": "1-0123456789abcdef0123456789abcdef"}
	for k, v := range doc.(map[string]any) {
		body[k] = v
	}
	w.Header().Set("ETag", `"`+body["_rev"].(string)+`"`)
	writeJSON(w, 200, body)
}

// run runs the doctor against f with opt.
func run(t *testing.T, f *fakeCouch, opt Options) []Finding {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := couch.Open(couch.Config{URL: srv.URL, User: "admin", Password: "pw", Prefix: prefix, Timeout: 2 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if opt.MaxPublishBytes == 0 {
		opt.MaxPublishBytes = 100 << 20
	}
	if opt.Mirror == "" {
		opt.Mirror = replication.ModeOff
	}
	out := Run(context.Background(), Sources{
		Couch: c, Packages: c.Packuments(couch.RolePackages), Mirror: c.Packuments(couch.RoleMirror), System: c.Docs(couch.RoleSystem),
		Accounts: c.Users(),
	}, opt)
	if len(f.requests) > 0 {
		t.Errorf("the doctor wrote to CouchDB: %v", f.requests)
	}
	return out
}

func largestRow(id string, n int) []any {
	return []any{map[string]any{"id": id, "key": n, "value": nil}}
}

func TestRunHealthy(t *testing.T) {
	out := run(t, healthy(), Options{})
	if Failed(out) || Count(out, Warn) > 0 {
		t.Errorf("a healthy CouchDB has warnings or failures:\n%s", dump(out))
	}
	for _, check := range []string{"couchdb", "admin", "max_document_size", "max_http_request_size", "design-docs", "replication", "clock", "conflicts", "signing-key"} {
		if find(out, check) == nil {
			t.Errorf("no %s finding:\n%s", check, dump(out))
		}
	}
}

func TestFindings(t *testing.T) {
	keyFile := writeKey(t)
	peer1 := []PeerReplication{{ID: "peer-1", Label: "http://site-b reg"}}
	tests := []struct {
		name   string
		spoil  func(f *fakeCouch)
		opt    Options
		check  string
		status Status
		want   []string // substrings of the message
		fix    string   // substring of the fix
	}{
		{name: "CouchDB 3 is fine", check: "couchdb", status: OK, want: []string{"Apache CouchDB 3.5.0"}},
		{name: "CouchDB 2 fails", spoil: func(f *fakeCouch) { f.version = "2.3.1" }, check: "couchdb", status: Fail,
			want: []string{"2.3.1", "needs CouchDB 3"}, fix: "upgrade CouchDB to 3.x"},
		{name: "CouchDB 4 is untested", spoil: func(f *fakeCouch) { f.version = "4.0.0" }, check: "couchdb", status: Warn,
			want: []string{"tested on CouchDB 3 only"}},
		{name: "PouchDB Server is the development stand-in", spoil: func(f *fakeCouch) { f.pouch = true }, check: "couchdb", status: Warn,
			want: []string{"PouchDB Server 4.2.0", "development stand-in"}, fix: "Apache CouchDB 3"},
		{name: "PouchDB Server has no size limits to check", spoil: func(f *fakeCouch) { f.pouch = true }, check: "max_document_size", status: OK,
			want: []string{"not checked", "no /_node/_local/_config"}},
		{name: "PouchDB Server has no request size to check", spoil: func(f *fakeCouch) { f.pouch = true }, check: "max_http_request_size", status: OK,
			want: []string{"not checked", "no /_node/_local/_config"}},

		{name: "admin", check: "admin", status: OK, want: []string{`user "admin" is a server admin`}},
		{name: "not an admin", spoil: func(f *fakeCouch) { f.roles = []string{"registry"}; f.usersOK = false; f.configOK = false },
			check: "admin", status: Fail, want: []string{"no _admin role (roles: registry)", "cannot read _users", "You are not a server admin", "cannot read the node configuration"},
			fix: "server admin's credentials"},
		{name: "not an admin: sizes cannot be read", spoil: func(f *fakeCouch) { f.roles = nil; f.configOK = false },
			check: "max_document_size", status: Fail, want: []string{"cannot read CouchDB's size limits", "not a server admin"}},
		{name: "a size that is no number", spoil: func(f *fakeCouch) { f.couchdb["max_document_size"] = "8M" },
			check: "max_document_size", status: Fail, want: []string{`max_document_size = "8M" is not a number of bytes`}, fix: "each is a number of bytes"},
		{name: "admin party", spoil: func(f *fakeCouch) { f.sessionAs = "" }, check: "admin", status: Fail,
			want: []string{"admin party", "anyone who reaches it"}, fix: "create an admin"},

		{name: "room to spare", spoil: func(f *fakeCouch) { f.views["/reg/largest"] = largestRow("big", 5<<20) },
			check: "max_document_size", status: OK, want: []string{"max_document_size is 128 MB", "the largest packument, big, is about 5 MB"}},
		{name: "a packument above the limit", spoil: func(f *fakeCouch) {
			f.couchdb["max_document_size"] = "1048576"
			f.views["/reg/largest"] = largestRow("@acme/huge", 1536<<10)
		}, check: "max_document_size", status: Fail,
			want: []string{"max_document_size is 1 MB", "@acme/huge, is about 1.5 MB", "refuses every change of @acme/huge"},
			fix:  "max_document_size = 134217728 (128 MB)"},
		{name: "the largest mirrored packument counts too", spoil: func(f *fakeCouch) {
			f.couchdb["max_document_size"] = "8000000"
			f.views["/reg/largest"] = largestRow("small", 300<<10)
			f.views["/reg-mirror/largest"] = largestRow("@types/node", 9<<20)
		}, check: "max_document_size", status: Fail, want: []string{"@types/node, is about 9 MB"}},
		{name: "less than twice the largest", spoil: func(f *fakeCouch) {
			f.views["/reg/largest"] = largestRow("grower", 70<<20)
		}, check: "max_document_size", status: Warn, want: []string{"less than twice the largest"}, fix: "max_document_size = 146800640"},
		{name: "CouchDB's default 8 MB warns", spoil: func(f *fakeCouch) { delete(f.couchdb, "max_document_size") },
			check: "max_document_size", status: Warn, want: []string{"max_document_size is 7.6 MB", "not set, so CouchDB's default: max_document_size", "below 64 MB"}},
		{name: "a mirror expects large packuments", opt: Options{Mirror: replication.ModeOnDemand, ExpectMirrored: 64 << 20},
			spoil: func(f *fakeCouch) { f.couchdb["max_document_size"] = "33554432" },
			check: "max_document_size", status: Fail, want: []string{"expects upstream packuments up to 64 MB", "larger packuments will be refused"}},
		{name: "the expectation is only for mirrors", opt: Options{Mirror: replication.ModeOff, ExpectMirrored: 512 << 20},
			check: "max_document_size", status: OK},
		{name: "a stale index says so", spoil: func(f *fakeCouch) { f.docs["/reg-mirror/_design/couchnpm"].(map[string]any)["couchnpm_hash"] = "old" },
			check: "max_document_size", status: Warn, want: []string{"reg-mirror has no largest view yet"}, fix: "installs the largest view"},

		{name: "request size room for a publish", spoil: func(f *fakeCouch) { f.views["/reg/largest"] = largestRow("big", 2<<20) },
			check: "max_http_request_size", status: OK, want: []string{"512 MB", "room for a 100 MB publish"}},
		{name: "request size too small for a publish", opt: Options{MaxPublishBytes: 100 << 20},
			spoil: func(f *fakeCouch) {
				f.chttpd["max_http_request_size"] = "67108864"
				f.views["/reg/largest"] = largestRow("big", 2<<20)
			},
			check: "max_http_request_size", status: Fail, want: []string{"max_http_request_size is 64 MB", "about 102 MB"}, fix: "max_http_request_size = 536870912"},
		{name: "no bound on documents", spoil: func(f *fakeCouch) { f.couchdb["max_document_size"] = "infinity" },
			check: "max_document_size", status: OK, want: []string{"infinity: no bound"}},
		{name: "no bound on requests", spoil: func(f *fakeCouch) { f.chttpd["max_http_request_size"] = "infinity" },
			check: "max_http_request_size", status: OK, want: []string{"infinity: no bound"}},
		{name: "attachment size below the publish size", spoil: func(f *fakeCouch) { f.couchdb["max_attachment_size"] = "1048576" },
			check: "max_attachment_size", status: Warn, want: []string{"max_attachment_size is 1 MB"}},

		{name: "design documents", check: "design-docs", status: OK, want: []string{"4 design documents are this binary's"}},
		{name: "an older design document", spoil: func(f *fakeCouch) {
			f.docs["/reg-tokens/_design/couchnpm"].(map[string]any)["couchnpm_hash"] = "0123456789abcdef"
		},
			check: "design-docs", status: Warn, want: []string{"reg-tokens was installed by another couchnpm version (hash 0123456789ab"}, fix: "start this version's couchnpm serve"},
		{name: "a missing design document", spoil: func(f *fakeCouch) { delete(f.docs, "/reg-audit/_design/couchnpm") },
			check: "design-docs", status: Fail, want: []string{"_design/couchnpm is missing in reg-audit"}},
		{name: "missing databases", spoil: func(f *fakeCouch) { delete(f.dbs, "reg"); delete(f.dbs, "reg-mirror") },
			check: "design-docs", status: Fail, want: []string{"databases do not exist: reg, reg-mirror"}, fix: "check --db-prefix"},

		{name: "no replication", check: "replication", status: OK, want: []string{"nothing to check"}},
		{name: "a running peer replication", opt: Options{Peers: peer1}, spoil: func(f *fakeCouch) {
			f.scheduler["peer-1"] = map[string]any{"doc_id": "peer-1", "state": "running", "info": map[string]any{"changes_pending": 3.0}}
		}, check: "replication", status: OK, want: []string{"replication from http://site-b reg: running, 3 changes pending"}},
		{name: "a crashing peer replication", opt: Options{Peers: peer1}, spoil: func(f *fakeCouch) {
			f.scheduler["peer-1"] = map[string]any{"doc_id": "peer-1", "state": "crashing", "info": map[string]any{"error": "unauthorized: unauthorized to access or create database http://site-b/reg/"}}
		}, check: "replication", status: Fail, want: []string{"replication from http://site-b reg: crashing (unauthorized"}, fix: "credentials"},
		{name: "a peer replication far behind", opt: Options{Peers: peer1}, spoil: func(f *fakeCouch) {
			f.scheduler["peer-1"] = map[string]any{"doc_id": "peer-1", "state": "running", "info": map[string]any{"changes_pending": 250000.0}}
		}, check: "replication", status: Warn, want: []string{"250000 changes pending"}, fix: "behind"},
		{name: "a peer replication without its document", opt: Options{Peers: peer1},
			check: "replication", status: Fail, want: []string{"replication from http://site-b reg: no _replicator document"}, fix: "start couchnpm serve"},
		{name: "another registry's replication is not ours", spoil: func(f *fakeCouch) {
			f.scheduler["backup"] = map[string]any{"state": "failed"}
		}, check: "replication", status: OK},
		{name: "replicate mode without its document", opt: Options{Mirror: replication.ModeReplicate, MirrorReplication: "couchnpm-reg-mirror"},
			check: "replication", status: Fail, want: []string{"mirror replication couchnpm-reg-mirror: no _replicator document"}},
		{name: "replicate mode running", opt: Options{Mirror: replication.ModeReplicate, MirrorReplication: "couchnpm-reg-mirror"}, spoil: func(f *fakeCouch) {
			f.scheduler["couchnpm-reg-mirror"] = map[string]any{"state": "running", "info": map[string]any{"changes_pending": 0.0}}
		}, check: "replication", status: OK, want: []string{"mirror replication couchnpm-reg-mirror: running"}},
		{name: "follow mode caught up", opt: Options{Mirror: replication.ModeFollow, FollowerLease: "lease:follower"}, spoil: func(f *fakeCouch) {
			f.docs["/reg-system/lease:follower"] = map[string]any{"holder": "host-1", "expires": time.Now().Add(10 * time.Second)}
			f.docs["/reg-system/follower:checkpoint"] = map[string]any{"since": "100", "upstream_seq": "100", "state": "following", "packuments_written": 100, "updated": time.Now()}
		}, check: "replication", status: OK, want: []string{"mirror follower: following, held by host-1, 100 packuments written"}},
		{name: "follow mode without a holder", opt: Options{Mirror: replication.ModeFollow, FollowerLease: "lease:follower"}, spoil: func(f *fakeCouch) {
			f.docs["/reg-system/follower:checkpoint"] = map[string]any{"since": "100", "upstream_seq": "100", "state": "following", "updated": time.Now()}
		}, check: "replication", status: Warn, want: []string{"no instance holds the follower lease"}, fix: "--mirror follow"},
		{name: "follow mode stopped", opt: Options{Mirror: replication.ModeFollow, FollowerLease: "lease:follower"}, spoil: func(f *fakeCouch) {
			f.docs["/reg-system/follower:checkpoint"] = map[string]any{"since": "100", "upstream_seq": "100", "state": "stopped", "updated": time.Now()}
		}, check: "replication", status: Warn, want: []string{"mirror follower: stopped, held by none", "no instance holds the follower lease"}, fix: "--mirror follow"},
		{name: "follow mode far behind", opt: Options{Mirror: replication.ModeFollow, FollowerLease: "lease:follower"}, spoil: func(f *fakeCouch) {
			f.docs["/reg-system/lease:follower"] = map[string]any{"holder": "host-1", "expires": time.Now().Add(10 * time.Second)}
			f.docs["/reg-system/follower:checkpoint"] = map[string]any{"since": "10", "upstream_seq": "5000", "state": "catching-up",
				"caught_up_at": time.Now().Add(-2 * time.Hour), "last_error": "upstream answered 503", "updated": time.Now()}
		}, check: "replication", status: Warn, want: []string{"catching-up", "behind by 2h0m0s", "last error: upstream answered 503"}},
		{name: "follow mode never ran", opt: Options{Mirror: replication.ModeFollow, FollowerLease: "lease:follower"},
			check: "replication", status: Warn, want: []string{"no checkpoint yet"}},

		{name: "clocks agree", check: "clock", status: OK, want: []string{"agrees"}},
		{name: "CouchDB 10s ahead", spoil: func(f *fakeCouch) { f.skew = 10 * time.Second }, check: "clock", status: Warn,
			want: []string{"ahead of this host's"}, fix: "NTP"},
		{name: "CouchDB 2 minutes behind", spoil: func(f *fakeCouch) { f.skew = -2 * time.Minute }, check: "clock", status: Fail,
			want: []string{"behind this host's", "signing key rotation"}},
		{name: "no Date header", spoil: func(f *fakeCouch) { f.noDate = true }, check: "clock", status: Warn, want: []string{"no Date header"}},

		{name: "no conflicts", check: "conflicts", status: OK, want: []string{"no document has conflicting revisions"}},
		{name: "open conflicts", spoil: func(f *fakeCouch) {
			f.views["/reg/conflicts"] = []any{map[string]any{"id": "left-pad", "key": "left-pad", "value": 1}, map[string]any{"id": "@acme/x", "key": "@acme/x", "value": 2}}
		}, check: "conflicts", status: Warn, want: []string{"2 documents in reg have conflicting revisions (left-pad, @acme/x)"}, fix: "/-/conflicts/status"},

		{name: "an active signing key", check: "signing-key", status: OK, want: []string{"SHA256:new is active (keyring of 2)"}},
		{name: "no signing key", spoil: func(f *fakeCouch) { delete(f.docs, "/reg-system/signing-keys") }, check: "signing-key", status: Warn,
			want: []string{"no signing key yet"}, fix: "start couchnpm serve"},
		{name: "every key expired", spoil: func(f *fakeCouch) {
			f.docs["/reg-system/signing-keys"] = map[string]any{"keys": []any{map[string]any{"keyid": "SHA256:old", "created": "2025-01-01T00:00:00Z", "expires": "2025-06-01T00:00:00Z"}}}
		}, check: "signing-key", status: Warn, want: []string{"every one of the 1 signing keys has expired"}},
		{name: "a signing key file", opt: Options{SigningKeyFile: keyFile}, check: "signing-key", status: OK, want: []string{"holds key SHA256:"}},
		{name: "a signing key file that is not a key", opt: Options{SigningKeyFile: filepath.Join(t.TempDir(), "missing.pem")},
			check: "signing-key", status: Fail, want: []string{"missing.pem"}, fix: "PKCS#8 ECDSA P-256"},

		{name: "no imported passwords", check: "imported-passwords", status: OK, want: []string{"no account holds an imported password"}},
		{name: "strong imported passwords wait for their users", spoil: func(f *fakeCouch) {
			f.users = []map[string]any{
				importedUser("ann", "$2y$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ""),
				{"_id": "org.couchdb.user:bob", "name": "bob", "type": "user", "roles": []any{}}, // logged in: no hash
			}
		}, check: "imported-passwords", status: OK, want: []string{"1 account of _users (shared by every registry on this CouchDB) still holds an imported password", "1 strong (no expiry)", "--verbose names them"}},
		{name: "expired and weak imported passwords", spoil: func(f *fakeCouch) {
			f.users = []map[string]any{
				importedUser("cat", "abDES1234567x", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)),
				importedUser("dan", "abDES1234567y", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)),
				importedUser("eve", "abDES1234567z", "not a time"),
				importedUser("fay", "$2y$12$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ""),
				{"_id": "org.couchdb.user:gus", "name": "gus", "couchnpm_deleted": true, "couchnpm_imported_hash": "x"},
			}
		}, check: "imported-passwords", status: Warn,
			want: []string{"4 accounts", "2 expired (a weak hash kind past --imported-hash-max-age: these users cannot log in)", "1 weak, logging in until the first expiry on " + time.Now().Add(48*time.Hour).UTC().Format(time.DateOnly), "1 strong", "--verbose names them"},
			fix:  "couchnpm user set-password NAME"},
		{name: "--verbose names the accounts", opt: Options{Verbose: true}, spoil: func(f *fakeCouch) {
			f.users = []map[string]any{
				importedUser("cat", "abDES1234567x", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)),
				importedUser("dan", "abDES1234567y", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)),
			}
		}, check: "imported-passwords", status: Warn, want: []string{"1 expired (a weak hash kind past --imported-hash-max-age: these users cannot log in) (cat)", "1 weak, logging in until the first expiry on", "(dan)"},
			fix: "couchnpm import"},
		{name: "_users unreadable", spoil: func(f *fakeCouch) { f.usersOK = false }, check: "imported-passwords", status: Warn,
			want: []string{"cannot read _users for imported passwords"}, fix: "server admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			if tc.spoil != nil {
				tc.spoil(f)
			}
			out := run(t, f, tc.opt)
			got := findStatus(out, tc.check, tc.status)
			if got == nil {
				t.Fatalf("no %s finding with status %s:\n%s", tc.check, tc.status, dump(out))
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Message, w) {
					t.Errorf("%s message %q lacks %q", tc.check, got.Message, w)
				}
			}
			if tc.fix != "" && !strings.Contains(got.Fix, tc.fix) {
				t.Errorf("%s fix %q lacks %q", tc.check, got.Fix, tc.fix)
			}
			if (tc.status == OK) != (got.Fix == "") {
				t.Errorf("%s %s: fix %q (a problem needs a fix, an ok none)", tc.check, tc.status, got.Fix)
			}
			if Failed(out) != (Count(out, Fail) > 0) {
				t.Error("Failed disagrees with Count")
			}
		})
	}
}

// importedUser is a _users document that still holds an imported hash
// (expires "": none).
func importedUser(name, hash, expires string) map[string]any {
	d := map[string]any{"_id": "org.couchdb.user:" + name, "name": name, "type": "user", "roles": []any{}, "couchnpm_imported_hash": hash}
	if expires != "" {
		d["couchnpm_imported_hash_expires"] = expires
	}
	return d
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	c, err := couch.Open(couch.Config{URL: url, Prefix: prefix, Timeout: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	out := Run(context.Background(), Sources{Couch: c, Packages: c.Packuments(couch.RolePackages), Mirror: c.Packuments(couch.RoleMirror), System: c.Docs(couch.RoleSystem)}, Options{})
	if len(out) != 1 || out[0].Status != Fail || !strings.Contains(out[0].Message, "connection refused") || out[0].Fix == "" {
		t.Errorf("unreachable CouchDB: %s", dump(out))
	}
}

func TestWrongPasswordIsOneRequest(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "reason": "Name or password is incorrect."})
	}))
	defer srv.Close()
	c, _ := couch.Open(couch.Config{URL: srv.URL, User: "admin", Password: "wrong", Prefix: prefix, Timeout: time.Second}, zerolog.Nop())
	out := Run(context.Background(), Sources{Couch: c, Packages: c.Packuments(couch.RolePackages), Mirror: c.Packuments(couch.RoleMirror), System: c.Docs(couch.RoleSystem)}, Options{})
	if !Failed(out) || !strings.Contains(out[0].Message, "credentials") {
		t.Errorf("wrong password: %s", dump(out))
	}
	// CouchDB locks an account out after a few failed logins: the doctor
	// stops at the first refusal.
	if hits != 1 {
		t.Errorf("%d requests with refused credentials, want 1", hits)
	}
}

func TestMB(t *testing.T) {
	for n, want := range map[int64]string{8000000: "7.6 MB", 128 << 20: "128 MB", 1536 << 10: "1.5 MB", 300 << 10: "300 KB", 512: "512 bytes", 150 << 20: "150 MB"} {
		if got := mb(n); got != want {
			t.Errorf("mb(%d) = %q, want %q", n, got, want)
		}
	}
}

func writeKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func find(out []Finding, check string) *Finding {
	for i := range out {
		if out[i].Check == check {
			return &out[i]
		}
	}
	return nil
}

func findStatus(out []Finding, check string, s Status) *Finding {
	for i := range out {
		if out[i].Check == check && out[i].Status == s {
			return &out[i]
		}
	}
	return nil
}

func dump(out []Finding) string {
	var b strings.Builder
	for _, f := range out {
		fmt.Fprintf(&b, "  %s %s: %s", f.Status, f.Check, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, " [fix: %s]", f.Fix)
		}
		b.WriteString("\n")
	}
	return b.String()
}
