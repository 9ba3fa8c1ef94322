package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// RequestObserver records finished requests (package metrics).
type RequestObserver interface {
	// ObserveRequest records one request: its route template (never the
	// raw path, so label values stay few), method, status and duration.
	ObserveRequest(route, method string, status int, d time.Duration)
}

// observeRequests reports every routed request to o.
func observeRequests(o RequestObserver) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			o.ObserveRequest(routeLabel(r), r.Method, status, time.Since(start))
		})
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// routeLabel is the matched route's template with the variables' patterns
// cut out: "/{pkg}/-/{file}".
func routeLabel(r *http.Request) string {
	route := mux.CurrentRoute(r)
	if route == nil {
		return "unmatched"
	}
	tpl, err := route.GetPathTemplate()
	if err != nil {
		return "unmatched"
	}
	var b strings.Builder
	depth := 0
	skipping := false
	for _, ch := range tpl {
		switch {
		case ch == '{':
			depth++
			if depth == 1 {
				b.WriteRune(ch)
				continue
			}
		case ch == '}':
			depth--
			if depth == 0 {
				skipping = false
				b.WriteRune(ch)
				continue
			}
		case ch == ':' && depth == 1:
			skipping = true
		}
		if !skipping {
			b.WriteRune(ch)
		}
	}
	return b.String()
}
