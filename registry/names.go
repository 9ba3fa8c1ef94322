package registry

import (
	"strings"
)

// MaxNameLength is npm's limit for a package name, scope included.
const MaxNameLength = 214

// nodeBuiltins are names npm refuses for new packages: a package named like a
// core module would be shadowed by it (or shadow it) at require time.
var nodeBuiltins = map[string]bool{
	"assert": true, "buffer": true, "child_process": true, "cluster": true, "console": true,
	"constants": true, "crypto": true, "dgram": true, "dns": true, "domain": true, "events": true,
	"fs": true, "http": true, "http2": true, "https": true, "module": true, "net": true, "os": true,
	"path": true, "process": true, "punycode": true, "querystring": true, "readline": true,
	"repl": true, "stream": true, "string_decoder": true, "sys": true, "timers": true, "tls": true,
	"tty": true, "url": true, "util": true, "v8": true, "vm": true, "worker_threads": true, "zlib": true,
}

// urlSafe reports whether s survives JavaScript's encodeURIComponent
// unchanged, which is npm's definition of a URL-safe name part.
func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~*'()", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// SplitName splits "@scope/pkg" into ("scope", "pkg"); an unscoped name has
// an empty scope. ok is false when a scoped name is malformed.
func SplitName(name string) (scope, pkg string, ok bool) {
	if !strings.HasPrefix(name, "@") {
		return "", name, !strings.Contains(name, "/")
	}
	scope, pkg, found := strings.Cut(name[1:], "/")
	if !found || scope == "" || pkg == "" || strings.Contains(pkg, "/") {
		return "", "", false
	}
	return scope, pkg, true
}

// ValidateName checks the rules every package name must meet, including
// legacy names that exist upstream (mixed case, old special characters). It
// is what the read path uses: it keeps path tricks such as "..", "%2e%2e" or
// "node_modules" out of every lookup.
func ValidateName(name string) error {
	if name == "" {
		return E(KindInvalid, "package name is empty")
	}
	if len(name) > MaxNameLength {
		return E(KindInvalid, "package name is longer than %d characters", MaxNameLength)
	}
	scope, pkg, ok := SplitName(name)
	if !ok {
		return E(KindInvalid, "invalid package name %q: a scoped name is @scope/name", name)
	}
	for _, part := range []string{scope, pkg} {
		if part == "" {
			continue
		}
		if part[0] == '.' || part[0] == '_' {
			return E(KindInvalid, "invalid package name %q: a name cannot start with . or _", name)
		}
		if !urlSafe(part) {
			return E(KindInvalid, "invalid package name %q: a name may contain only URL-safe characters", name)
		}
	}
	lower := strings.ToLower(pkg)
	if scope == "" && (lower == "node_modules" || lower == "favicon.ico") {
		return E(KindInvalid, "invalid package name %q: that name is reserved", name)
	}
	return nil
}

// ValidateNewName adds npm's stricter rules for names that do not exist yet:
// lower case only, none of ~'!()*, and no Node.js core module names.
func ValidateNewName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if strings.ToLower(name) != name {
		return E(KindInvalid, "invalid package name %q: new package names must be lowercase", name)
	}
	if strings.ContainsAny(name, "~'!()*") {
		return E(KindInvalid, "invalid package name %q: new package names cannot contain ~'!()*", name)
	}
	if strings.TrimSpace(name) != name {
		return E(KindInvalid, "invalid package name %q: leading or trailing spaces", name)
	}
	if _, pkg, _ := SplitName(name); nodeBuiltins[pkg] && !strings.HasPrefix(name, "@") {
		return E(KindInvalid, "invalid package name %q: that is a Node.js core module name", name)
	}
	return nil
}

// TarballName is the attachment name (and the file name in the tarball URL)
// of a version: the unscoped name, a dash, the version, ".tgz".
func TarballName(name, version string) string {
	_, pkg, _ := SplitName(name)
	return pkg + "-" + version + ".tgz"
}

// VersionFromTarball parses a tarball file name of package name into its
// version. It accepts "pkg-1.0.0.tgz" and, for scoped names, the
// "@scope/pkg-1.0.0.tgz" form that npm writes into dist.tarball.
func VersionFromTarball(name, file string) (string, error) {
	scope, pkg, _ := SplitName(name)
	if scope != "" {
		file = strings.TrimPrefix(file, "@"+scope+"/")
	}
	v, ok := strings.CutPrefix(file, pkg+"-")
	if ok {
		v, ok = strings.CutSuffix(v, ".tgz")
	}
	if !ok || ValidateVersion(v) != nil {
		return "", E(KindNotFound, "no tarball %q for package %s", file, name)
	}
	return v, nil
}

// ValidateUsername checks a user name: lower case, URL-safe, not starting
// with . or _, at most 50 characters (the couchapp's rules, which npm's
// public registry also follows).
func ValidateUsername(name string) error {
	switch {
	case name == "":
		return E(KindInvalid, "user name is empty")
	case len(name) > 50:
		return E(KindInvalid, "user name is longer than 50 characters")
	case strings.ToLower(name) != name:
		return E(KindInvalid, "user name must be lowercase")
	case name[0] == '.' || name[0] == '_':
		return E(KindInvalid, "user name cannot start with . or _")
	case !urlSafe(name) || strings.ContainsAny(name, "~'!()*"):
		return E(KindInvalid, "user name may contain only letters, digits, - _ and .")
	}
	return nil
}
