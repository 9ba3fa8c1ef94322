//go:build integration

package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// orgDoc reads org's document on the CouchDB node at base, raw, with the
// revisions it conflicts with.
func orgDoc(t *testing.T, base, prefix, org string) (doc map[string]any, conflicts []string) {
	t.Helper()
	doc, conflicts, err := tryOrgDoc(base, prefix, org)
	if err != nil {
		t.Fatal(err)
	}
	return doc, conflicts
}

func tryOrgDoc(base, prefix, org string) (doc map[string]any, conflicts []string, err error) {
	st, body, err := couchDoAt(base, "GET", "/"+url.PathEscape(prefix+"-system")+"/"+url.PathEscape("org:"+org)+"?conflicts=true", nil, true)
	if err == nil && st != 200 {
		err = fmt.Errorf("GET org:%s on %s: %d %s", org, base, st, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if cs, ok := doc["_conflicts"].([]any); ok {
		for _, c := range cs {
			conflicts = append(conflicts, fmt.Sprint(c))
		}
	}
	return doc, conflicts, err
}

// orgMembers runs npm org ls org --json as u.
func orgMembers(t *testing.T, u *npmUser, org string) map[string]string {
	t.Helper()
	res := u.mustRunIn("", "org", "ls", org, "--json")
	var m map[string]string
	if err := json.Unmarshal([]byte(res.Stdout), &m); err != nil {
		t.Fatalf("npm org ls %s --json: %v\n%s", org, err, res)
	}
	return m
}

// Promise: on a three-node CouchDB 3 cluster, an org changed on two sides
// of a partition keeps both changes once the sides meet again, whichever
// revision CouchDB picks as its winner: a member removed on one side
// (npm org rm) stays removed — npm org ls does not list them and they
// cannot install the restricted package their team was granted — and a
// member added on the other side (npm org set) stays added, through either
// couchnpm instance; the merge is written and the conflict closed.
//
// The partition: nodes 2 and 3 are stopped while npm org rm goes through
// instance A (node 1, stored short of the quorum: 202); then node 1 is
// stopped and nodes 2 and 3 started while npm org set goes through
// instance B (node 2, on the revision from before the removal); then node
// 1 comes back and CouchDB's internal replication makes the two revisions
// conflict.
func TestClusterOrgChangesOnBothSidesOfAPartitionBothHold(t *testing.T) {
	nodes := startCouchNodes(t, 3, true)
	prefix := newPrefix()
	a := startRegistry(t, registryOpts{Prefix: prefix, CouchURL: nodes[0].URL})
	b := startRegistry(t, registryOpts{Prefix: prefix, CouchURL: nodes[1].URL})
	login := func(name string) *npmUser {
		u := newNPMUser(t, a, name)
		u.mustLogin(name, "Pw-orgconflicts-5b7e21c9", name+"@example.com")
		return u
	}
	alice, bob := login("coalice"), login("cobob")
	login("cocarol")
	const org, secret = "coorg", "@coorg/secret"

	alice.mustOwnOrg(org, "coalice")
	alice.mustRunIn(writePackage(t, secret, "1.0.0", "secret-1.0.0"), "publish", "--access", "restricted")
	alice.mustRunIn("", "org", "set", org, "cobob", "developer")
	alice.mustRunIn("", "team", "create", org+":core")
	alice.mustRunIn("", "team", "add", org+":core", "cobob")
	alice.mustRunIn("", "access", "grant", "read-write", org+":core", secret)
	bob.mustRunIn(writeProject(t, map[string]string{secret: "1.0.0"}), "install")

	// Side 1: only node 1 is up; npm org rm through instance A.
	nodes[1].stop()
	nodes[2].stop()
	alice.mustRunIn("", "org", "rm", org, "cobob")
	removed, _ := orgDoc(t, nodes[0].URL, prefix, org)

	// Side 2: node 1 down, nodes 2 and 3 up (and still on the revision
	// before the removal); npm org set through instance B.
	nodes[0].stop()
	for _, n := range nodes[1:] {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	aliceB := withToken(t, b, "coalice-b", alice.token())
	aliceB.mustRunIn("", "org", "set", org, "cocarol", "developer")
	added, _ := orgDoc(t, nodes[1].URL, prefix, org)
	if removed["_rev"] == added["_rev"] {
		t.Fatalf("both sides wrote the same revision %v: no partition", removed["_rev"])
	}

	// The sides meet: wait for CouchDB to show the conflict.
	if err := nodes[0].start(); err != nil {
		t.Fatal(err)
	}
	var winner map[string]any
	var conflicts []string
	took, ok := waitFor(90*time.Second, func() bool {
		winner, conflicts, _ = tryOrgDoc(nodes[0].URL, prefix, org)
		return len(conflicts) > 0
	})
	if !ok {
		t.Fatalf("no conflict on org:%s after %s: winner %v", org, took, winner)
	}
	members, _ := winner["members"].(map[string]any)
	_, winnerHasBob := members["cobob"]
	_, winnerHasCarol := members["cocarol"]
	t.Logf("conflict after %s; CouchDB's winner %v has cobob=%v cocarol=%v (the winner alone would lose a change)", took.Round(time.Millisecond), winner["_rev"], winnerHasBob, winnerHasCarol)

	bobB := withToken(t, b, "cobob-b", bob.token())
	for _, u := range []struct {
		alice, bob *npmUser
	}{{alice, bob}, {aliceB, bobB}} {
		got := orgMembers(t, u.alice, org)
		if _, ok := got["cobob"]; ok || got["cocarol"] != "developer" || got["coalice"] != "owner" {
			t.Errorf("npm org ls %s through %s = %v, want coalice owner and cocarol developer, no cobob", org, u.alice.reg.URL, got)
		}
		res := u.alice.mustRunIn("", "team", "ls", org+":core")
		if strings.Contains(res.Stdout, "cobob") {
			t.Errorf("npm team ls %s:core through %s still lists cobob:\n%s", org, u.alice.reg.URL, res)
		}
		u.bob.mustFail(writeProject(t, map[string]string{secret: "1.0.0"}), []string{"E404"}, "install", "--prefer-online")
		u.bob.mustFail("", []string{"E404"}, "view", secret, "--prefer-online")
		u.bob.mustFail("", []string{"E404"}, "org", "ls", org)
	}

	// The reads wrote the merge and deleted the loser.
	var open []string
	took, ok = waitFor(30*time.Second, func() bool {
		_, open, _ = tryOrgDoc(nodes[0].URL, prefix, org)
		return len(open) == 0
	})
	if !ok {
		t.Errorf("org:%s still has conflicts %v after %s", org, open, took)
	}
	if !strings.Contains(a.Stderr.String()+b.Stderr.String(), "merged conflicting revisions of an org") {
		t.Errorf("no instance logged the org merge")
	}
}

// addLosingSibling stores, beside the current revision of document id in
// database db on the suite's CouchDB, a sibling revision made by change
// (as another node of a cluster would have written it on the same parent,
// or, for a document at its first revision, created it),
// with new_edits=false. Its revision hash sorts first, so CouchDB's winner
// stays the current revision: the change is on the side CouchDB hides.
func addLosingSibling(t *testing.T, db, id string, change func(doc map[string]any)) {
	t.Helper()
	path := "/" + url.PathEscape(db) + "/" + url.PathEscape(id)
	st, body, err := couchDo("GET", path+"?revs=true", nil, true)
	var doc map[string]any
	if err != nil || st != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("GET %s: %d %s %v", path, st, body, err)
	}
	var revs struct {
		Start int      `json:"start"`
		IDs   []string `json:"ids"`
	}
	raw, _ := json.Marshal(doc["_revisions"])
	if json.Unmarshal(raw, &revs) != nil || len(revs.IDs) == 0 {
		t.Fatalf("%s: no revision history: %s", id, raw)
	}
	change(doc)
	low := strings.Repeat("0", 32)
	doc["_rev"] = fmt.Sprintf("%d-%s", revs.Start, low)
	ids := []string{low}
	if len(revs.IDs) > 1 {
		ids = append(ids, revs.IDs[1]) // the same parent
	} // else a first revision of its own: two creations on two nodes
	doc["_revisions"] = map[string]any{"start": revs.Start, "ids": ids}
	st, body, err = couchDo("POST", "/"+url.PathEscape(db)+"/_bulk_docs", mustJSON(map[string]any{"docs": []any{doc}, "new_edits": false}), true)
	if err != nil || st/100 != 2 {
		t.Fatalf("store a sibling of %s: %d %s %v", id, st, body, err)
	}
	if _, conflicts, err := tryOrgDocIn(suite.couchURL, db, id); err != nil || len(conflicts) != 1 {
		t.Fatalf("%s after storing a sibling: conflicts %v, %v", id, conflicts, err)
	}
}

// tryOrgDocIn is tryOrgDoc for any document of any database.
func tryOrgDocIn(base, db, id string) (doc map[string]any, conflicts []string, err error) {
	st, body, err := couchDoAt(base, "GET", "/"+url.PathEscape(db)+"/"+url.PathEscape(id)+"?conflicts=true", nil, true)
	if err == nil && st != 200 {
		err = fmt.Errorf("GET %s/%s: %d %s", db, id, st, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if cs, ok := doc["_conflicts"].([]any); ok {
		for _, c := range cs {
			conflicts = append(conflicts, fmt.Sprint(c))
		}
	}
	return doc, conflicts, err
}

// Promise: on any server the suite runs against (CouchDB 3, PouchDB
// Server), a conflicting revision CouchDB hides is merged before access is
// decided: a member removed on the hidden side (as another cluster node
// wrote it) cannot read the restricted package their team was granted and
// is not in npm org ls, and a signing key added on the hidden side is
// served by GET /-/npm/v1/keys (npm audit signatures reads it); both
// conflicts are closed by the reads.
func TestConflictingOrgAndKeyringRevisionsMerge(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	login := func(name string) *npmUser {
		u := newNPMUser(t, reg, name)
		u.mustLogin(name, "Pw-orgconflicts-3c9d04ab", name+"@example.com")
		return u
	}
	alice, bob := login("cfalice"), login("cfbob")
	const org, secret = "cforg", "@cforg/secret"
	alice.mustOwnOrg(org, "cfalice")
	alice.mustRunIn(writePackage(t, secret, "1.0.0", "secret-1.0.0"), "publish", "--access", "restricted")
	alice.mustRunIn("", "org", "set", org, "cfbob", "developer")
	alice.mustRunIn("", "team", "create", org+":core")
	alice.mustRunIn("", "team", "add", org+":core", "cfbob")
	alice.mustRunIn("", "access", "grant", "read-only", org+":core", secret)
	bob.mustRunIn("", "view", secret, "version", "--prefer-online")

	system := reg.Prefix + "-system"
	later := time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano)
	addLosingSibling(t, system, "org:"+org, func(doc map[string]any) {
		// npm org rm cforg cfbob, as couchnpm writes it.
		delete(doc["members"].(map[string]any), "cfbob")
		changed := doc["changed"].(map[string]any)
		changed["member/cfbob"], changed["role/cfbob"] = later, later
		for name, team := range doc["teams"].(map[string]any) {
			tm := team.(map[string]any)
			members, _ := tm["members"].([]any)
			kept := []any{}
			for _, m := range members {
				if m != "cfbob" {
					kept = append(kept, m)
				}
			}
			tm["members"] = kept
			changed["team/"+name+"/member/cfbob"] = later
		}
	})
	winner, _, _ := tryOrgDocIn(suite.couchURL, system, "org:"+org)
	if _, ok := winner["members"].(map[string]any)["cfbob"]; !ok {
		t.Fatalf("CouchDB's winner lost cfbob already: the test shows nothing")
	}
	bob.mustFail("", []string{"E404"}, "view", secret, "--prefer-online")
	bob.mustFail(writeProject(t, map[string]string{secret: "1.0.0"}), []string{"E404"}, "install", "--prefer-online")
	if got := orgMembers(t, alice, org); got["cfalice"] != "owner" || got["cfbob"] != "" {
		t.Errorf("npm org ls %s = %v, want cfalice owner and no cfbob", org, got)
	}
	if _, open, err := tryOrgDocIn(suite.couchURL, system, "org:"+org); err != nil || len(open) != 0 {
		t.Errorf("org:%s still has conflicts %v (%v) after the reads", org, open, err)
	}

	// The keyring: a rotation on the hidden side added a key.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	sum := sha256.Sum256(spki)
	keyID := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	if h := reg.do("GET", "/-/npm/v1/keys", "", nil); h.Status != 200 {
		t.Fatalf("GET /-/npm/v1/keys: %s", h) // the keyring exists (created at start)
	}
	addLosingSibling(t, system, "signing-keys", func(doc map[string]any) {
		doc["keys"] = append(doc["keys"].([]any), map[string]any{
			"keyid": keyID, "public": base64.StdEncoding.EncodeToString(spki), "private": base64.StdEncoding.EncodeToString(pkcs8),
			"created": time.Now().UTC().Format(time.RFC3339Nano), "source": "generated",
		})
	})
	h := reg.do("GET", "/-/npm/v1/keys", "", nil)
	if h.Status != 200 || !strings.Contains(string(h.Body), keyID) {
		t.Errorf("GET /-/npm/v1/keys does not serve the key of the hidden revision %s: %s", keyID, h)
	}
	if _, open, err := tryOrgDocIn(suite.couchURL, system, "signing-keys"); err != nil || len(open) != 0 {
		t.Errorf("signing-keys still has conflicts %v (%v) after the read", open, err)
	}
}
