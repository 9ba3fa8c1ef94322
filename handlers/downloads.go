package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/couchnpm/couchnpm/downloads"
	"github.com/couchnpm/couchnpm/registry"
)

// Downloads counts served tarballs and answers the download-count API;
// *downloads.Counter implements it.
type Downloads interface {
	Count(name, version string)
	Days(ctx context.Context, name string, from, to time.Time) ([]downloads.DayCount, error)
	Versions(ctx context.Context, name string, from, to time.Time) (map[string]int64, error)
}

// downloadRoutes adds the download-count API in the shape of npm's
// (point and range per period, per-version counts of the last week).
func (s *Server) downloadRoutes(api *mux.Router) {
	api.HandleFunc("/downloads/point/{period}/"+pkgVar, s.downloadsPoint).Methods(http.MethodGet)
	api.HandleFunc("/downloads/range/{period}/"+pkgVar, s.downloadsRange).Methods(http.MethodGet)
	api.HandleFunc("/downloads/versions/"+pkgVar+"/last-week", s.downloadsVersions).Methods(http.MethodGet)
}

// countDownload records a served tarball (tarball handler).
func (s *Server) countDownload(name, file string) {
	if s.cfg.Downloads == nil {
		return
	}
	if v := registry.TarballVersion(name, file); v != "" {
		s.cfg.Downloads.Count(name, v)
	}
}

// downloadsRequest resolves the package and period, and checks that the
// caller may read the package: a restricted package's counts are as
// invisible as the package.
func (s *Server) downloadsRequest(w http.ResponseWriter, r *http.Request, period string) (string, time.Time, time.Time, bool) {
	if s.cfg.Downloads == nil {
		s.notFound(w, r)
		return "", time.Time{}, time.Time{}, false
	}
	user, name, err := packageRequest(r, identity)
	if err != nil {
		writeError(w, r, err)
		return "", time.Time{}, time.Time{}, false
	}
	from, to, err := registry.ParsePeriod(period, time.Now())
	if err != nil {
		writeError(w, r, err)
		return "", time.Time{}, time.Time{}, false
	}
	if _, err := s.reg.Packument(r.Context(), user, name); err != nil {
		writeError(w, r, err)
		return "", time.Time{}, time.Time{}, false
	}
	return name, from, to, true
}

// downloadDays reads the daily counts of the package and period in the
// URL; ok false: the answer is written.
func (s *Server) downloadDays(w http.ResponseWriter, r *http.Request) (name string, from, to time.Time, days []downloads.DayCount, ok bool) {
	name, from, to, ok = s.downloadsRequest(w, r, mux.Vars(r)["period"])
	if !ok {
		return name, from, to, nil, false
	}
	days, err := s.cfg.Downloads.Days(r.Context(), name, from, to)
	if err != nil {
		writeError(w, r, err)
		return name, from, to, nil, false
	}
	return name, from, to, days, true
}

func (s *Server) downloadsPoint(w http.ResponseWriter, r *http.Request) {
	name, from, to, days, ok := s.downloadDays(w, r)
	if !ok {
		return
	}
	var total int64
	for _, d := range days {
		total += d.Downloads
	}
	writeJSON(w, http.StatusOK, map[string]any{"downloads": total, "start": from.Format(time.DateOnly), "end": to.Format(time.DateOnly), "package": name})
}

func (s *Server) downloadsRange(w http.ResponseWriter, r *http.Request) {
	name, from, to, days, ok := s.downloadDays(w, r)
	if !ok {
		return
	}
	if days == nil {
		days = []downloads.DayCount{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"downloads": days, "start": from.Format(time.DateOnly), "end": to.Format(time.DateOnly), "package": name})
}

func (s *Server) downloadsVersions(w http.ResponseWriter, r *http.Request) {
	name, from, to, ok := s.downloadsRequest(w, r, "last-week")
	if !ok {
		return
	}
	vs, err := s.cfg.Downloads.Versions(r.Context(), name, from, to)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"package": name, "downloads": vs})
}
