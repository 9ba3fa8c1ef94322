//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// peerDoc is a _replicator document as couchnpm writes it for a peer.
type peerDoc struct {
	ID     string   `json:"_id"`
	Rev    string   `json:"_rev"`
	Owner  string   `json:"couchnpm"`
	Scopes []string `json:"couchnpm_scopes"`
	Source string   `json:"source"`
	Target string   `json:"target"`
}

// replicatorDocs reads every document of the suite CouchDB's _replicator
// database, by id.
func replicatorDocs(t *testing.T) map[string]peerDoc {
	t.Helper()
	st, body, err := couchDo("GET", "/_replicator/_all_docs?include_docs=true", nil, true)
	if err != nil || st != 200 {
		t.Fatalf("list _replicator: %d %v %s", st, err, body)
	}
	var all struct {
		Rows []struct {
			Doc peerDoc `json:"doc"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]peerDoc{}
	for _, r := range all.Rows {
		out[r.Doc.ID] = r.Doc
	}
	return out
}

// scoped are the peer documents that list scope.
func scoped(docs map[string]peerDoc, scope string) map[string]peerDoc {
	out := map[string]peerDoc{}
	for id, d := range docs {
		if d.Owner == "peer-scoped" && slices.Contains(d.Scopes, scope) {
			out[id] = d
		}
	}
	return out
}

// peersReported waits until reg has read its peer links' state (which it
// does after its first ensure) and returns them, read with token (an
// admin's shows the peers' addresses; anyone else sees them numbered); on
// CouchDB it also waits for every link to run.
func peersReported(t *testing.T, reg *registry, token string, n int) []struct{ Peer, DB, State string } {
	t.Helper()
	var peers []struct{ Peer, DB, State string }
	eventually(t, 60*time.Second, reg.URL+" reports its peer links", func() (bool, string) {
		h := reg.do("GET", "/-/replication/status", token, nil)
		var st struct {
			Peers []struct{ Peer, DB, State string }
		}
		if h.Status != 200 || json.Unmarshal(h.Body, &st) != nil || len(st.Peers) != n {
			return false, h.String()
		}
		for _, p := range st.Peers {
			if !suite.ownCouch && p.State != "running" {
				return false, h.String()
			}
		}
		peers = st.Peers
		return true, ""
	})
	return peers
}

// Bug: a registry's ensure deleted every peer _replicator document that
// was not its own, so two registries (different prefixes) on one CouchDB
// kept deleting each other's peer replications. Promise: each keeps its
// own through the other's ensure and restarts; the status shows only its
// own peers; old-form documents are removed only when they target the
// registry's own databases; a _users link two registries share stays
// while one still keeps it; a restart writes nothing when nothing changed.
func TestPeerReplicationsOfTwoRegistriesOnOneCouchDB(t *testing.T) {
	u, err := url.Parse(suite.couchURL)
	if err != nil {
		t.Fatal(err)
	}
	// Each registry's peer is this same CouchDB under another host name:
	// different peers, each database replicating onto itself (a no-op).
	other := strings.Replace(suite.couchURL, "127.0.0.1", "localhost", 1)
	if u.Hostname() == "localhost" {
		other = strings.Replace(suite.couchURL, "localhost", "127.0.0.1", 1)
	}
	peerA, peerB := withCredentials(other), withCredentials(suite.couchURL)
	shownA, shownB := strings.TrimRight(other, "/"), strings.TrimRight(suite.couchURL, "/")
	pa, pb, gone := newPrefix(), newPrefix(), newPrefix()
	couchDB := !suite.ownCouch // PouchDB Server never removes peer documents

	legacy := map[string]string{ // old-form document id -> target database
		"couchnpm-peer-old-" + pa:       pa + "-tokens", // A's: removed by A
		"couchnpm-peer-old-" + gone:     gone,           // a registry not running: kept
		"couchnpm-peer-old-users-" + pa: "_users",       // anyone's: kept
	}
	t.Cleanup(func() {
		if !couchDB {
			return // deleting a running replication's document crashes PouchDB Server
		}
		for id, d := range replicatorDocs(t) {
			if _, old := legacy[id]; old || slices.Contains(d.Scopes, pa) || slices.Contains(d.Scopes, pb) {
				couchDo("DELETE", "/_replicator/"+url.PathEscape(id)+"?rev="+d.Rev, nil, true)
			}
		}
		for _, p := range []string{pa, pb, gone} {
			dropDatabases(t, p)
		}
	})
	if st, body, err := couchDo("PUT", "/"+gone, nil, true); err != nil || st/100 != 2 {
		t.Fatalf("create %s: %d %v %s", gone, st, err, body)
	}

	// The peers' addresses are for admins: each registry's admin reads the
	// status (the account and its token outlive restarts).
	admins := map[string]string{} // prefix → an admin's token
	start := func(prefix string, peers ...string) *registry {
		args := []string{"--replication-target", suite.couchURL, "--admins", "psroot-" + prefix}
		for _, p := range peers {
			args = append(args, "--peer", p)
		}
		reg := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: args})
		if _, ok := admins[prefix]; !ok {
			_, admins[prefix] = rawAddUser(t, reg, "psroot")
		}
		return reg
	}
	reported := func(reg *registry, n int) []struct{ Peer, DB, State string } {
		t.Helper()
		return peersReported(t, reg, admins[reg.Prefix], n)
	}
	onlyPeer := func(reg *registry, peers []struct{ Peer, DB, State string }, shown string) {
		t.Helper()
		for _, p := range peers {
			if p.Peer != shown {
				t.Errorf("%s (%s) reports a peer not its own: %+v", reg.URL, reg.Prefix, p)
			}
		}
	}
	check := func(when string) (a, b map[string]peerDoc) {
		t.Helper()
		docs := replicatorDocs(t)
		a, b = scoped(docs, pa), scoped(docs, pb)
		if len(a) != 3 || len(b) != 3 {
			t.Fatalf("%s: want 3 peer documents for each registry, have %d for A and %d for B", when, len(a), len(b))
		}
		for _, d := range a {
			if !strings.HasSuffix(d.Target, "/"+pa) && !strings.HasSuffix(d.Target, "/"+pa+"-tokens") && !strings.HasSuffix(d.Target, "/_users") {
				t.Errorf("%s: A's document %s targets %s", when, d.ID, redactURL(d.Target))
			}
		}
		return a, b
	}

	a := start(pa, peerA)
	onlyPeer(a, reported(a, 3), shownA)
	b := start(pb, peerB)
	onlyPeer(b, reported(b, 3), shownB)
	check("both started")

	// Old-form documents (before scopes), each replicating a database onto
	// itself.
	for id, db := range legacy {
		self := withCredentials(suite.couchURL) + "/" + db
		doc := map[string]any{"source": self, "target": self, "continuous": true, "couchnpm": "peer"}
		if st, body, err := couchDo("PUT", "/_replicator/"+url.PathEscape(id), mustJSON(doc), true); err != nil || st/100 != 2 {
			t.Fatalf("plant %s: %d %v %s", id, st, err, body)
		}
	}

	// Restart A: it runs its ensure again, after B's.
	a.stop()
	docsBefore := replicatorDocs(t)
	a = start(pa, peerA)
	onlyPeer(a, reported(a, 3), shownA)
	docsA, docsB := check("A restarted")
	for id, d := range docsA {
		if docsBefore[id].Rev != d.Rev {
			t.Errorf("A's restart rewrote its unchanged document %s (%s -> %s)", id, docsBefore[id].Rev, d.Rev)
		}
	}
	for id, d := range docsB {
		if docsBefore[id].Rev != d.Rev {
			t.Errorf("A's restart rewrote B's document %s", id)
		}
	}
	after := replicatorDocs(t)
	for id, db := range legacy {
		_, there := after[id]
		want := !couchDB || db != pa+"-tokens"
		if there != want {
			t.Errorf("old-form document into %s: present %v after A's ensure, want %v", db, there, want)
		}
	}

	// Restart B: A's documents stay.
	b.stop()
	b = start(pb, peerB)
	onlyPeer(b, reported(b, 3), shownB)
	status := exec.Command(suite.bin, "replication", "status", "--url", b.URL)
	status.Env = append(envWithout(os.Environ(), "COUCHNPM_"), "COUCHNPM_TOKEN="+admins[pb])
	if out, err := status.CombinedOutput(); err != nil ||
		!strings.Contains(string(out), shownB) || strings.Contains(string(out), shownA) || !strings.Contains(string(out), "_users") {
		t.Errorf("couchnpm replication status of B must list B's peer only: %v\n%s", err, out)
	}
	docsA2, _ := check("B restarted")
	for id, d := range docsA {
		if docsA2[id].Rev != d.Rev {
			t.Errorf("B's restart touched A's document %s", id)
		}
	}
	if !couchDB {
		return // the rest is about removal, which PouchDB Server never does
	}

	// B also names A's peer: the _users link is one document for both
	// (CouchDB fails a duplicate replication), kept by both.
	var sharedID string
	for id, d := range docsA {
		if strings.HasSuffix(d.Target, "/_users") {
			sharedID = id
		}
	}
	b.stop()
	b = start(pb, peerB, peerA)
	reported(b, 6)
	if d := replicatorDocs(t)[sharedID]; !slices.Equal(d.Scopes, []string{pa, pb}) {
		t.Fatalf("shared _users document: scopes %q, want both registries", d.Scopes)
	}
	// B drops A's peer again: its own documents for that peer go, the
	// shared one stays for A, and A's are untouched.
	b.stop()
	b = start(pb, peerB)
	onlyPeer(b, reported(b, 3), shownB)
	docsA3, _ := check("B dropped A's peer")
	if d := docsA3[sharedID]; !slices.Equal(d.Scopes, []string{pa}) {
		t.Errorf("shared _users document after B dropped it: scopes %q, want A's only", d.Scopes)
	}
	for id := range docsA {
		if _, ok := docsA3[id]; !ok {
			t.Errorf("A's document %s is gone after B dropped the same peer", id)
		}
	}
	for id, d := range replicatorDocs(t) {
		if slices.Contains(d.Scopes, pb) && strings.HasPrefix(d.Source, peerA+"/") {
			t.Errorf("B's document %s for the peer it dropped is still there", id)
		}
	}

	// A drops its last peer: at its start its documents go, B's stay.
	a.stop()
	start(pa)
	eventually(t, 30*time.Second, "A's documents removed once it has no peer", func() (bool, string) {
		docs := replicatorDocs(t)
		return len(scoped(docs, pa)) == 0, fmt.Sprintf("%d left", len(scoped(docs, pa)))
	})
	if n := len(scoped(replicatorDocs(t), pb)); n != 3 {
		t.Errorf("B has %d peer documents after A dropped its last peer, want 3", n)
	}
}

// redactURL drops the credentials of a URL for a test message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
}
