//go:build integration

package integration

import (
	"strings"
	"testing"
)

// mustOwnOrg creates org with user (u's login name) as its owner, through
// npm org set: a scope belongs to an org or to the user of that name, so
// publishing under @org/ needs it.
func (u *npmUser) mustOwnOrg(org, user string) {
	u.t.Helper()
	res := u.mustRunIn("", "org", "set", org, user, "owner")
	if !strings.Contains(res.Stdout, "Added "+user+" as owner to "+org) {
		u.t.Errorf("npm org set %s %s owner:\n%s", org, user, res)
	}
}

// Orgs, teams and read access by grant (issue 9, point 3), all through
// npm 11: org set/rm/ls, team create/destroy/add/rm/ls, access
// grant/revoke and list packages/collaborators, and what a hostile user
// who just signed up can do: nothing with a restricted package, nothing
// with someone else's org.
func TestOrgsTeamsReadAccess(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--admins", "orgroot"}})
	login := func(name string) *npmUser {
		u := newNPMUser(t, reg, name)
		u.mustLogin(name, "Pw-org-member-8d2e4f61", name+"@example.com")
		return u
	}
	alice, bob, mallory, root := login("orgalice"), login("orgbob"), login("orgmallory"), login("orgroot")
	anon := newNPMUser(t, reg, "anonymous")
	const secret, open = "@acme/secret", "@acme/open"

	t.Run("a scope belongs to an org or a user", func(t *testing.T) {
		// Nobody owns @acme yet: not even its first publisher gets it.
		mallory.mustFailSaying(writePackage(t, "@acme/early", "1.0.0", "early"), "E403",
			[]string{"the scope @acme belongs to no org here", "npm org set acme orgmallory owner"}, "publish")
		mallory.mustRunIn(writePackage(t, "@orgmallory/mine", "1.0.0", "mine"), "publish")
		// An org cannot take a user's scope.
		mallory.mustFail("", []string{"E403"}, "org", "set", "orgalice", "orgmallory", "owner")
		alice.mustOwnOrg("acme", "orgalice")
		alice.mustRunIn(writePackage(t, secret, "1.0.0", "secret-1.0.0"), "publish", "--access", "restricted")
		alice.mustRunIn(writePackage(t, open, "1.0.0", "open-1.0.0"), "publish", "--access", "public")
		mallory.mustFailSaying(writePackage(t, "@acme/evil", "1.0.0", "evil"), "E403",
			[]string{"not a member of the org acme"}, "publish")
	})

	// hidden checks that u (nil: anonymous) sees no trace of secret on any
	// read path.
	hidden := func(t *testing.T, u *npmUser) {
		t.Helper()
		token, who := "", "anonymous"
		if u != nil {
			token, who = u.token(), u.name
		} else {
			u = anon
		}
		for _, p := range []string{"/@acme%2fsecret", "/@acme/secret", "/@acme%2fsecret?write=true", "/@acme%2fsecret/1.0.0", "/@acme%2fsecret/latest",
			"/@acme/secret/-/secret-1.0.0.tgz", "/@acme/secret/-/@acme/secret-1.0.0.tgz",
			"/-/package/@acme%2fsecret/dist-tags", "/-/package/@acme%2fsecret/collaborators", "/-/package/@acme%2fsecret/visibility"} {
			if h := reg.do("GET", p, token, nil); h.Status != 404 {
				t.Errorf("GET %s as %s: %s, want 404", p, who, h)
			}
		}
		u.mustFail("", []string{"E404"}, "view", secret, "--prefer-online")
		u.mustFail("", []string{"E404"}, "dist-tag", "ls", secret)
		u.mustFail(writeProject(t, map[string]string{secret: "1.0.0"}), []string{"E404"}, "install")
		res := u.mustRunIn("", "search", "--json", "--prefer-online", "secret")
		if strings.Contains(res.Stdout, secret) {
			t.Errorf("npm search secret as %s finds it:\n%s", who, res)
		}
		if h := reg.do("GET", "/-/v1/search?text=scope:acme", token, nil); h.Status != 200 || strings.Contains(string(h.Body), secret) {
			t.Errorf("search scope:acme as %s: %s", who, h)
		}
		if who != "anonymous" {
			u.mustFail("", []string{"E404"}, "access", "list", "collaborators", secret)
			res := u.mustRunIn("", "access", "list", "packages", "@acme", "--json")
			if strings.Contains(res.Stdout, secret) {
				t.Errorf("npm access list packages @acme as %s names it:\n%s", who, res)
			}
			res = u.mustRunIn("", "access", "list", "packages", "orgalice", "--json")
			if strings.Contains(res.Stdout, secret) || !strings.Contains(res.Stdout, open) {
				t.Errorf("npm access list packages orgalice as %s:\n%s", who, res)
			}
		}
	}

	t.Run("a fresh user and anonymous callers see no restricted package", func(t *testing.T) {
		// Warm the packument cache with the maintainer's reads first: a
		// cached packument must not reach anyone else.
		alice.mustRunIn("", "view", secret, "version", "--prefer-online")
		if h := reg.do("GET", "/@acme/secret/-/secret-1.0.0.tgz", alice.token(), nil); h.Status != 200 {
			t.Fatalf("maintainer's tarball GET: %s", h)
		}
		hidden(t, nil)
		hidden(t, mallory)
		// Writes on it look the same as on a package that does not exist.
		mallory.mustFail("", []string{"E404"}, "access", "set", "status=public", secret)
		mallory.mustFail("", []string{"E404"}, "dist-tag", "add", secret+"@1.0.0", "pwned")
		mallory.mustFail(writePackage(t, secret, "6.6.6", "evil"), []string{"E404"}, "publish")
		// The registry's admins read it.
		root.mustRunIn("", "view", secret, "version", "--prefer-online")
	})

	t.Run("a fresh user cannot join an org or grant themselves access", func(t *testing.T) {
		mallory.mustFail("", []string{"E404"}, "org", "set", "acme", "orgmallory", "owner")
		mallory.mustFail("", []string{"E404"}, "org", "ls", "acme")
		mallory.mustFail("", []string{"E404"}, "team", "add", "acme:developers", "orgmallory")
		mallory.mustFail("", []string{"E404"}, "team", "create", "acme:mine")
		mallory.mustFail("", []string{"E404"}, "team", "ls", "acme")
		mallory.mustFail("", []string{"E404"}, "access", "grant", "read-write", "acme:developers", secret)
		anon.mustFail("", []string{"ENEEDAUTH", "E401"}, "org", "ls", "acme")
		hidden(t, mallory)
	})

	t.Run("org set, ls; team create, add, ls", func(t *testing.T) {
		res := alice.mustRunIn("", "org", "set", "acme", "orgbob")
		if !strings.Contains(res.Stdout, "Added orgbob as developer to acme. You now have 2 members in this org.") {
			t.Errorf("npm org set acme orgbob:\n%s", res)
		}
		roster := map[string]string{}
		parseJSON(t, bob.mustRunIn("", "org", "ls", "acme", "--json"), &roster)
		if len(roster) != 2 || roster["orgalice"] != "owner" || roster["orgbob"] != "developer" {
			t.Errorf("npm org ls acme = %v", roster)
		}
		// A developer manages nothing.
		bob.mustFail("", []string{"E403"}, "org", "set", "acme", "orgbob", "admin")
		bob.mustFail("", []string{"E403"}, "team", "create", "acme:bobs")
		if res := alice.mustRunIn("", "team", "create", "acme:readers"); !strings.Contains(res.Stdout, "+@acme:readers") {
			t.Errorf("npm team create:\n%s", res)
		}
		if res := alice.mustRunIn("", "team", "add", "acme:readers", "orgbob"); !strings.Contains(res.Stdout, "orgbob added to @acme:readers") {
			t.Errorf("npm team add:\n%s", res)
		}
		var teams, users []string
		parseJSON(t, bob.mustRunIn("", "team", "ls", "acme", "--json"), &teams)
		parseJSON(t, bob.mustRunIn("", "team", "ls", "acme:readers", "--json"), &users)
		if strings.Join(teams, ",") != "acme:developers,acme:readers" || strings.Join(users, ",") != "orgbob" {
			t.Errorf("npm team ls: teams %v, readers %v", teams, users)
		}
		// Membership alone grants no read.
		hidden(t, bob)
		// But it lets bob publish new packages under the org's scope.
		bob.mustRunIn(writePackage(t, "@acme/bobs", "1.0.0", "bobs"), "publish")
	})

	t.Run("grant read-only: install, no publish", func(t *testing.T) {
		alice.mustRunIn("", "access", "grant", "read-only", "acme:readers", secret)
		pkgs := map[string]string{}
		parseJSON(t, bob.mustRunIn("", "access", "list", "packages", "acme:readers", "--json"), &pkgs)
		if len(pkgs) != 1 || pkgs[secret] != "read-only" {
			t.Errorf("npm access list packages acme:readers = %v", pkgs)
		}
		collab := map[string]string{}
		parseJSON(t, bob.mustRunIn("", "access", "list", "collaborators", secret, "--json"), &collab)
		if len(collab) != 2 || collab["orgalice"] != "read-write" || collab["orgbob"] != "read-only" {
			t.Errorf("npm access list collaborators %s = %v", secret, collab)
		}
		proj := writeProject(t, map[string]string{secret: "1.0.0"})
		bob.mustRunIn(proj, "install")
		mustRequire(t, proj, secret, "1.0.0", "secret-1.0.0")
		if res := bob.mustRunIn("", "search", "--json", "--prefer-online", "secret"); !strings.Contains(res.Stdout, secret) {
			t.Errorf("npm search secret as a reader:\n%s", res)
		}
		bob.mustFail(writePackage(t, secret, "1.1.0", "bobs-secret"), []string{"E403"}, "publish")
		bob.mustFail("", []string{"E403"}, "dist-tag", "add", secret+"@1.0.0", "bobs")
		bob.mustFail("", []string{"E403"}, "access", "grant", "read-write", "acme:readers", secret)
		hidden(t, mallory)
	})

	t.Run("grant read-write: publish", func(t *testing.T) {
		alice.mustRunIn("", "access", "grant", "read-write", "acme:readers", secret)
		bob.mustRunIn(writePackage(t, secret, "1.1.0", "secret-1.1.0"), "publish")
		bob.mustRunIn("", "dist-tag", "add", secret+"@1.0.0", "old")
		res := alice.mustRunIn("", "view", secret, "dist-tags", "--json", "--prefer-online")
		if !strings.Contains(res.Stdout, `"latest": "1.1.0"`) || !strings.Contains(res.Stdout, `"old": "1.0.0"`) {
			t.Errorf("dist-tags after the team's publish:\n%s", res)
		}
	})

	t.Run("revoke: 404 again", func(t *testing.T) {
		alice.mustRunIn("", "access", "revoke", "acme:readers", secret)
		hidden(t, bob)
		pkgs := map[string]string{}
		parseJSON(t, bob.mustRunIn("", "access", "list", "packages", "acme:readers", "--json"), &pkgs)
		if len(pkgs) != 0 {
			t.Errorf("npm access list packages acme:readers after revoke = %v", pkgs)
		}
	})

	t.Run("team rm, destroy; org rm", func(t *testing.T) {
		alice.mustRunIn("", "access", "grant", "read-only", "acme:readers", secret)
		if res := alice.mustRunIn("", "team", "rm", "acme:readers", "orgbob"); !strings.Contains(res.Stdout, "orgbob removed from @acme:readers") {
			t.Errorf("npm team rm:\n%s", res)
		}
		hidden(t, bob)
		if res := alice.mustRunIn("", "team", "destroy", "acme:readers"); !strings.Contains(res.Stdout, "-@acme:readers") {
			t.Errorf("npm team destroy:\n%s", res)
		}
		alice.mustFail("", []string{"E403"}, "team", "destroy", "acme:developers")
		alice.mustFail("", []string{"E403"}, "org", "rm", "acme", "orgalice") // the last owner stays
		if res := alice.mustRunIn("", "org", "rm", "acme", "orgbob"); !strings.Contains(res.Stdout, "Successfully removed orgbob from acme. You now have 1 member in this org.") {
			t.Errorf("npm org rm:\n%s", res)
		}
		bob.mustFail("", []string{"E404"}, "org", "ls", "acme")
		bob.mustFail(writePackage(t, "@acme/after", "1.0.0", "after"), []string{"E403"}, "publish")
	})
}

// couchnpm org create: an operator turns a scope npm org set cannot
// create (here a user's own scope, with a package in it) into an org,
// whose members npm then manages.
func TestOrgsOperatorCreate(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "opalice")
	alice.mustLogin("opalice", "Pw-op-alice-2b7c9d14", "opalice@example.com")
	bob := newNPMUser(t, reg, "opbob")
	bob.mustLogin("opbob", "Pw-op-bob-5e8f0a36", "opbob@example.com")
	alice.mustRunIn(writePackage(t, "@opalice/lib", "1.0.0", "lib"), "publish")
	bob.mustFail(writePackage(t, "@opalice/bobs", "1.0.0", "bobs"), []string{"E403"}, "publish")
	bob.mustFail("", []string{"E403"}, "org", "set", "opalice", "opbob", "owner")
	out, err := claimCLI(t, reg, "org", "create", "opalice", "--owner", "opalice")
	if err != nil || !strings.Contains(out, "created org opalice, owned by opalice") {
		t.Fatalf("couchnpm org create: %v\n%s", err, out)
	}
	if out, err := claimCLI(t, reg, "org", "create", "opalice", "--owner", "opbob"); err == nil || !strings.Contains(out, "org opalice exists") {
		t.Errorf("couchnpm org create of an existing org: %v\n%s", err, out)
	}
	if out, err := claimCLI(t, reg, "org", "create", "other", "--owner", "nobody-"+reg.Prefix); err == nil {
		t.Errorf("couchnpm org create with an unknown owner succeeded:\n%s", out)
	}
	alice.mustRunIn("", "org", "set", "opalice", "opbob")
	bob.mustRunIn(writePackage(t, "@opalice/bobs", "1.0.0", "bobs"), "publish")
	roster := map[string]string{}
	parseJSON(t, bob.mustRunIn("", "org", "ls", "opalice", "--json"), &roster)
	if len(roster) != 2 || roster["opalice"] != "owner" || roster["opbob"] != "developer" {
		t.Errorf("npm org ls opalice = %v", roster)
	}
}
