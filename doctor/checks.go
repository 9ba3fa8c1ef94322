package doctor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/designdoc"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

func reason(err error) string { return registry.DetailOf(err) }

// checkVersion: Apache CouchDB 3 is what couchnpm runs on in production;
// PouchDB Server is the development stand-in.
func checkVersion(info couch.ServerInfo) Finding {
	f := Finding{Check: "couchdb"}
	switch {
	case info.PouchDB:
		f.Status, f.Message = Warn, "PouchDB Server "+info.Version+": the development stand-in, not for production (no clustering, no size limits, no replication scheduler)"
		f.Fix = "run Apache CouchDB 3 in production (README, Production: CouchDB 3)"
	case strings.HasPrefix(info.Vendor, "Apache CouchDB") || strings.HasPrefix(info.Vendor, "CouchDB"):
		major, _ := strconv.Atoi(strings.SplitN(info.Version, ".", 2)[0])
		switch {
		case major == 3:
			f.Status, f.Message = OK, info.Vendor+" "+info.Version
		case major > 3:
			f.Status, f.Message = Warn, info.Vendor+" "+info.Version+": couchnpm is tested on CouchDB 3 only"
			f.Fix = "run CouchDB 3.x, or run couchnpm's integration suite against this version first"
		default:
			f.Status, f.Message = Fail, info.Vendor+" "+info.Version+": couchnpm needs CouchDB 3 (the replication scheduler, /_node/_local/_config, _users rules)"
			f.Fix = "upgrade CouchDB to 3.x"
		}
	default:
		f.Status, f.Message = Fail, fmt.Sprintf("%s (version %q) answers at COUCHDB_URL, not CouchDB", info.Vendor, info.Version)
		f.Fix = "point COUCHDB_URL at Apache CouchDB 3"
	}
	return f
}

// checkAdmin: couchnpm creates databases, installs design documents,
// keeps accounts in _users and writes _replicator documents: it needs a
// server admin.
func checkAdmin(ctx context.Context, src Sources, limitsErr error) []Finding {
	r, err := src.Couch.AdminRights(ctx)
	if err != nil {
		return []Finding{{Check: "admin", Status: Fail, Message: "cannot ask CouchDB who the service is (GET /_session): " + reason(err),
			Fix: "check COUCHDB_USER and COUCHDB_PASSWORD"}}
	}
	admin := slices.Contains(r.Roles, "_admin")
	var problems []string
	if !admin {
		problems = append(problems, fmt.Sprintf("the user has no _admin role (roles: %s)", strings.Join(r.Roles, ", ")))
	}
	if r.ReadsUsers != nil {
		problems = append(problems, "it cannot read _users: "+reason(r.ReadsUsers))
	}
	if registry.IsKind(limitsErr, registry.KindForbidden) {
		problems = append(problems, "it cannot read the node configuration (/_node/_local/_config)")
	}
	if r.User == "" {
		if admin {
			return []Finding{{Check: "admin", Status: Fail,
				Message: "CouchDB has no admin (admin party): anyone who reaches it may read and change every database",
				Fix:     "create an admin (PUT /_node/_local/_config/admins/NAME) and give couchnpm its name and password in COUCHDB_USER and COUCHDB_PASSWORD"}}
		}
		problems = append([]string{"no COUCHDB_USER is set"}, problems...)
	}
	if len(problems) > 0 {
		return []Finding{{Check: "admin", Status: Fail,
			Message: fmt.Sprintf("user %q is not a server admin: %s; couchnpm creates databases, installs design documents, keeps accounts in _users and replications in _replicator", r.User, strings.Join(problems, "; ")),
			Fix:     "give couchnpm a server admin's credentials (COUCHDB_USER, COUCHDB_PASSWORD; [admins] in CouchDB's local.ini)"}}
	}
	return []Finding{{Check: "admin", Status: OK, Message: fmt.Sprintf("user %q is a server admin (reads _users and the node configuration)", r.User)}}
}

// recommendedDocumentSize is the max_document_size deploy/couchdb.ini sets.
const recommendedDocumentSize = 128 << 20

// minDocumentSize is the floor under which serve warns at start
// (couch/bootstrap.go): real public packuments exceed CouchDB's 8 MB
// default.
const minDocumentSize = 64 << 20

// largest is the largest packument of both databases, with a note on how
// sure that is.
type largest struct {
	name  string
	bytes int64
	notes []string
}

func findLargest(ctx context.Context, src Sources, unusable map[string]bool) largest {
	var l largest
	for _, db := range []Packuments{src.Packages, src.Mirror} {
		if unusable[db.Name()] {
			l.notes = append(l.notes, db.Name()+" not checked (see design-docs)")
			continue
		}
		p, err := db.Largest(ctx)
		switch {
		case registry.IsKind(err, registry.KindNotFound):
			l.notes = append(l.notes, db.Name()+" has no largest view yet (its design document is older than this couchnpm)")
		case err != nil:
			l.notes = append(l.notes, "cannot read the largest view of "+db.Name()+": "+reason(err))
		case p == nil:
		default:
			if p.Stale {
				l.notes = append(l.notes, "the largest view of "+db.Name()+" is still being built: sizes are those indexed so far")
			}
			if p.Bytes > l.bytes {
				l.name, l.bytes = p.Name, p.Bytes
			}
		}
	}
	return l
}

// checkSizes compares CouchDB's size limits with the largest packument
// the registry holds and, when mirroring, the largest it expects from the
// upstream.
func checkSizes(ctx context.Context, src Sources, opt Options, limits couch.SizeLimits, err error, unusable map[string]bool) []Finding {
	if err != nil {
		fix := "check [couchdb] max_document_size and [chttpd] max_http_request_size in CouchDB's configuration: each is a number of bytes"
		if registry.IsKind(err, registry.KindForbidden) {
			fix = "give couchnpm a server admin's credentials, then run couchnpm doctor again"
		}
		return []Finding{{Check: "max_document_size", Status: Fail, Message: "cannot read CouchDB's size limits: " + reason(err), Fix: fix}}
	}
	if !limits.Available {
		// PouchDB Server only: no /_node/_local/_config, and no limits to
		// read (counted in couch/workarounds.go).
		return []Finding{
			{Check: "max_document_size", Status: OK, Message: "not checked: PouchDB Server has no /_node/_local/_config and bounds no document size"},
			{Check: "max_http_request_size", Status: OK, Message: "not checked: PouchDB Server has no /_node/_local/_config"},
		}
	}
	big := findLargest(ctx, src, unusable)
	seen := "no packument of 256 KB or more"
	if big.name != "" {
		seen = fmt.Sprintf("the largest packument, %s, is about %s", big.name, mb(big.bytes))
	}
	need := big.bytes // the largest document to fit
	why := seen
	if opt.Mirror != replication.ModeOff && opt.ExpectMirrored > need {
		need = opt.ExpectMirrored
		why = fmt.Sprintf("%s; the mirror expects upstream packuments up to %s (--expect-packument-size)", seen, mb(opt.ExpectMirrored))
	}
	recommend := max(int64(recommendedDocumentSize), roundMB(2*need))
	if len(limits.Defaults) > 0 {
		why += "; not set, so CouchDB's default: " + strings.Join(limits.Defaults, ", ")
	}
	if len(big.notes) > 0 {
		why += "; " + strings.Join(big.notes, "; ")
	}
	doc := docSizeFinding(limits.MaxDocumentSize, big, need, recommend, why)
	if limits.MaxDocumentSize == 0 {
		doc = Finding{Check: "max_document_size", Status: OK, Message: "[couchdb] max_document_size is infinity: no bound; " + why}
	}
	if doc.Status == OK && len(big.notes) > 0 {
		doc.Status = Warn // the largest packument is not known for sure
		doc.Fix = "start this version's couchnpm serve (it installs the largest view), then run couchnpm doctor again"
	}
	out := []Finding{doc}

	// A write sends the whole document with its new tarballs inline (a
	// publish: the packument plus up to --max-publish-bytes).
	needReq := max(need, big.bytes+opt.MaxPublishBytes)
	req := Finding{Check: "max_http_request_size"}
	switch {
	case limits.MaxHTTPRequestSize == 0:
		req.Status, req.Message = OK, "[chttpd] max_http_request_size is infinity: no bound"
	case limits.MaxHTTPRequestSize < needReq:
		req.Status = Fail
		req.Message = fmt.Sprintf("[chttpd] max_http_request_size is %s: a publish of up to %s (--max-publish-bytes) onto the largest packument sends about %s in one request, which CouchDB refuses",
			mb(limits.MaxHTTPRequestSize), mb(opt.MaxPublishBytes), mb(needReq))
		req.Fix = fmt.Sprintf("set [chttpd] max_http_request_size = %d (deploy/couchdb.ini sets 512 MB), or lower --max-publish-bytes", max(int64(512<<20), roundMB(needReq)))
	default:
		req.Status = OK
		req.Message = fmt.Sprintf("[chttpd] max_http_request_size is %s: room for a %s publish onto the largest packument", mb(limits.MaxHTTPRequestSize), mb(opt.MaxPublishBytes))
	}
	out = append(out, req)
	// base64 in the publish body: the tarball is at most 3/4 of it.
	if a := limits.MaxAttachmentSize; a > 0 && a < opt.MaxPublishBytes/4*3 {
		out = append(out, Finding{Check: "max_attachment_size", Status: Warn,
			Message: fmt.Sprintf("[couchdb] max_attachment_size is %s: tarballs larger than that are refused, though --max-publish-bytes allows about %s", mb(a), mb(opt.MaxPublishBytes/4*3)),
			Fix:     "remove [couchdb] max_attachment_size (no bound), or lower --max-publish-bytes to match"})
	}
	return out
}

func docSizeFinding(limit int64, big largest, need, recommend int64, why string) Finding {
	f := Finding{Check: "max_document_size", Fix: fmt.Sprintf("set [couchdb] max_document_size = %d (%s) in CouchDB's local.ini (deploy/couchdb.ini) and restart CouchDB, or PUT it to /_node/_local/_config/couchdb/max_document_size on every node", recommend, mb(recommend))}
	pre := fmt.Sprintf("[couchdb] max_document_size is %s; %s", mb(limit), why)
	switch {
	case big.bytes > limit:
		f.Status, f.Message = Fail, pre+": CouchDB refuses every change of "+big.name+" (a new version, a dist-tag, a deprecation)"
	case need > limit:
		f.Status, f.Message = Fail, pre+": larger packuments will be refused"
	case 2*big.bytes > limit:
		f.Status, f.Message = Warn, pre+": less than twice the largest, and a packument grows with every version"
	case limit < minDocumentSize:
		f.Status, f.Message = Warn, pre+": below 64 MB, where popular public packages do not fit (serve warns at start too)"
	default:
		f.Status, f.Message, f.Fix = OK, pre, ""
	}
	return f
}

// roundMB rounds n up to whole megabytes.
func roundMB(n int64) int64 { return (n + 1<<20 - 1) / (1 << 20) * (1 << 20) }

// checkDesignDocs compares the installed design documents with this
// binary's. It also returns the databases whose views cannot be read
// (missing, or without a design document), which the later checks skip.
func checkDesignDocs(ctx context.Context, src Sources) ([]Finding, map[string]bool) {
	var out []Finding
	var missingDBs []string
	unusable := map[string]bool{}
	matching := 0
	const serveFix = "start this version's couchnpm serve once: it creates the databases and installs its design documents (check --db-prefix too)"
	for _, d := range designdoc.All() {
		db := src.Couch.DBName(d.DB)
		hash, exists, err := src.Couch.InstalledDesignDoc(ctx, d.DB, d.ID)
		f := Finding{Check: "design-docs", Status: Fail, Fix: serveFix}
		switch {
		case err != nil && !registry.IsKind(err, registry.KindNotFound):
			f.Status, f.Message, f.Fix = Warn, fmt.Sprintf("cannot read %s in %s: %s", d.ID, db, reason(err)), ""
		case !exists:
			missingDBs = append(missingDBs, db)
			unusable[db] = true
			continue
		case err != nil || hash == "":
			unusable[db] = true
			f.Message = fmt.Sprintf("%s is missing in %s: its views and rules are not there", d.ID, db)
		case hash != d.Hash:
			f.Status = Warn
			f.Message = fmt.Sprintf("%s in %s was installed by another couchnpm version (hash %s, this binary's %s)", d.ID, db, short(hash), short(d.Hash))
			f.Fix = "start this version's couchnpm serve (it upgrades them); run one couchnpm version on a CouchDB: instances of different versions reinstall their own in turn"
		default:
			matching++
			continue
		}
		out = append(out, f)
	}
	if len(missingDBs) > 0 {
		out = append([]Finding{{Check: "design-docs", Status: Fail, Fix: serveFix,
			Message: "the registry's databases do not exist: " + strings.Join(missingDBs, ", ")}}, out...)
	}
	if len(out) == 0 {
		out = append(out, Finding{Check: "design-docs", Status: OK, Message: fmt.Sprintf("the %d design documents are this binary's", matching)})
	}
	return out, unusable
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// Replication thresholds: beyond them a replication is reported behind.
const (
	maxFollowerLag     = 15 * time.Minute
	maxChangesPending  = 10000
	replicationFixBase = "see couchnpm replication status, CouchDB's /_scheduler/docs and its log"
)

// checkReplication reads the mirror's follower (follow mode) or its
// _replicator job (replicate mode), and the peer sites' replications.
func checkReplication(ctx context.Context, src Sources, opt Options) []Finding {
	var out []Finding
	switch opt.Mirror {
	case replication.ModeFollow:
		out = append(out, checkFollower(ctx, src, opt.FollowerLease))
	case replication.ModeReplicate:
		out = append(out, checkReplicatorJob(ctx, src, "mirror replication "+opt.MirrorReplication, opt.MirrorReplication))
	}
	for _, p := range opt.Peers {
		out = append(out, checkReplicatorJob(ctx, src, "replication from "+p.Label, p.ID))
	}
	if len(out) == 0 {
		out = append(out, Finding{Check: "replication", Status: OK, Message: "nothing to check: the mirror neither follows nor replicates, and no peer sites are configured"})
	}
	return out
}

func checkFollower(ctx context.Context, src Sources, leaseID string) Finding {
	rep := &replication.Reporter{Mode: replication.ModeFollow, System: src.System,
		// Only the lease's holder is read: no TTL is needed.
		Lease: replication.NewLease(src.System, leaseID, "couchnpm-doctor", 0, zerolog.Nop())}
	st, err := rep.Status(ctx)
	f := Finding{Check: "replication"}
	if err != nil {
		f.Status, f.Message = Warn, "cannot read the mirror follower's state: "+reason(err)
		return f
	}
	lag := "unknown"
	if st.LagSeconds != nil {
		lag = (time.Duration(*st.LagSeconds) * time.Second).String()
	}
	msg := fmt.Sprintf("mirror follower: %s, held by %s, %d packuments written, %d failures, behind by %s", st.State, orNone(st.Holder), st.FollowerWritten, st.Failures, lag)
	switch {
	case st.State == "starting":
		f.Status, f.Message = Warn, "mirror follower: no checkpoint yet (it has not run)"
		f.Fix = "start couchnpm serve with --mirror follow"
	case st.Holder == "":
		// "stopped": the last follower shut down cleanly; either way no
		// instance follows the upstream now.
		f.Status, f.Message = Warn, msg+": no instance holds the follower lease"
		f.Fix = "start couchnpm serve with --mirror follow (one instance follows; the others stand by)"
	case st.LagSeconds != nil && time.Duration(*st.LagSeconds)*time.Second > maxFollowerLag:
		f.Status, f.Message = Warn, msg
		if st.LastError != "" {
			f.Message += "; last error: " + st.LastError
		}
		f.Fix = "see couchnpm mirror status and the holder's log; check the upstream's _changes URL (--upstream-changes)"
	default:
		f.Status, f.Message = OK, msg
	}
	return f
}

// checkReplicatorJob reads a _replicator job's state: CouchDB 3's
// scheduler states (running, pending, crashing, failed, error,
// completed), or on PouchDB Server the document's _replication_state
// (triggered, error, completed).
func checkReplicatorJob(ctx context.Context, src Sources, what, id string) Finding {
	f := Finding{Check: "replication"}
	st, err := src.Couch.ReplicationState(ctx, id)
	if registry.IsKind(err, registry.KindNotFound) {
		f.Status, f.Message = Fail, what+": no _replicator document"
		f.Fix = "start couchnpm serve with this configuration: it creates the document"
		return f
	}
	if err != nil {
		f.Status, f.Message = Warn, what+": cannot read its state: "+reason(err)
		return f
	}
	state, _ := st["state"].(string)
	info, _ := st["info"].(map[string]any)
	detail := ""
	if e, ok := info["error"].(string); ok && e != "" {
		detail = e
	} else if r, ok := st["reason"].(string); ok && r != "" {
		detail = r
	}
	msg := what + ": " + orNone(state)
	if detail != "" {
		msg += " (" + detail + ")"
	}
	var pending float64
	if p, ok := info["changes_pending"].(float64); ok {
		pending = p
		msg += fmt.Sprintf(", %.0f changes pending", p)
	}
	switch state {
	case "running", "triggered":
		f.Status, f.Message = OK, msg
		if pending > maxChangesPending {
			f.Status, f.Fix = Warn, "the replication is behind: "+replicationFixBase
		}
	case "pending", "initializing", "":
		f.Status, f.Message, f.Fix = Warn, msg+": waiting to run", "CouchDB runs [replicator] max_jobs replications at once; "+replicationFixBase
	case "crashing", "failed", "error":
		f.Status, f.Message, f.Fix = Fail, msg, "fix what the error names (credentials, URL, the peer or upstream being down); "+replicationFixBase
	default: // completed: a continuous replication should never complete
		f.Status, f.Message, f.Fix = Warn, msg, "couchnpm serve recreates a continuous replication at start; "+replicationFixBase
	}
	return f
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Clock skew bounds. Leases, token and login expiries, the unpublish
// window and signing keys' expiry compare times written by different
// hosts; a key rotation's grace is one minute.
const (
	warnSkew = 2 * time.Second
	failSkew = 30 * time.Second
)

// checkClock compares CouchDB's Date header with the local clock. Date
// has whole seconds: the server's time lies in [Date, Date+1s), read
// between Sent and Received, so only a difference outside that window is
// skew.
func checkClock(info couch.ServerInfo) Finding {
	f := Finding{Check: "clock"}
	if info.Date.IsZero() {
		f.Status, f.Message = Warn, "CouchDB's answer has no Date header: clock skew not checked"
		f.Fix = "a proxy in front of CouchDB may drop the header; compare the clocks by hand (date -u on both hosts)"
		return f
	}
	lo := info.Date.Sub(info.Received)              // server ahead by at least this
	hi := info.Date.Add(time.Second).Sub(info.Sent) // and at most this
	var skew time.Duration
	switch {
	case lo > 0:
		skew = lo
	case hi < 0:
		skew = hi
	}
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	msg := fmt.Sprintf("CouchDB's clock is %s %s this host's", abs.Round(time.Millisecond), way)
	fix := "synchronise the clocks of this host and CouchDB's with NTP (chrony, systemd-timesyncd)"
	switch {
	case abs >= failSkew:
		f.Status, f.Message, f.Fix = Fail, msg+": leases, token expiries and signing key rotation compare times across hosts", fix
	case abs >= warnSkew:
		f.Status, f.Message, f.Fix = Warn, msg, fix
	default:
		f.Status, f.Message = OK, fmt.Sprintf("CouchDB's clock agrees with this host's (skew under %s)", warnSkew)
	}
	return f
}

// checkConflicts counts the documents with conflicting revisions (the
// conflicts view) in the packages and mirror databases.
func checkConflicts(ctx context.Context, src Sources, unusable map[string]bool) []Finding {
	const limit = 1000
	var out []Finding
	checked := 0
	for _, db := range []Packuments{src.Packages, src.Mirror} {
		if unusable[db.Name()] {
			continue // design-docs says why
		}
		checked++
		ids, err := db.Conflicted(ctx, limit)
		if err != nil {
			out = append(out, Finding{Check: "conflicts", Status: Warn, Message: "cannot read the conflicts view of " + db.Name() + ": " + reason(err)})
			continue
		}
		if len(ids) == 0 {
			continue
		}
		n := strconv.Itoa(len(ids))
		if len(ids) >= limit {
			n = "at least " + n
		}
		out = append(out, Finding{Check: "conflicts", Status: Warn,
			Message: fmt.Sprintf("%s documents in %s have conflicting revisions (%s)", n, db.Name(), strings.Join(ids[:min(len(ids), 5)], ", ")),
			Fix:     "a running couchnpm serve merges them as it sees them (GET /-/conflicts/status); if they stay, look for \"could not merge conflicting revisions\" in its log"})
	}
	if len(out) == 0 && checked == 0 {
		out = append(out, Finding{Check: "conflicts", Status: OK, Message: "not checked: no conflicts view to read (see design-docs)"})
	} else if len(out) == 0 {
		out = append(out, Finding{Check: "conflicts", Status: OK, Message: "no document has conflicting revisions"})
	}
	return out
}

// checkSigningKey: the key given with --signing-key-file parses, or the
// stored keyring has an active key.
func checkSigningKey(ctx context.Context, src Sources, opt Options) Finding {
	f := Finding{Check: "signing-key"}
	if opt.SigningKeyFile != "" {
		data, err := os.ReadFile(opt.SigningKeyFile)
		if err == nil {
			var k registry.SigningKey
			if k, err = registry.ParseSigningKeyPEM(data, opt.Now()); err == nil {
				f.Status, f.Message = OK, fmt.Sprintf("--signing-key-file %s holds key %s", opt.SigningKeyFile, k.KeyID)
				return f
			}
		}
		f.Status, f.Message = Fail, fmt.Sprintf("--signing-key-file %s: %s", opt.SigningKeyFile, reason(err))
		f.Fix = "give a PEM PKCS#8 ECDSA P-256 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256), or leave the flag out to use the stored keys"
		return f
	}
	keys, err := registry.NewKeyring(src.System, nil).Keys(ctx)
	if err != nil {
		f.Status, f.Message = Warn, "cannot read the signing keys: "+reason(err)
		return f
	}
	now := opt.Now()
	for i := len(keys) - 1; i >= 0; i-- {
		if k := keys[i]; k.Expires == nil || now.Before(*k.Expires) {
			f.Status, f.Message = OK, fmt.Sprintf("signing key %s is active (keyring of %d)", k.KeyID, len(keys))
			return f
		}
	}
	f.Status, f.Fix = Warn, "start couchnpm serve (it creates a key), or run couchnpm keys rotate"
	if len(keys) == 0 {
		f.Message = "no signing key yet: versions are published unsigned and npm audit signatures fails"
	} else {
		f.Message = fmt.Sprintf("every one of the %d signing keys has expired", len(keys))
	}
	return f
}
