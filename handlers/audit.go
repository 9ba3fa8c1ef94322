package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// maxAuditBody bounds a forwarded audit request (a lockfile's name→versions
// map, gzipped).
const maxAuditBody = 32 << 20

// defaultAuditTimeout applies when the configuration names none.
const defaultAuditTimeout = 30 * time.Second

// auditClient forwards audits; each request carries its own deadline.
var auditClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}

// auditBulk forwards npm audit's bulk advisory request to the configured
// upstream, streaming both ways. Credentials are never forwarded: the
// caller's token is for this registry only. Without an upstream the answer
// is a 403 whose message npm audit prints; npm install treats any audit
// failure as "no report" and stays quiet.
func (s *Server) auditBulk(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AuditUpstream == "" {
		writeError(w, r, registry.E(registry.KindForbidden, "auditing is not configured on this registry (its operator can set --audit-upstream)"))
		return
	}
	timeout := s.cfg.AuditTimeout
	if timeout <= 0 {
		timeout = defaultAuditTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	target := strings.TrimRight(s.cfg.AuditUpstream, "/") + r.URL.EscapedPath()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, http.MaxBytesReader(w, r.Body, maxAuditBody))
	if err != nil {
		writeError(w, r, registry.Wrap(registry.KindInternal, err, "cannot build the audit request"))
		return
	}
	for _, h := range []string{"Content-Type", "Content-Encoding", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.ContentLength = r.ContentLength
	req.Header.Set("User-Agent", "couchnpm (audit forwarder)")
	resp, err := auditClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			writeError(w, r, registry.Wrap(registry.KindUnavailable, err, "the audit upstream did not answer within %s", timeout))
			return
		}
		writeError(w, r, registry.Wrap(registry.KindBadGateway, err, "the audit upstream cannot be reached"))
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Encoding", "Content-Length"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	if n, err := io.Copy(w, resp.Body); err != nil {
		zerolog.Ctx(r.Context()).Warn().Int64("sent", n).Err(err).Msg("audit stream broke")
	}
}
