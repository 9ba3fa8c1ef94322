//go:build integration

package integration

import (
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
