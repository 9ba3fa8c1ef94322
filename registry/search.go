package registry

import (
	"context"
	"sort"
	"strings"
)

// SearchRow is one row of the search view: a summary of a package's latest
// version, emitted once per search term (see designdoc/js/search.map.js).
type SearchRow struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description"`
	Keywords    []string `json:"keywords"`
	Date        string   `json:"date"`
	Maintainers []Person `json:"maintainers"`
	Deprecated  bool     `json:"deprecated"`
	Restricted  bool     `json:"restricted"`
}

// SearchHit is a search result with its score in [0, 1].
type SearchHit struct {
	SearchRow
	Score float64
}

// SearchQuery is GET /-/v1/search's text, size and from.
type SearchQuery struct {
	Text string
	Size int
	From int
}

// maxSearchRows bounds the rows read from the view per term, so that a
// one-letter prefix cannot make a query read the whole index.
const maxSearchRows = 5000

// criterion is one part of the query: a view key (or key prefix) and a
// filter on the rows it returns.
type criterion struct {
	key    string
	prefix bool
	keep   func(SearchRow) bool
}

// parseSearch splits npm's search text into criteria. Supported
// qualifiers: keywords:a,b (any of), author:, maintainer:, scope:,
// not:deprecated and is:deprecated; other qualifiers are ignored.
func parseSearch(text string) (crits []criterion, filters []func(SearchRow) bool, words []string) {
	for _, f := range strings.Fields(strings.ToLower(text)) {
		q, val, ok := strings.Cut(f, ":")
		if !ok || val == "" {
			words = append(words, f)
			crits = append(crits, criterion{key: f, prefix: true})
			continue
		}
		switch q {
		case "keywords":
			kws := strings.Split(val, ",")
			crits = append(crits, criterion{key: kws[0], keep: func(r SearchRow) bool {
				for _, k := range r.Keywords {
					for _, want := range kws {
						if k == want {
							return true
						}
					}
				}
				return false
			}})
		case "author":
			crits = append(crits, criterion{key: "author:" + val, prefix: true})
		case "maintainer":
			crits = append(crits, criterion{key: "maintainer:" + val})
		case "scope":
			crits = append(crits, criterion{key: "scope:" + strings.TrimPrefix(val, "@")})
		case "not", "is":
			if val == "deprecated" {
				want := q == "is"
				filters = append(filters, func(r SearchRow) bool { return r.Deprecated == want })
			}
		default:
			words = append(words, f)
			crits = append(crits, criterion{key: f, prefix: true})
		}
	}
	return crits, filters, words
}

// Search answers npm search from the search view: every criterion is one
// view query (by key or key range, never a scan), the results are
// intersected, and restricted packages the caller may not read are left out.
// An exact name match ranks first, then name prefixes, then the rest.
func (s *Service) Search(ctx context.Context, user Identity, q SearchQuery) ([]SearchHit, int, error) {
	crits, filters, words := parseSearch(q.Text)
	if len(crits) == 0 {
		return nil, 0, E(KindInvalid, "search text must contain a term or a qualifier such as keywords:, author:, maintainer: or scope:")
	}
	var found map[string]SearchRow
	for _, c := range crits {
		rows, err := s.cmd.index.SearchTerm(ctx, c.key, c.prefix, maxSearchRows)
		if err != nil {
			return nil, 0, err
		}
		match := map[string]SearchRow{}
		for _, r := range rows {
			if c.keep == nil || c.keep(r) {
				match[r.Name] = r
			}
		}
		if found == nil {
			found = match
			continue
		}
		for n := range found {
			if _, ok := match[n]; !ok {
				delete(found, n)
			}
		}
	}
	hits := make([]SearchHit, 0, len(found))
	access := s.newRowFilter(user)
next:
	for _, r := range found {
		perm, err := access.permission(ctx, r)
		if err != nil {
			return nil, 0, err
		}
		if perm == permNone {
			continue
		}
		for _, f := range filters {
			if !f(r) {
				continue next
			}
		}
		hits = append(hits, SearchHit{SearchRow: r, Score: nameScore(r.Name, words)})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].Name < hits[j].Name
	})
	total := len(hits)
	from := min(max(q.From, 0), total)
	size := q.Size
	if size <= 0 || size > 250 {
		size = 20
	}
	return hits[from:min(from+size, total)], total, nil
}

// nameScore ranks how well a name matches the query words.
func nameScore(name string, words []string) float64 {
	if len(words) == 0 {
		return 0.5
	}
	lname := strings.ToLower(name)
	_, bare, _ := SplitName(lname)
	text := strings.Join(words, " ")
	switch {
	case lname == text || bare == text:
		return 1
	case strings.HasPrefix(lname, text) || strings.HasPrefix(bare, text):
		return 0.9
	case strings.Contains(lname, text):
		return 0.8
	}
	return 0.5
}
