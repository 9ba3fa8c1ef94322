package registry

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The one read-change-write loop: what reaches plan, when it writes, how
// it retries conflicts and how it ends.
func TestWriteCycle(t *testing.T) {
	planErr := E(KindForbidden, "no")
	tests := []struct {
		name      string
		stored    bool // the package exists before
		absentOK  bool
		conflicts int  // the store refuses this many writes first
		noWrite   bool // plan decides there is nothing to write
		planErr   error
		wantKind  Kind // -1: no error
		wantPuts  int
		wantPlans int
		wantNil   bool // plan saw no stored document
		wantMsg   string
	}{
		{name: "absent package reaches plan as nil", absentOK: true, wantKind: -1, wantPuts: 1, wantPlans: 1, wantNil: true},
		{name: "absent package is not found when it must exist", wantKind: KindNotFound, wantPlans: 0},
		{name: "stored package reaches plan", stored: true, wantKind: -1, wantPuts: 1, wantPlans: 1},
		{name: "conflicts are retried from a fresh read", stored: true, conflicts: 3, wantKind: -1, wantPuts: 4, wantPlans: 4},
		{name: "nothing to write ends without a write", stored: true, noWrite: true, wantKind: -1, wantPlans: 1},
		{name: "plan's refusal ends the cycle unwritten", stored: true, planErr: planErr, wantKind: KindForbidden, wantPlans: 1},
		{name: "endless conflicts give up naming the operation", stored: true, conflicts: 1 << 30, wantKind: KindConflict,
			wantPuts: maxPublishAttempts, wantPlans: maxPublishAttempts, wantMsg: "test-op of foo kept losing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			s := newTestService(store)
			s.backoff = func(int) time.Duration { return 0 }
			if tc.stored {
				if err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
					t.Fatal(err)
				}
			}
			store.puts, store.failFirstPuts = 0, tc.conflicts
			plans, sawNil := 0, false
			err := s.writeCycle(t.Context(), "foo", "test-op", tc.absentOK, func(_ int, stored *Packument) (planned, error) {
				plans++
				sawNil = stored == nil
				if tc.planErr != nil {
					return planned{}, tc.planErr
				}
				if tc.noWrite {
					return planned{}, nil
				}
				doc := stored
				if doc == nil {
					doc = NewPackument("foo")
				}
				doc.Time["modified"] = stamp(s.now())
				return planned{doc: doc}, nil
			})
			if tc.wantKind == -1 {
				if err != nil {
					t.Fatalf("writeCycle: %v", err)
				}
			} else {
				wantKind(t, err, tc.wantKind)
			}
			if tc.planErr != nil && !errors.Is(err, tc.planErr) {
				t.Errorf("err = %v, want plan's own error", err)
			}
			if store.puts != tc.wantPuts {
				t.Errorf("puts = %d, want %d", store.puts, tc.wantPuts)
			}
			if plans != tc.wantPlans {
				t.Errorf("plans = %d, want %d", plans, tc.wantPlans)
			}
			if plans > 0 && sawNil != tc.wantNil {
				t.Errorf("plan saw a nil document: %v, want %v", sawNil, tc.wantNil)
			}
			if tc.wantMsg != "" && !strings.Contains(ReasonOf(err), tc.wantMsg) {
				t.Errorf("reason %q, want it to contain %q", ReasonOf(err), tc.wantMsg)
			}
		})
	}
}
