package registry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Clients get Public when set; the operator (DetailOf, Error) keeps the
// detail; wrapping in fmt.Errorf changes neither.
func TestReasonAndDetail(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:5984: connect: connection refused")
	tests := []struct {
		name                    string
		err                     error
		wantReason, wantDetail  string
		wantErrorHasDetailCause bool
	}{
		{"plain", E(KindInvalid, "bad name %q", "X"), `bad name "X"`, `bad name "X"`, false},
		{"with public", WrapDetail(KindUnavailable, cause, "read: the registry's database is unavailable; retry later", "read: cannot reach CouchDB at %s", "http://10.0.0.7:5984"),
			"read: the registry's database is unavailable; retry later", "read: cannot reach CouchDB at http://10.0.0.7:5984", true},
		{"wrapped by fmt", fmt.Errorf("outer: %w", WrapDetail(KindUnavailable, cause, "public", "detail")), "public", "detail", true},
		{"not a domain error", cause, "internal error", "internal error", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReasonOf(tc.err); got != tc.wantReason {
				t.Errorf("ReasonOf = %q, want %q", got, tc.wantReason)
			}
			if got := DetailOf(tc.err); got != tc.wantDetail {
				t.Errorf("DetailOf = %q, want %q", got, tc.wantDetail)
			}
			if tc.wantErrorHasDetailCause && (!strings.Contains(tc.err.Error(), tc.wantDetail) || !strings.Contains(tc.err.Error(), "10.0.0.7")) {
				t.Errorf("Error() = %q lost the detail or the cause", tc.err.Error())
			}
		})
	}
}
