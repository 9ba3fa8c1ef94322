package handlers

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// npm token list prints token.name as is: a token without one must still
// have a name in the answer, or npm prints "name undefined".
func TestViewTokenAlwaysHasAName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"named with npm token create --name", "ci-read", "ci-read"},
		{"login token", registry.LoginTokenName, "npm login"},
		{"no name", "", unnamedToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := viewToken(&registry.Token{Key: "abcdef0123", Name: tc.in, Created: time.Unix(0, 0)}, "abcdef")
			b, _ := json.Marshal(v)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["name"] != tc.want {
				t.Errorf("name = %v, want %q (%s)", m["name"], tc.want, b)
			}
		})
	}
}
