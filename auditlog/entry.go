// Package auditlog owns couchnpm's audit log: every write and security
// event becomes an append-only entry, and each running process chains its
// entries by hash so that an edited or deleted entry shows when the chain
// is verified. The package is storage-free: the couch package stores the
// entries, handlers and commands record events through Recorder.
package auditlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Recorder takes events to record. Record never blocks on storage and
// never fails the caller's request: the Writer queues the event and writes
// it in the background (see Writer for what happens when CouchDB is down).
// Code that adds a write or a security event (org/team changes, 2FA)
// calls Record once the outcome is known.
type Recorder interface {
	Record(ctx context.Context, ev Event)
}

// Discard is a Recorder that records nothing (audit log off, tests).
type Discard struct{}

// Record implements Recorder.
func (Discard) Record(context.Context, Event) {}

// ActionAuth is the action of refused credentials outside an audited
// route: anyone can cause these at will, so the Writer never lets them
// take more than half its queue.
const ActionAuth = "auth"

// Outcomes of an event.
const (
	OutcomeOK      = "ok"      // the write happened
	OutcomeRefused = "refused" // a 4xx: bad request, not allowed, wrong credentials
	OutcomeFailed  = "failed"  // a 5xx: CouchDB or the upstream failed
)

// OutcomeOf is the outcome of an HTTP status.
func OutcomeOf(status int) string {
	switch {
	case status >= 500:
		return OutcomeFailed
	case status >= 400:
		return OutcomeRefused
	default:
		return OutcomeOK
	}
}

// Event is one thing that happened. Never put a password, a token or an
// Authorization header in any field: tokens appear as the first characters
// of their key (the sha256 that npm token list shows), see TokenRef.
type Event struct {
	At        time.Time // zero: when Record is called
	Actor     string    // the user the request acted for, or the name tried (a failed login)
	Address   string    // the client's address ("" for the command line)
	RequestID string    // X-Request-Id, to find the request's log lines
	Action    string    // e.g. "publish", "dist-tag.add", "token.create", "login"
	Package   string
	Target    string // what in the package or account: a version, a tag, a user, a token key prefix
	Outcome   string // OutcomeOK, OutcomeRefused, OutcomeFailed
	Status    int    // the HTTP status answered (0 outside HTTP)
	Reason    string // why it was refused or failed, as the client was told
}

// Entry is an event as stored: its place in a chain and the hashes that
// link it to the entry before it. Entries are never updated.
type Entry struct {
	Chain     string `json:"chain"`
	Seq       int64  `json:"seq"`
	Instance  string `json:"instance"`
	At        string `json:"at"` // RFC 3339, UTC, microseconds
	Actor     string `json:"actor,omitempty"`
	Address   string `json:"address,omitempty"`
	RequestID string `json:"request,omitempty"`
	Action    string `json:"action"`
	Package   string `json:"package,omitempty"`
	Target    string `json:"target,omitempty"`
	Outcome   string `json:"outcome"`
	Status    int    `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Prev is the hash of the entry before this one in its chain; for a
	// chain's first entry, the hash of the last entry of the same
	// instance's previous chain ("" when there was none).
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// ID is the document id: the chain, then the sequence number zero-padded
// so that ids sort in chain order.
func (e *Entry) ID() string { return EntryID(e.Chain, e.Seq) }

// EntryID is the document id of entry seq of chain.
func EntryID(chain string, seq int64) string { return fmt.Sprintf("%s:%012d", chain, seq) }

// ComputeHash is the hex sha256 of the entry's canonical JSON without its
// Hash: encoding/json's output of Entry, whose fields have a fixed order.
func (e *Entry) ComputeHash() string {
	c := *e
	c.Hash = ""
	b, err := json.Marshal(&c)
	if err != nil { // strings and numbers only: cannot happen
		panic("auditlog: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// maxField bounds each text field: a request cannot make an entry large.
const maxField = 512

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	// Cut on a character boundary: drop the partial sequence at the end.
	return strings.ToValidUTF8(s[:maxField], "") + "…"
}

// newEntry makes the stored form of ev as entry seq of chain after prev.
func newEntry(ev Event, chain, instance string, seq int64, prev string) Entry {
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	e := Entry{
		Chain: chain, Seq: seq, Instance: instance,
		At:    at.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
		Actor: clip(ev.Actor), Address: clip(ev.Address), RequestID: clip(ev.RequestID),
		Action: clip(ev.Action), Package: clip(ev.Package), Target: clip(ev.Target),
		Outcome: ev.Outcome, Status: ev.Status, Reason: clip(ev.Reason), Prev: prev,
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	e.Hash = e.ComputeHash()
	return e
}

// TokenRef is how a token appears in the log: the first 12 hex characters
// of its key (sha256), never the token.
func TokenRef(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}
