package registry

import (
	"regexp"
	"strings"
)

// The SemVer 2.0.0 grammar, as the specification's own regular expression.
var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// MaxVersionLength is npm's (node-semver's) limit on a version string.
const MaxVersionLength = 256

// ValidateVersion accepts strict SemVer 2.0.0 versions only.
func ValidateVersion(v string) error {
	if len(v) > MaxVersionLength || !semverRe.MatchString(v) {
		return E(KindInvalid, "invalid version %q: versions must be strict semver (for example 1.2.3)", v)
	}
	return nil
}

// IsPrerelease reports whether v has a prerelease part.
func IsPrerelease(v string) bool {
	m := semverRe.FindStringSubmatch(v)
	return m != nil && m[4] != ""
}

// CompareVersions orders two versions by SemVer precedence (build metadata is
// ignored). Strings that are not versions sort before every version, so that
// legacy upstream data cannot break a sort.
func CompareVersions(a, b string) int {
	ma, mb := semverRe.FindStringSubmatch(a), semverRe.FindStringSubmatch(b)
	switch {
	case ma == nil && mb == nil:
		return strings.Compare(a, b)
	case ma == nil:
		return -1
	case mb == nil:
		return 1
	}
	for i := 1; i <= 3; i++ {
		if c := compareNumeric(ma[i], mb[i]); c != 0 {
			return c
		}
	}
	pa, pb := ma[4], mb[4]
	switch {
	case pa == "" && pb == "":
		return 0
	case pa == "":
		return 1 // a release ranks above its prereleases
	case pb == "":
		return -1
	}
	ia, ib := strings.Split(pa, "."), strings.Split(pb, ".")
	// Numeric identifiers have no size limit; valid ones have no leading
	// zeros, so compareNumeric (length, then digits) orders them.
	numeric := func(id string) bool { return id != "" && strings.Trim(id, "0123456789") == "" }
	for i := 0; i < len(ia) && i < len(ib); i++ {
		na, nb := numeric(ia[i]), numeric(ib[i])
		var c int
		switch {
		case na && nb:
			c = compareNumeric(ia[i], ib[i])
		case na:
			c = -1 // numeric identifiers rank below alphanumeric ones
		case nb:
			c = 1
		default:
			c = strings.Compare(ia[i], ib[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmpUint(uint64(len(ia)), uint64(len(ib)))
}

func compareNumeric(a, b string) int {
	if len(a) != len(b) { // no leading zeros in valid versions
		return cmpUint(uint64(len(a)), uint64(len(b)))
	}
	return strings.Compare(a, b)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// HighestVersion returns the highest of versions, preferring releases over
// prereleases (npm's choice for "latest" when the tag is missing).
func HighestVersion(versions []string) string {
	best, bestRelease := "", ""
	for _, v := range versions {
		if best == "" || CompareVersions(v, best) > 0 {
			best = v
		}
		if !IsPrerelease(v) && (bestRelease == "" || CompareVersions(v, bestRelease) > 0) {
			bestRelease = v
		}
	}
	if bestRelease != "" {
		return bestRelease
	}
	return best
}
