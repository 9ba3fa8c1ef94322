package handlers

import (
	"net/http"
	"strconv"

	"github.com/couchnpm/couchnpm/registry"
)

// BodyCache keeps the rendered bodies of packument revisions (package
// cache): raw and, when worth it, gzipped. It renders a revision once per
// kind ("full", "write", "corgi") and returns what it kept afterwards.
type BodyCache interface {
	Body(p *registry.Packument, kind string, render func() ([]byte, error)) (raw, gz []byte, err error)
}

// writePackument renders (or takes from the body cache) packument p as kind
// and sends it. Access was decided before: p is what the caller may see.
func (s *Server) writePackument(w http.ResponseWriter, r *http.Request, p *registry.Packument, kind string, withRev bool) {
	render := func() ([]byte, error) {
		if kind == "corgi" {
			return s.render.Abbreviated(p)
		}
		return s.render.Full(p, withRev && kind == "write")
	}
	if s.cfg.Bodies == nil {
		body, err := render()
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeBody(w, r, body)
		return
	}
	raw, gz, err := s.cfg.Bodies.Body(p, kind, render)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if gz == nil || r.Method == http.MethodHead || !acceptsGzip(headerValue(r.Header, "Accept-Encoding")) {
		writeBody(w, r, raw)
		return
	}
	h := w.Header()
	h["Content-Encoding"] = gzipEncoding
	h["Content-Length"] = []string{strconv.Itoa(len(gz))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(gz)
}
