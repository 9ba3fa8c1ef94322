package web

import (
	"net/http/httptest"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// An error page answers with the status the API gives the same error: a
// conflict is 409 and an oversized request 413 on both, never a 500.
func TestErrorPageStatusIsTheAPIs(t *testing.T) {
	s := newSite(t)
	for _, tc := range []struct {
		kind registry.Kind
		want int
	}{
		{registry.KindInvalid, 400},
		{registry.KindOTPRequired, 401},
		{registry.KindForbidden, 403},
		{registry.KindNotFound, 404},
		{registry.KindConflict, 409},
		{registry.KindTooLarge, 413},
		{registry.KindTooManyRequests, 429},
		{registry.KindBadGateway, 502},
		{registry.KindUnavailable, 503},
		{registry.KindInternal, 500},
	} {
		rec := httptest.NewRecorder()
		s.fail(rec, httptest.NewRequest("GET", "/widget", nil), alice, registry.E(tc.kind, "x"))
		if rec.Code != tc.want {
			t.Errorf("kind %v: page status %d, want %d", tc.kind, rec.Code, tc.want)
		}
	}
}
