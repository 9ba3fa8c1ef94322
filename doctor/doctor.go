// Package doctor checks the CouchDB a couchnpm installation runs on: the
// server and its version, the size limits against the largest packuments,
// admin rights, the design documents, replication health, clock skew,
// open conflicts, the signing key and accounts still holding an imported
// password. Each finding says what to do about
// it. It only reads: the doctor changes nothing.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/replication"
)

// Status is a finding's verdict.
type Status string

// The verdicts: a failure makes `couchnpm doctor` exit non-zero.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Finding is the result of one check.
type Finding struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix says what to do; empty when there is nothing to do.
	Fix string `json:"fix,omitempty"`
}

// CouchDB is what the checks read of the server (couch.Client).
type CouchDB interface {
	ServerInfo(ctx context.Context) (couch.ServerInfo, error)
	SizeLimits(ctx context.Context) (couch.SizeLimits, error)
	AdminRights(ctx context.Context) (couch.AdminRights, error)
	InstalledDesignDoc(ctx context.Context, role, id string) (hash string, exists bool, err error)
	ReplicationState(ctx context.Context, id string) (map[string]any, error)
	DBName(role string) string
}

// Packuments is what the checks read of a packument database
// (couch.Packuments).
type Packuments interface {
	Name() string
	Largest(ctx context.Context) (*couch.LargestPackument, error)
	Conflicted(ctx context.Context, limit int) ([]string, error)
}

// Accounts is what the checks read of _users (couch.Users).
type Accounts interface {
	ImportedAccounts(ctx context.Context) ([]couch.ImportedAccount, error)
}

// Sources are the databases the checks read.
type Sources struct {
	Couch    CouchDB
	Packages Packuments
	Mirror   Packuments
	// System holds the signing keys and the follower's checkpoint and
	// lease.
	System replication.DocStore
	// Accounts is _users, for the accounts still holding an imported
	// password (nil: not checked).
	Accounts Accounts
}

// Options are what the checks compare against: the registry's
// configuration, as serve is given it.
type Options struct {
	Mirror replication.Mode
	// ExpectMirrored is the largest packument the mirror is expected to
	// meet (some public packuments exceed 50 MB).
	ExpectMirrored int64
	// MaxPublishBytes is serve's --max-publish-bytes.
	MaxPublishBytes int64
	// SigningKeyFile is serve's --signing-key-file ("" : the stored keys).
	SigningKeyFile string
	// MirrorReplication is the mirror's _replicator document id
	// (replicate mode).
	MirrorReplication string
	// FollowerLease is the follower lease's document id (follow mode).
	FollowerLease string
	// Peers are the peer sites' replications serve keeps
	// (replication.PeerLinks of its --peer flags).
	Peers []PeerReplication
	// Verbose names the accounts behind counts (doctor --verbose).
	Verbose bool
	// Now is the local clock (time.Now when nil).
	Now func() time.Time
}

// PeerReplication is one replication from a peer site.
type PeerReplication struct {
	ID    string // the _replicator document's id
	Label string // the peer (no credentials) and the database, for people
}

// Run runs every check and returns the findings in a stable order. When
// CouchDB cannot be reached at all, that is the only finding.
func Run(ctx context.Context, src Sources, opt Options) []Finding {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	info, err := src.Couch.ServerInfo(ctx)
	if err != nil {
		return []Finding{{Check: "couchdb", Status: Fail, Message: "cannot read CouchDB's welcome: " + reason(err),
			Fix: "check COUCHDB_URL, COUCHDB_USER and COUCHDB_PASSWORD, and that CouchDB runs"}}
	}
	var out []Finding
	out = append(out, checkVersion(info))
	limits, limitsErr := src.Couch.SizeLimits(ctx)
	out = append(out, checkAdmin(ctx, src, limitsErr)...)
	ddocs, unusable := checkDesignDocs(ctx, src)
	out = append(out, checkSizes(ctx, src, opt, limits, limitsErr, unusable)...)
	out = append(out, ddocs...)
	out = append(out, checkReplication(ctx, src, opt)...)
	out = append(out, checkClock(info))
	out = append(out, checkConflicts(ctx, src, unusable)...)
	out = append(out, checkSigningKey(ctx, src, opt))
	if src.Accounts != nil {
		out = append(out, checkImportedPasswords(ctx, src.Accounts, opt)) // passwords.go
	}
	return out
}

// Failed reports whether any finding is a failure.
func Failed(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Status == Fail })
}

// Count counts the findings of status s.
func Count(findings []Finding, s Status) int {
	n := 0
	for _, f := range findings {
		if f.Status == s {
			n++
		}
	}
	return n
}

// mb writes a size for people: 8 MB, 1.5 MB, 300 KB.
func mb(n int64) string {
	switch {
	case n >= 1<<20:
		v := float64(n) / (1 << 20)
		if v == float64(int64(v)) || v >= 100 {
			return fmt.Sprintf("%.0f MB", v)
		}
		return fmt.Sprintf("%.1f MB", v)
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
