package handlers

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// KeySource lists public signing keys.
type KeySource interface {
	PublicKeys(ctx context.Context) ([]registry.PublicKey, error)
}

// keys answers GET /-/npm/v1/keys (npm audit signatures): this registry's
// keys, then the upstream's, so that mirrored versions the upstream signed
// verify through couchnpm. Without the upstream's keys (never fetched and
// the upstream down) this registry's are served alone: its own versions
// still verify.
func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Keys == nil {
		s.notFound(w, r)
		return
	}
	own, err := s.cfg.Keys.PublicKeys(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := append([]registry.PublicKey{}, own...)
	if s.cfg.UpstreamKeys != nil {
		up, err := s.cfg.UpstreamKeys.PublicKeys(r.Context())
		if err != nil {
			zerolog.Ctx(r.Context()).Warn().Err(err).Msg("serving the signing keys without the upstream's")
		}
		seen := map[string]bool{}
		for _, k := range own {
			seen[k.KeyID] = true
		}
		for _, k := range up {
			if !seen[k.KeyID] {
				seen[k.KeyID] = true
				out = append(out, k)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// AttestationReader returns a version's attestations document.
type AttestationReader interface {
	Attestations(ctx context.Context, user registry.Identity, name, version string) ([]byte, error)
}

// attestations answers GET /-/npm/v1/attestations/{name}@{version} (npm
// audit signatures, for versions with dist.attestations).
func (s *Server) attestations(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Attestations == nil {
		s.notFound(w, r)
		return
	}
	spec, err := url.PathUnescape(mux.Vars(r)["spec"])
	if err != nil {
		writeError(w, r, registry.E(registry.KindInvalid, "the path is not validly escaped"))
		return
	}
	name, version, err := registry.ParseAttestationsSpec(spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	user, err := identity(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	body, err := s.cfg.Attestations.Attestations(r.Context(), user, name, version)
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
