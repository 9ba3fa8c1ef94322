package handlers

import (
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

// routeLabel is the matched route's template with the variables' patterns
// cut out: "/{pkg}/-/{file}"; "unmatched" for none (404, 405, dot
// segments).
func routeLabel(route *mux.Route) string {
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
