package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// maxSmallBody bounds the JSON bodies of management commands (a tag set,
// an access level, a token request).
const maxSmallBody = 1 << 20

// decodeSmall reads a small JSON body into v.
func decodeSmall(r *http.Request, v any) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxSmallBody)).Decode(v); err != nil {
		return registry.Wrap(registry.KindInvalid, err, "the request body is not the expected JSON: %s", err.Error())
	}
	return nil
}

func routeVar(r *http.Request, key string) (string, error) {
	v, err := url.PathUnescape(mux.Vars(r)[key])
	if err != nil || v == "" {
		return "", registry.E(registry.KindInvalid, "invalid %s in the URL", key)
	}
	return v, nil
}

// distTags answers npm dist-tag ls.
func (s *Server) distTags(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	tags, err := c.DistTags(r.Context(), user, name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tags)
}

// setDistTag answers npm dist-tag add: the body is the version as a JSON
// string.
func (s *Server) setDistTag(w http.ResponseWriter, r *http.Request) {
	s.distTagCommand(w, r, func(user registry.Identity, name, tag string, c Commands) (int, any, error) {
		var version string
		if err := decodeSmall(r, &version); err != nil {
			return 0, nil, err
		}
		noteOf(r).target = tag + "=" + version
		if err := c.SetDistTag(r.Context(), user, name, tag, version); err != nil {
			return 0, nil, err
		}
		zerolog.Ctx(r.Context()).Info().Str("pkg", name).Str("tag", tag).Str("version", version).Msg("dist-tag set")
		return http.StatusCreated, map[string]any{"ok": true, tag: version}, nil
	})
}

// deleteDistTag answers npm dist-tag rm.
func (s *Server) deleteDistTag(w http.ResponseWriter, r *http.Request) {
	s.distTagCommand(w, r, func(user registry.Identity, name, tag string, c Commands) (int, any, error) {
		if err := c.DeleteDistTag(r.Context(), user, name, tag); err != nil {
			return 0, nil, err
		}
		zerolog.Ctx(r.Context()).Info().Str("pkg", name).Str("tag", tag).Msg("dist-tag removed")
		return http.StatusOK, map[string]bool{"ok": true}, nil
	})
}

// distTagCommand runs a command on one dist-tag named in the URL, for a
// logged-in user, and writes its answer or its error.
func (s *Server) distTagCommand(w http.ResponseWriter, r *http.Request,
	run func(user registry.Identity, name, tag string, c Commands) (status int, body any, err error)) {
	user, name, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	tag, err := routeVar(r, "tag")
	if err != nil {
		writeError(w, r, err)
		return
	}
	status, body, err := run(user, name, tag, c)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, body)
}

// replaceDistTags sets the whole tag set (PUT) or merges into it (POST).
// The couchapp merged on PUT too (a typo); this registry does what the
// method says.
func (s *Server) replaceDistTags(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var tags map[string]string
	if err := decodeSmall(r, &tags); err != nil {
		writeError(w, r, err)
		return
	}
	noteOf(r).target = tagList(tags)
	if err := c.SetDistTags(r.Context(), user, name, tags, r.Method == http.MethodPut); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// update answers a PUT /{pkg} without tarballs: deprecate, star, owner
// change, single-version unpublish (see registry.Service.Update).
func (s *Server) update(w http.ResponseWriter, r *http.Request, user registry.Identity, name string, body *registry.UpdateBody) {
	rev := mux.Vars(r)["rev"]
	if err := s.cmds.Update(r.Context(), user, name, rev, body); err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("pkg", name).Str("command", r.Header.Get("Npm-Command")).Msg("package updated")
	writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "id": name, "success": true})
}

// unpublish answers npm unpublish of a whole package (DELETE /{pkg}/-rev/{rev}).
func (s *Server) unpublish(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := c.Unpublish(r.Context(), user, name, mux.Vars(r)["rev"]); err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("pkg", name).Msg("package unpublished")
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "id": name})
}

// deleteTarball answers the last step of a single-version unpublish.
func (s *Server) deleteTarball(w http.ResponseWriter, r *http.Request) {
	user, name, c, err := s.prelude(r, true)
	if err != nil {
		writeError(w, r, err)
		return
	}
	file, err := routeVar(r, "file")
	if err != nil {
		writeError(w, r, err)
		return
	}
	noteOf(r).target = file
	if err := c.DeleteTarball(r.Context(), user, name, file); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
