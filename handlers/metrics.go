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

// labelledObserver is a RequestObserver with the route labels worked out
// once, when the chain is built, not for every request.
type labelledObserver struct {
	RequestObserver
	labels map[*mux.Route]string // read only once built
}

// routeLabels wraps obs (nil: none) with the labels of router's routes.
func routeLabels(router *mux.Router, obs RequestObserver) RequestObserver {
	if obs == nil {
		return nil
	}
	l := &labelledObserver{RequestObserver: obs, labels: map[*mux.Route]string{}}
	_ = router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		l.labels[route] = routeLabel(route)
		return nil
	})
	return l
}

// observe records one request under route's label (routeLabel).
func (l *labelledObserver) observe(route *mux.Route, method string, status int, d time.Duration) {
	label, ok := l.labels[route]
	if !ok { // none matched, or a route added after the chain was built
		label = routeLabel(route)
	}
	l.ObserveRequest(label, method, status, d)
}
