package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// seeEach makes every request once, with its headers, and reports a
// request that did not answer 200.
func TestSeeEach(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Header.Get("Accept")+" "+r.Header.Get("Authorization")]++
		mu.Unlock()
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tg := &target{Label: "couchnpm", Base: srv.URL}
	var reqs []request
	for i := range 20 {
		reqs = append(reqs, request{Path: fmt.Sprintf("/pkg-%02d", i), Headers: map[string]string{"Accept": pageAccept, "Authorization": "Bearer t"}})
	}
	if err := seeEach(tg, reqs); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 20 {
		t.Fatalf("saw %d distinct requests, want 20: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 || k != k[:len("/pkg-00")]+" "+pageAccept+" Bearer t" {
			t.Errorf("%q seen %d times", k, n)
		}
	}
	if err := seeEach(tg, append(reqs, request{Path: "/broken"})); err == nil {
		t.Error("a 503 first view was not reported")
	}
}
