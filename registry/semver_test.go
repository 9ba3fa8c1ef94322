package registry

import (
	"strings"
	"testing"
)

func TestValidateVersion(t *testing.T) {
	tests := []struct {
		name, v string
		ok      bool
	}{
		{"release", "1.2.3", true},
		{"zeros", "0.0.0", true},
		{"large numbers", "10.20.30", true},
		{"prerelease", "1.0.0-alpha", true},
		{"dotted prerelease", "1.0.0-alpha.1", true},
		{"numeric prerelease", "1.0.0-0.3.7", true},
		{"hyphen prerelease", "1.0.0-x-y-z.--", true},
		{"build", "1.0.0+20130313144700", true},
		{"prerelease and build", "1.0.0-beta+exp.sha.5114f85", true},
		{"build with leading zero", "1.0.0+001", true},
		{"alnum prerelease with leading zero", "1.0.0-0a", true},
		{"max length", "1.0.0-" + strings.Repeat("a", MaxVersionLength-6), true},
		{"over max length", "1.0.0-" + strings.Repeat("a", MaxVersionLength-5), false},
		{"leading v", "v1.0.0", false},
		{"leading equals", "=1.0.0", false},
		{"two parts", "1.0", false},
		{"one part", "1", false},
		{"four parts", "1.2.3.4", false},
		{"leading zero major", "01.0.0", false},
		{"leading zero minor", "1.02.0", false},
		{"leading zero patch", "1.0.03", false},
		{"leading zero numeric prerelease", "1.0.0-01", false},
		{"empty prerelease", "1.0.0-", false},
		{"empty prerelease identifier", "1.0.0-a..b", false},
		{"empty build", "1.0.0+", false},
		{"spaces", " 1.0.0", false},
		{"trailing space", "1.0.0 ", false},
		{"range", "^1.0.0", false},
		{"x-range", "1.x.0", false},
		{"underscore prerelease", "1.0.0-a_b", false},
		{"negative", "-1.0.0", false},
		{"empty", "", false},
		{"tag", "latest", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateVersion(tc.v)
			if (err == nil) != tc.ok {
				t.Errorf("ValidateVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
			}
			if err != nil && KindOf(err) != KindInvalid {
				t.Errorf("kind = %d, want KindInvalid", KindOf(err))
			}
		})
	}
}

func TestIsPrerelease(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"1.0.0", false},
		{"1.0.0+build.1", false},
		{"1.0.0-rc.1", true},
		{"1.0.0-rc.1+build", true},
		{"not-a-version", false},
	}
	for _, tc := range tests {
		t.Run(tc.v, func(t *testing.T) {
			if got := IsPrerelease(tc.v); got != tc.want {
				t.Errorf("IsPrerelease(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestCompareVersionsSpecOrder(t *testing.T) {
	// SemVer 2.0.0, §11: the specification's own precedence examples.
	ordered := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
		"1.0.1", "1.1.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       int
	}{
		{"numeric not lexical major", "2.0.0", "10.0.0", -1},
		{"numeric not lexical minor", "1.9.0", "1.10.0", -1},
		{"numeric not lexical patch", "1.0.9", "1.0.10", -1},
		{"equal", "1.2.3", "1.2.3", 0},
		{"build ignored", "1.0.0+a", "1.0.0+b", 0},
		{"build ignored vs none", "1.0.0+a", "1.0.0", 0},
		{"release above prerelease", "1.0.0", "1.0.0-rc.1", 1},
		{"numeric prerelease ids numerically", "1.0.0-2", "1.0.0-10", -1},
		{"numeric id below alphanumeric", "1.0.0-1", "1.0.0-a", -1},
		{"alphanumeric ASCII order", "1.0.0-Beta", "1.0.0-alpha", -1},
		{"longer prerelease wins when prefix equal", "1.0.0-a.b.c", "1.0.0-a.b", 1},
		{"invalid before valid", "garbage", "0.0.0", -1},
		{"valid after invalid", "0.0.0-0", "v1.0.0", 1},
		{"two invalid compare as strings", "b", "a", 1},
		{"huge major", "99999999999999999999.0.0", "9.0.0", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareVersions(tc.a, tc.b); got != tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := CompareVersions(tc.b, tc.a); got != -tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d (antisymmetry)", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestHighestVersion(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"empty", nil, ""},
		{"single", []string{"1.0.0"}, "1.0.0"},
		{"numeric order", []string{"2.0.0", "10.0.0", "9.9.9"}, "10.0.0"},
		{"prefers release over higher prerelease", []string{"1.0.0", "2.0.0-beta.1"}, "1.0.0"},
		{"only prereleases", []string{"1.0.0-alpha", "1.0.0-beta.2", "1.0.0-beta.11"}, "1.0.0-beta.11"},
		{"release above its prerelease", []string{"1.0.0-rc.1", "1.0.0"}, "1.0.0"},
		{"ignores invalid strings", []string{"zzz", "0.1.0"}, "0.1.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HighestVersion(tc.in); got != tc.want {
				t.Errorf("HighestVersion(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSortedVersions(t *testing.T) {
	p := NewPackument("x")
	for _, v := range []string{"10.0.0", "1.0.0", "1.0.0-beta.11", "1.0.0-beta.2", "2.0.0"} {
		p.Versions[v] = Manifest(`{}`)
	}
	got := strings.Join(p.SortedVersions(), " ")
	want := "1.0.0-beta.2 1.0.0-beta.11 1.0.0 2.0.0 10.0.0"
	if got != want {
		t.Errorf("SortedVersions = %q, want %q", got, want)
	}
}

// Numeric prerelease identifiers have no size limit in SemVer; past uint64
// CompareVersions falls back to string order, so 99999999999999999999 sorts
// above 100000000000000000000.
func TestCompareVersionsHugeNumericPrerelease(t *testing.T) {
	a, b := "1.0.0-99999999999999999999", "1.0.0-100000000000000000000"
	if got := CompareVersions(a, b); got != -1 {
		t.Errorf("CompareVersions(%q, %q) = %d, want -1", a, b, got)
	}
}
