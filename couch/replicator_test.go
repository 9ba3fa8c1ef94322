package couch

import "testing"

func TestServerDBURLAndTargetDB(t *testing.T) {
	c := &Client{user: "admin", password: "pw"}
	tests := []struct {
		name, base, db, wantURL string
	}{
		{"plain name", "http://couch:5984", "reg-tokens", "http://admin:pw@couch:5984/reg-tokens"},
		{"base with a trailing slash", "http://couch:5984/", "_users", "http://admin:pw@couch:5984/_users"},
		{"base under a path", "https://proxy.example/couch/", "reg", "https://admin:pw@proxy.example/couch/reg"},
		{"slash in the name is escaped once", "http://couch:5984", "team/reg-tokens", "http://admin:pw@couch:5984/team%2Freg-tokens"},
		{"other allowed characters", "http://couch:5984", "a$(b)+c", "http://admin:pw@couch:5984/a$%28b%29+c"},
		{"credentials of the base win", "http://peer:secret@couch:5984", "reg", "http://peer:secret@couch:5984/reg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ServerDBURL(tc.base, tc.db)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantURL {
				t.Errorf("ServerDBURL(%q, %q) = %q, want %q", tc.base, tc.db, got, tc.wantURL)
			}
			if back := targetDB(got); back != tc.db {
				t.Errorf("targetDB(%q) = %q, want %q", got, back, tc.db)
			}
		})
	}
	if got := targetDB("::not a url"); got != "" {
		t.Errorf("targetDB of an unparseable URL = %q, want empty", got)
	}
}
