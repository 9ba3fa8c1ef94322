package registry

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckNewPassword(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		password string
		want     string // part of the reason; "" for accepted
	}{
		{"long random password", "alice", "vK4#pq9-Lm2z", ""},
		{"exactly ten characters", "alice", "h7Rw2kQp9x", ""},
		{"ten runes, more bytes", "alice", "ключ-ёжик-9", ""},
		{"empty", "alice", "", "a password is required"},
		{"one character", "alice", "x", "too short (1 characters)"},
		{"nine characters", "alice", "h7Rw2kQp9", "too short (9 characters)"},
		{"nine runes of more than ten bytes", "alice", "ключ-ёжик", "too short (9 characters)"},
		{"the user name", "alexander", "alexander1", "must not contain the user name"},
		{"the user name, other case", "maximilian", "MAXIMILIAN", "must not be the user name"},
		{"contains the user name", "carol-ops", "my-Carol-Ops-pw", "must not contain the user name"},
		{"short names may occur by chance", "bob", "bobcat-Jumps-7", ""},
		{"common: number run", "alice", "1234567890", "most common passwords"},
		{"common: word and digits", "alice", "password123", "most common passwords"},
		{"common: capitalised", "alice", "Password123!", "most common passwords"},
		{"common: keyboard walk", "alice", "qwertyuiop", "most common passwords"},
		{"common: word and year", "alice", "Football2024", "most common passwords"},
		{"common: repeated character", "alice", "aaaaaaaaaaaa", "most common passwords"},
		{"common: leetspeak", "alice", "P@ssw0rd123", "most common passwords"},
		{"invalid UTF-8", "alice", "abcdefghij\xff", "not valid UTF-8"},
		{"absurdly long", "alice", strings.Repeat("x", 2000), "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNewPassword(tc.user, tc.password)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckNewPassword(%q, %q) = %v, want nil", tc.user, tc.password, err)
				}
				return
			}
			wantKind(t, err, KindInvalid)
			if !strings.Contains(ReasonOf(err), tc.want) {
				t.Errorf("reason %q, want it to contain %q", ReasonOf(err), tc.want)
			}
		})
	}
}

// The embedded list is what the policy checks against: it must hold
// entries, all lower-case and long enough to matter.
func TestCommonPasswordsList(t *testing.T) {
	m := commonPasswords()
	if len(m) < 1000 {
		t.Fatalf("%d common passwords, want at least 1000", len(m))
	}
	for p := range m {
		if p != strings.ToLower(p) || len([]rune(p)) < MinPasswordLength {
			t.Errorf("entry %q is not lower-case or shorter than %d", p, MinPasswordLength)
		}
	}
}

func TestSignupEmail(t *testing.T) {
	tests := []struct {
		name    string
		domains []string
		email   string
		kind    Kind // -1: accepted
	}{
		{"any domain", nil, "alice@example.com", -1},
		{"missing", nil, "", KindInvalid},
		{"no at sign", nil, "alice.example.com", KindInvalid},
		{"nothing before the at sign", nil, "@example.com", KindInvalid},
		{"two at signs", nil, "a@b@example.com", KindInvalid},
		{"space", nil, "alice @example.com", KindInvalid},
		{"allowed domain", []string{"example.com", "corp.example"}, "alice@corp.example", -1},
		{"allowed domain, other case", []string{"Example.COM"}, "alice@EXAMPLE.com", -1},
		{"other domain", []string{"example.com"}, "alice@example.org", KindForbidden},
		{"subdomain is another domain", []string{"example.com"}, "alice@evil.example.com", KindForbidden},
		{"suffix trick", []string{"example.com"}, "alice@notexample.com", KindForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, users, _ := newTestAccounts(true, tc.domains...)
			_, err := a.Login(t.Context(), "alice", "Sturdy-pw-42x", tc.email, "", netip.Addr{})
			if tc.kind == -1 {
				if err != nil {
					t.Fatalf("Login with %q: %v", tc.email, err)
				}
				return
			}
			wantKind(t, err, tc.kind)
			if len(users.created) != 0 {
				t.Errorf("created %v", users.created)
			}
		})
	}
	// An operator adds anyone, whatever the domains.
	_, users, tokens := newTestAccounts(false, "example.com")
	if err := NewUserAdmin(adminUsers{users}, adminTokens{tokens}).Add(t.Context(), "bob", "Sturdy-pw-42x", "bob@elsewhere.example"); err != nil {
		t.Fatalf("Add: %v", err)
	}
}
