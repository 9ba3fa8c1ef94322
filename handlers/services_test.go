package handlers

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// New refuses to build routes over a missing service, naming each one,
// instead of answering 500 when a route needs it.
func TestNewRefusesMissingServices(t *testing.T) {
	full := fakeServices(t, &fakeRegistry{}, newFakeAccounts(), fakePinger{})
	for _, tc := range []struct {
		name  string
		edit  func(s *Services)
		wants []string
	}{
		{"complete", func(*Services) {}, nil},
		{"no command surface", func(s *Services) { s.Commands = nil }, []string{"Commands"}},
		{"no orgs nor tokens", func(s *Services) { s.Orgs, s.Tokens = nil, nil }, []string{"Orgs", "Tokens"}},
		{"nothing", func(s *Services) { *s = Services{} }, []string{"Registry", "Commands", "Orgs", "Accounts", "Tokens", "DB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := full
			tc.edit(&svc)
			h, err := New(Config{PublicURL: publicURL}, svc, zerolog.Nop())
			if tc.wants == nil {
				if err != nil || h == nil {
					t.Fatalf("New = %v, %v; want a handler", h, err)
				}
				return
			}
			if err == nil || h != nil {
				t.Fatalf("New = %v, %v; want an error", h, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
