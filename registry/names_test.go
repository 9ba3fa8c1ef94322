package registry

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	long214 := strings.Repeat("a", 214)
	long215 := strings.Repeat("a", 215)
	scoped214 := "@s/" + strings.Repeat("b", 211)
	tests := []struct {
		name    string
		pkg     string
		wantOK  bool // ValidateName (read path, legacy names allowed)
		wantNew bool // ValidateNewName (new packages)
	}{
		{"unscoped", "lodash", true, true},
		{"unscoped with dash dot underscore", "my-pkg.js_x", true, true},
		{"scoped", "@scope/pkg", true, true},
		{"scoped core module name is fine", "@scope/fs", true, true},
		{"legacy uppercase", "JSONStream", true, false},
		{"uppercase scope", "@Scope/pkg", true, false},
		{"dot dot", "..", false, false},
		{"single dot", ".", false, false},
		{"hidden", ".hidden", false, false},
		{"underscore start", "_x", false, false},
		{"scoped underscore start", "@s/_x", false, false},
		{"scope starting with dot", "@.s/x", false, false},
		{"node_modules", "node_modules", false, false},
		{"NODE_MODULES legacy case", "NODE_MODULES", false, false},
		{"favicon.ico", "favicon.ico", false, false},
		{"scope without name", "@scope/", false, false},
		{"empty scope", "@/x", false, false},
		{"bare at", "@", false, false},
		{"scope only", "@scope", false, false},
		{"two segments unscoped", "a/b", false, false},
		{"design doc id", "_design/x", false, false},
		{"couch users db", "_users", false, false},
		{"scoped dot dot", "@s/..", false, false},
		{"dot dot scope", "@../x", false, false},
		{"three segments scoped", "@a/b/c", false, false},
		{"214 chars", long214, true, true},
		{"scoped 214 chars", scoped214, true, true},
		{"215 chars", long215, false, false},
		{"percent-encoded dots", "%2e%2e", false, false},
		{"percent-encoded slash", "@s%2fp", false, false},
		{"inner space", "a b", false, false},
		{"leading space", " ab", false, false},
		{"trailing space", "ab ", false, false},
		{"empty", "", false, false},
		{"core module fs new", "fs", true, false},
		{"core module http new", "http", true, false},
		{"tilde legacy", "a~b", true, false},
		{"tilde only", "~", true, false},
		{"bang legacy", "a!", true, false},
		{"non-ascii", "café", false, false},
		{"colon", "a:b", false, false},
		{"backslash", `a\b`, false, false},
		{"query", "a?b", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.pkg)
			if (err == nil) != tc.wantOK {
				t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.pkg, err, tc.wantOK)
			}
			if err != nil && KindOf(err) != KindInvalid {
				t.Errorf("ValidateName(%q) kind = %d, want KindInvalid", tc.pkg, KindOf(err))
			}
			errNew := ValidateNewName(tc.pkg)
			if (errNew == nil) != tc.wantNew {
				t.Errorf("ValidateNewName(%q) = %v, want ok=%v", tc.pkg, errNew, tc.wantNew)
			}
			if errNew != nil && KindOf(errNew) != KindInvalid {
				t.Errorf("ValidateNewName(%q) kind = %d, want KindInvalid", tc.pkg, KindOf(errNew))
			}
		})
	}
}

func TestSplitName(t *testing.T) {
	tests := []struct {
		name, in, scope, pkg string
		ok                   bool
	}{
		{"unscoped", "a", "", "a", true},
		{"scoped", "@s/p", "s", "p", true},
		{"unscoped with slash", "a/b", "", "a/b", false},
		{"scope only", "@s", "", "", false},
		{"empty name", "@s/", "", "", false},
		{"empty scope", "@/p", "", "", false},
		{"extra segment", "@s/p/q", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scope, pkg, ok := SplitName(tc.in)
			if ok != tc.ok || (ok && (scope != tc.scope || pkg != tc.pkg)) {
				t.Errorf("SplitName(%q) = (%q, %q, %v), want (%q, %q, %v)", tc.in, scope, pkg, ok, tc.scope, tc.pkg, tc.ok)
			}
		})
	}
}

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name, user string
		ok         bool
	}{
		{"simple", "alice", true},
		{"digits dash dot underscore", "a.b-c_1", true},
		{"50 chars", strings.Repeat("u", 50), true},
		{"51 chars", strings.Repeat("u", 51), false},
		{"empty", "", false},
		{"uppercase", "Alice", false},
		{"leading dot", ".alice", false},
		{"leading underscore", "_admin", false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"colon", "org.couchdb.user:x", false},
		{"at", "a@b", false},
		{"tilde", "a~b", false},
		{"bang", "a!", false},
		{"parens", "a(b)", false},
		{"star", "a*", false},
		{"quote", "a'b", false},
		{"percent", "a%20b", false},
		{"non-ascii", "zoë", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateUsername(tc.user)
			if (err == nil) != tc.ok {
				t.Errorf("ValidateUsername(%q) = %v, want ok=%v", tc.user, err, tc.ok)
			}
			if err != nil && KindOf(err) != KindInvalid {
				t.Errorf("kind = %d, want KindInvalid", KindOf(err))
			}
		})
	}
}

func TestVersionFromTarball(t *testing.T) {
	tests := []struct {
		name, pkg, file, want string
		ok                    bool
	}{
		{"unscoped", "foo", "foo-1.0.0.tgz", "1.0.0", true},
		{"unscoped prerelease", "foo", "foo-1.0.0-beta.1.tgz", "1.0.0-beta.1", true},
		{"unscoped with build", "foo", "foo-1.0.0+build.5.tgz", "1.0.0+build.5", true},
		{"dashed name", "foo-bar", "foo-bar-2.3.4.tgz", "2.3.4", true},
		{"scoped short form", "@s/p", "p-1.2.3.tgz", "1.2.3", true},
		{"scoped long form", "@s/p", "@s/p-1.2.3.tgz", "1.2.3", true},
		{"scoped other scope", "@s/p", "@t/p-1.2.3.tgz", "", false},
		{"unscoped given scoped form", "p", "@s/p-1.2.3.tgz", "", false},
		{"wrong name", "foo", "bar-1.0.0.tgz", "", false},
		{"prefix of other package", "foo", "foo-bar-1.0.0.tgz", "", false},
		{"wrong extension", "foo", "foo-1.0.0.tar.gz", "", false},
		{"no extension", "foo", "foo-1.0.0", "", false},
		{"not semver", "foo", "foo-1.0.tgz", "", false},
		{"leading v", "foo", "foo-v1.0.0.tgz", "", false},
		{"traversal", "x", "../x-1.0.0.tgz", "", false},
		{"traversal after name", "x", "x-1.0.0.tgz/../../etc/passwd", "", false},
		{"traversal in version", "x", "x-../1.0.0.tgz", "", false},
		{"scoped traversal", "@s/p", "@s/../p-1.0.0.tgz", "", false},
		{"slash in version", "x", "x-1.0.0/a.tgz", "", false},
		{"empty", "x", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VersionFromTarball(tc.pkg, tc.file)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Fatalf("VersionFromTarball(%q, %q) = %q, %v; want %q", tc.pkg, tc.file, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("VersionFromTarball(%q, %q) = %q, want an error", tc.pkg, tc.file, got)
			}
			if KindOf(err) != KindNotFound {
				t.Errorf("kind = %d, want KindNotFound", KindOf(err))
			}
		})
	}
}

func TestTarballNameAndPath(t *testing.T) {
	tests := []struct {
		name, pkg, version, file, path string
	}{
		{"unscoped", "foo", "1.0.0", "foo-1.0.0.tgz", "/foo/-/foo-1.0.0.tgz"},
		{"scoped", "@s/p", "1.0.0-rc.1", "p-1.0.0-rc.1.tgz", "/@s/p/-/p-1.0.0-rc.1.tgz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TarballName(tc.pkg, tc.version); got != tc.file {
				t.Errorf("TarballName = %q, want %q", got, tc.file)
			}
			if got := TarballPath(tc.pkg, tc.version); got != tc.path {
				t.Errorf("TarballPath = %q, want %q", got, tc.path)
			}
			// What TarballName writes, VersionFromTarball reads back.
			if v, err := VersionFromTarball(tc.pkg, tc.file); err != nil || v != tc.version {
				t.Errorf("round trip: VersionFromTarball(%q) = %q, %v", tc.file, v, err)
			}
		})
	}
}

func TestValidateTag(t *testing.T) {
	tests := []struct {
		name, tag string
		ok        bool
	}{
		{"latest", "latest", true},
		{"beta", "beta", true},
		{"next-major", "next-major", true},
		{"dotted", "release.2024", true},
		{"128 chars", strings.Repeat("t", 128), true},
		{"129 chars", strings.Repeat("t", 129), false},
		{"empty", "", false},
		{"version", "1.0.0", false},
		{"prerelease version", "1.0.0-beta.1", false},
		{"starts with digit", "1", false},
		{"partial version", "1.x", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"percent", "a%20", false},
		{"caret", "^1.0.0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTag(tc.tag)
			if (err == nil) != tc.ok {
				t.Errorf("ValidateTag(%q) = %v, want ok=%v", tc.tag, err, tc.ok)
			}
			if err != nil && KindOf(err) != KindInvalid {
				t.Errorf("kind = %d, want KindInvalid", KindOf(err))
			}
		})
	}
}

// ValidateTag's contract is "refuses tags that npm would read as versions
// or ranges"; npm (semver.validRange, npm-package-arg) reads all of these
// as versions or ranges, and ResolveVersion would let such a tag shadow a
// real version (GET /pkg/v1.0.0 resolves the tag before the v-stripped
// version).
func TestValidateTagRefusesRangeLikeTags(t *testing.T) {
	for _, tag := range []string{"v1.0.0", "v1", "x", "X", "*", "~1", "=1.0.0"} {
		t.Run(tag, func(t *testing.T) {
			if err := ValidateTag(tag); err == nil {
				t.Errorf("ValidateTag(%q) accepted a tag npm reads as a version or range", tag)
			}
		})
	}
}
