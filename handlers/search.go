package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// searchPerson is npm search's {username, email}.
type searchPerson struct {
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
}

// search answers GET /-/v1/search in the public registry's shape; npm
// search reads objects[].package.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	user, _, c, err := s.prelude(r, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	from, _ := strconv.Atoi(q.Get("from"))
	hits, total, err := c.Search(r.Context(), user, registry.SearchQuery{Text: q.Get("text"), Size: size, From: from})
	if err != nil {
		writeError(w, r, err)
		return
	}
	objects := make([]map[string]any, 0, len(hits))
	for _, h := range hits {
		maint := make([]searchPerson, 0, len(h.Maintainers))
		for _, m := range h.Maintainers {
			maint = append(maint, searchPerson{Username: m.Name, Email: m.Email})
		}
		scope := "unscoped"
		if sc, _, _ := registry.SplitName(h.Name); sc != "" {
			scope = sc
		}
		keywords := h.Keywords
		if keywords == nil {
			keywords = []string{}
		}
		pkg := map[string]any{
			"name": h.Name, "scope": scope, "version": h.Version, "description": h.Description,
			"keywords": keywords, "date": h.Date, "maintainers": maint,
			"links": map[string]string{"npm": s.cfg.PublicURL + "/" + h.Name},
		}
		if len(maint) > 0 {
			pkg["publisher"] = maint[0]
		}
		objects = append(objects, map[string]any{
			"package":     pkg,
			"score":       map[string]any{"final": h.Score, "detail": map[string]float64{"quality": h.Score, "popularity": 0, "maintenance": 0}},
			"searchScore": h.Score,
			"flags":       map[string]bool{"deprecated": h.Deprecated},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"objects": objects, "total": total, "time": time.Now().UTC().Format(time.RFC1123),
	})
}

// starredByUser answers npm stars: GET /-/_view/starredByUser?key="user"
// (CouchDB view query syntax: the key is JSON).
func (s *Server) starredByUser(w http.ResponseWriter, r *http.Request) {
	user, _, c, err := s.prelude(r, false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	raw := r.URL.Query().Get("key")
	var who string
	if err := json.Unmarshal([]byte(raw), &who); err != nil {
		// Accept a bare name too (hand-written queries).
		who, _ = url.QueryUnescape(strings.Trim(raw, `"`))
	}
	if who == "" {
		writeError(w, r, registry.E(registry.KindInvalid, `key must name a user, as key="name"`))
		return
	}
	names, err := c.StarredBy(r.Context(), user, who)
	if err != nil {
		writeError(w, r, err)
		return
	}
	rows := make([]map[string]string, len(names))
	for i, n := range names {
		rows[i] = map[string]string{"key": who, "value": n}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rows": rows})
}
