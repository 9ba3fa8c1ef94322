//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// auditCLI runs `couchnpm audit-log args...` against r's databases, as an
// operator would, and returns its output and exit code.
func auditCLI(t *testing.T, r *registry, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(suite.bin, append(append([]string{"audit-log"}, args...), "--db-prefix", r.Prefix)...)
	cmd.Env = append(envWithout(cmd.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+suite.couchURL, "COUCHDB_USER="+suite.couchUser, "COUCHDB_PASSWORD="+suite.couchPass)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("couchnpm audit-log: %v", err)
	}
	return string(out), 0
}

type auditEntry struct {
	ID                                     string `json:"-"`
	Chain                                  string
	Seq                                    int64
	At, Actor, Address, Request, Action    string
	Package, Target, Outcome, Reason, Hash string
	Status                                 int
}

// auditEntries reads the whole log through `couchnpm audit-log --json`.
func auditEntries(t *testing.T, r *registry, args ...string) []auditEntry {
	t.Helper()
	out, code := auditCLI(t, r, append([]string{"--json", "--limit", "0"}, args...)...)
	var list []auditEntry
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("couchnpm audit-log --json: exit %d\n%s", code, out)
	}
	for i := range list {
		list[i].ID = fmt.Sprintf("%s:%012d", list[i].Chain, list[i].Seq)
	}
	return list
}

// Promise (issue 9, point 5): every write and security event done with the
// real npm CLI is an audit entry naming who, from where, what and the
// outcome, with no secret in it; `couchnpm audit-log verify` passes on the
// untouched log and names an entry edited or deleted behind couchnpm's
// back (after the append-only validate_doc_update that refuses such edits
// was removed by a CouchDB admin).
func TestAuditLog(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	const pw = "Pw-audalice-5e6f7a8b"
	aliceName, bobName, carolName := reg.user("audalice"), reg.user("audbob"), reg.user("audcarol")
	alice := newNPMUser(t, reg, "audalice")
	alice.mustLogin(aliceName, pw, "audalice@example.com")
	bob := newNPMUser(t, reg, "audbob")
	bob.mustLogin(bobName, "Pw-audbob-1a2b3c4d", "audbob@example.com")
	carol := newNPMUser(t, reg, "audcarol")
	carol.mustLogin(carolName, "Pw-audcarol-9f8e7d6c", "audcarol@example.com")

	alice.publish("aud-pkg", "1.0.0")
	alice.publish("aud-pkg", "1.1.0")
	alice.mustRunIn("", "dist-tag", "add", "aud-pkg@1.0.0", "stable")
	alice.mustRunIn("", "deprecate", "aud-pkg@1.0.0", "use 1.1")
	alice.mustRunIn("", "owner", "add", bobName, "aud-pkg")
	carol.mustFail("", []string{"E403"}, "dist-tag", "add", "aud-pkg@1.0.0", "evil")
	alice.mustOwnOrg("audscope", aliceName) // a scope belongs to an org or a user
	alice.publish("@audscope/sec", "1.0.0")
	alice.mustRunIn("", "access", "set", "status=private", "@audscope/sec")
	res := alice.mustRunIn("", "token", "create", "--password="+pw, "--name=ci")
	m := createdTokenRE.FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("npm token create printed no token:\n%s", res)
	}
	reg.addSecret(m[1])
	var tokens []struct{ Key, Name string }
	parseJSON(t, alice.mustRunIn("", "token", "list", "--json"), &tokens)
	ciKey := ""
	for _, tk := range tokens {
		if tk.Name == "ci" {
			ciKey = tk.Key
		}
	}
	if ciKey == "" {
		t.Fatalf("npm token list shows no token named ci: %+v", tokens)
	}
	alice.mustRunIn("", "token", "revoke", ciKey[:12])
	mallory := newNPMUser(t, reg, "audmallory")
	reg.addSecret("Pw-wrong-0000aaaa")
	if res := mallory.login(aliceName, "Pw-wrong-0000aaaa"); res.Err == nil {
		t.Fatalf("npm login with a wrong password succeeded:\n%s", res)
	}
	alice.mustRunIn("", "unpublish", "aud-pkg@1.1.0")
	alice.mustRunIn("", "unpublish", "aud-pkg", "--force")
	if out, err := claimCLI(t, reg, "claim", "aud-claimed", "--owner", aliceName, "--reason", "internal fork", "--by", "ops"); err != nil {
		t.Fatalf("couchnpm claim: %v\n%s", err, out)
	}

	type want struct{ actor, action, pkg, target, outcome string }
	wants := []want{
		{aliceName, "adduser", "", "", "ok"},
		{aliceName, "publish", "aud-pkg", "1.0.0", "ok"},
		{aliceName, "publish", "aud-pkg", "1.1.0", "ok"},
		{aliceName, "dist-tag.add", "aud-pkg", "stable=1.0.0", "ok"},
		{aliceName, "deprecate", "aud-pkg", "deprecated: 1.0.0", "ok"},
		{aliceName, "owner.set", "aud-pkg", aliceName + "," + bobName, "ok"},
		{carolName, "dist-tag.add", "aud-pkg", "evil=1.0.0", "refused"},
		{aliceName, "org.member.set", "", "audscope", "ok"},
		{aliceName, "access.set", "@audscope/sec", "restricted", "ok"},
		{aliceName, "token.create", "", ciKey[:12], "ok"},
		{aliceName, "token.revoke", "", ciKey[:12], "ok"},
		{aliceName, "login", "", "", "refused"},
		{aliceName, "unpublish.version", "aud-pkg", "", "ok"},
		{aliceName, "unpublish.tarball", "aud-pkg", "aud-pkg-1.1.0.tgz", "ok"},
		{aliceName, "unpublish", "aud-pkg", "", "ok"},
		{"ops", "claim", "aud-claimed", "owner " + aliceName, "ok"},
	}
	// Entries are written in the background: wait for the last one.
	var entries []auditEntry
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries = auditEntries(t, reg)
		found := 0
		for _, w := range wants {
			for _, e := range entries {
				if e.Actor == w.actor && e.Action == w.action && e.Package == w.pkg && e.Target == w.target && e.Outcome == w.outcome {
					found++
					break
				}
			}
		}
		if found == len(wants) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var refused auditEntry
	for _, w := range wants {
		var got *auditEntry
		for i, e := range entries {
			if e.Actor == w.actor && e.Action == w.action && e.Package == w.pkg && e.Target == w.target && e.Outcome == w.outcome {
				got = &entries[i]
				break
			}
		}
		if got == nil {
			t.Errorf("no audit entry %+v", w)
			continue
		}
		if w.action == "claim" {
			continue // the command line: no address, no request
		}
		if got.Address != "127.0.0.1" || got.Request == "" || got.Status == 0 || got.At == "" {
			t.Errorf("entry %s lacks address, request id, status or time: %+v", got.ID, *got)
		}
		if w.outcome == "refused" && got.Reason == "" {
			t.Errorf("refused entry %s has no reason: %+v", got.ID, *got)
		}
		if w.action == "dist-tag.add" && w.outcome == "refused" {
			refused = *got
		}
	}
	if t.Failed() {
		out, _ := auditCLI(t, reg, "--limit", "0")
		t.Fatalf("the audit log:\n%s", out)
	}
	// Filters: --package and --user.
	for _, e := range auditEntries(t, reg, "--package", "@audscope/sec") {
		if e.Package != "@audscope/sec" {
			t.Errorf("--package @audscope/sec listed %+v", e)
		}
	}
	if got := auditEntries(t, reg, "--user", carolName); len(got) != 2 { // adduser, the refused dist-tag
		t.Errorf("--user %s: %d entries, want 2: %+v", carolName, len(got), got)
	}
	if out, code := auditCLI(t, reg, "--package", "aud-pkg"); code != 0 || !strings.Contains(out, "refused 403") || !strings.Contains(out, "dist-tag.add") {
		t.Errorf("couchnpm audit-log --package aud-pkg (table): exit %d\n%s", code, out)
	}

	// No secret reaches the audit database.
	_, raw, err := couchDo("GET", "/"+urlPathEscape(reg.Prefix+"-audit")+"/_all_docs?include_docs=true", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	for _, s := range reg.secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("the audit database contains a secret (%s…)", s[:3])
		}
	}
	reg.mu.Unlock()

	if out, code := auditCLI(t, reg, "verify"); code != 0 || !strings.Contains(out, "ok:") {
		t.Fatalf("verify of the untouched log: exit %d\n%s", code, out)
	}

	db := "/" + urlPathEscape(reg.Prefix+"-audit") + "/"
	docPath := db + url.PathEscape(refused.ID)
	st, body, err := couchDo("GET", docPath, nil, true)
	if err != nil || st != 200 {
		t.Fatalf("GET %s: %d %v %s", docPath, st, err, body)
	}
	var original map[string]any
	if err := json.Unmarshal(body, &original); err != nil {
		t.Fatal(err)
	}
	edit := func(doc map[string]any, rev any) (int, []byte) {
		c := map[string]any{}
		for k, v := range doc {
			c[k] = v
		}
		c["_rev"] = rev
		st, b, err := couchDo("PUT", docPath, mustJSON(c), true)
		if err != nil {
			t.Fatal(err)
		}
		return st, b
	}
	forged := map[string]any{}
	for k, v := range original {
		forged[k] = v
	}
	forged["outcome"], forged["status"], forged["reason"] = "ok", 201, ""

	t.Run("the database refuses edits and deletes, even by an admin", func(t *testing.T) {
		if st, b := edit(forged, original["_rev"]); st != 403 {
			t.Errorf("an admin's edit of an entry: %d %s, want 403", st, b)
		}
		if st, b, _ := couchDo("DELETE", docPath+"?rev="+url.QueryEscape(original["_rev"].(string)), nil, true); st != 403 {
			t.Errorf("an admin's delete of an entry: %d %s, want 403", st, b)
		}
	})

	// An admin who removes the validate_doc_update first can edit.
	st, body, _ = couchDo("GET", db+"_design/couchnpm", nil, true)
	var ddoc struct {
		Rev string `json:"_rev"`
	}
	if st != 200 || json.Unmarshal(body, &ddoc) != nil {
		t.Fatalf("GET the audit design document: %d %s", st, body)
	}
	if st, b, _ := couchDo("DELETE", db+"_design/couchnpm?rev="+url.QueryEscape(ddoc.Rev), nil, true); st != 200 {
		t.Fatalf("delete the audit design document: %d %s", st, b)
	}

	t.Run("verify names an edited entry", func(t *testing.T) {
		st, b := edit(forged, original["_rev"])
		if st != 201 {
			t.Fatalf("edit without the validate_doc_update: %d %s", st, b)
		}
		var put struct{ Rev string }
		_ = json.Unmarshal(b, &put)
		out, code := auditCLI(t, reg, "verify")
		if code != 1 || !strings.Contains(out, refused.ID) || !strings.Contains(out, "(edited)") {
			t.Errorf("verify after an edit: exit %d, want 1 naming %s as edited\n%s", code, refused.ID, out)
		}
		// Put the content back: the chain verifies again (the hash covers
		// the content, not CouchDB's revision).
		if st, b := edit(original, put.Rev); st != 201 {
			t.Fatalf("restore: %d %s", st, b)
		}
		if out, code := auditCLI(t, reg, "verify"); code != 0 {
			t.Fatalf("verify after restoring the entry: exit %d\n%s", code, out)
		}
	})

	t.Run("verify names a deleted entry", func(t *testing.T) {
		st, b, _ := couchDo("GET", docPath, nil, true)
		var cur struct {
			Rev string `json:"_rev"`
		}
		if st != 200 || json.Unmarshal(b, &cur) != nil {
			t.Fatalf("GET %s: %d %s", docPath, st, b)
		}
		if st, b, _ := couchDo("DELETE", docPath+"?rev="+url.QueryEscape(cur.Rev), nil, true); st != 200 {
			t.Fatalf("delete %s: %d %s", refused.ID, st, b)
		}
		out, code := auditCLI(t, reg, "verify")
		if code != 1 || !strings.Contains(out, refused.ID) || !strings.Contains(out, "(missing)") {
			t.Errorf("verify after a delete: exit %d, want 1 naming %s as missing\n%s", code, refused.ID, out)
		}
	})
	reg.checkNoSecrets()
}

// Promise: with a stable --instance-id, the chain a restarted process
// starts links to the previous process's last entry, so deleting the tail
// of the earlier chain (which nothing inside that chain can show) is
// detected by `couchnpm audit-log verify`.
func TestAuditLogChainsAcrossRestarts(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	t.Cleanup(func() {
		if !suite.ownCouch {
			dropDatabases(t, prefix)
			dropUsers(t, prefix)
		}
	})
	opts := registryOpts{Prefix: prefix, ExtraArgs: []string{"--instance-id", "audit-node"}}
	first := startRegistry(t, opts)
	const pw = "Pw-restart-3c4d5e6f"
	first.addSecret(pw)
	name := first.user("restart")
	h := first.do("PUT", "/-/user/org.couchdb.user:"+name, "", mustJSON(map[string]string{"name": name, "password": pw, "email": "restart@example.com"}))
	var login struct{ Token string }
	if h.Status != 201 || json.Unmarshal(h.Body, &login) != nil || login.Token == "" {
		t.Fatalf("adduser: %s", h)
	}
	first.addSecret(login.Token)
	first.stop() // flushes its queue before it exits

	second := startRegistry(t, opts)
	if h := second.do("PUT", "/-/user/org.couchdb.user:"+name, "", mustJSON(map[string]string{"name": name, "password": "Pw-wrong-7a7a7a7a"})); h.Status != 401 {
		t.Fatalf("login with a wrong password: %s", h)
	}
	var entries []auditEntry
	for deadline := time.Now().Add(20 * time.Second); ; {
		entries = auditEntries(t, second)
		if len(entries) >= 4 || time.Now().After(deadline) { // two serve.start, adduser, login
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	chains := map[string][]auditEntry{}
	var order []string
	for _, e := range entries {
		if _, ok := chains[e.Chain]; !ok {
			order = append(order, e.Chain)
		}
		chains[e.Chain] = append(chains[e.Chain], e)
	}
	if len(order) != 2 || !strings.HasPrefix(order[0], "audit-node@") || !strings.HasPrefix(order[1], "audit-node@") {
		t.Fatalf("want two chains of audit-node, got %v: %+v", order, entries)
	}
	if order[0] > order[1] {
		order[0], order[1] = order[1], order[0]
	}
	out, code := auditCLI(t, second, "verify")
	if code != 0 || strings.Count(out, "chain audit-node@") != 2 {
		t.Fatalf("verify of two linked chains: exit %d\n%s", code, out)
	}

	// Delete the first chain's last entry, as an admin who removed the
	// validate_doc_update first.
	db := "/" + urlPathEscape(prefix+"-audit") + "/"
	st, body, _ := couchDo("GET", db+"_design/couchnpm", nil, true)
	var ddoc struct {
		Rev string `json:"_rev"`
	}
	if st != 200 || json.Unmarshal(body, &ddoc) != nil {
		t.Fatalf("GET the audit design document: %d %s", st, body)
	}
	if st, b, _ := couchDo("DELETE", db+"_design/couchnpm?rev="+url.QueryEscape(ddoc.Rev), nil, true); st != 200 {
		t.Fatalf("delete the audit design document: %d %s", st, b)
	}
	firstChain := chains[order[0]]
	last := firstChain[len(firstChain)-1]
	st, body, _ = couchDo("GET", db+url.PathEscape(last.ID), nil, true)
	var doc struct {
		Rev string `json:"_rev"`
	}
	if st != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("GET %s: %d %s", last.ID, st, body)
	}
	if st, b, _ := couchDo("DELETE", db+url.PathEscape(last.ID)+"?rev="+url.QueryEscape(doc.Rev), nil, true); st != 200 {
		t.Fatalf("delete %s: %d %s", last.ID, st, b)
	}
	out, code = auditCLI(t, second, "verify")
	secondStart := fmt.Sprintf("%s:%012d", order[1], 1)
	if code != 1 || !strings.Contains(out, secondStart) || !strings.Contains(out, "(link)") {
		t.Errorf("verify after deleting the tail of the earlier chain: exit %d, want 1 naming %s\n%s", code, secondStart, out)
	}
}
