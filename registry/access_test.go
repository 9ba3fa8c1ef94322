package registry

import (
	"encoding/json"
	"testing"
)

func TestAccessOf(t *testing.T) {
	tests := []struct {
		name string
		raw  string // the stored "access" field; "" = none
		want string
	}{
		{"unset is public", "", AccessPublic},
		{"public", `"public"`, AccessPublic},
		{"restricted", `"restricted"`, AccessRestricted},
		{"restricted with escapes", `"\u0072estricted"`, AccessRestricted},
		{"restricted with spaces around", ` "restricted" `, AccessRestricted},
		{"null", `null`, AccessPublic},
		{"another word", `"private"`, AccessPublic},
		{"not a string", `true`, AccessPublic},
		{"garbage", `"restricted`, AccessPublic},
		{"case matters", `"Restricted"`, AccessPublic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Packument{Fields: map[string]json.RawMessage{}}
			if tc.raw != "" {
				p.Fields["access"] = json.RawMessage(tc.raw)
			}
			if got := AccessOf(p); got != tc.want {
				t.Errorf("AccessOf(%s) = %s, want %s", tc.raw, got, tc.want)
			}
		})
	}
}
