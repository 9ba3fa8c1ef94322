package replication

import "strings"

// Filter decides which upstream names may enter the mirror: never a
// private scope, and only allow-listed names or scopes when a list is set.
type Filter struct {
	allowNames    map[string]bool
	allowScopes   map[string]bool
	privateScopes map[string]bool
}

// NewFilter builds a filter. allow entries are package names or scopes
// ("@acme" or "@acme/*"); private scopes may be written with or without "@".
func NewFilter(allow, privateScopes []string) *Filter {
	f := &Filter{allowNames: map[string]bool{}, allowScopes: map[string]bool{}, privateScopes: map[string]bool{}}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case strings.HasPrefix(a, "@") && !strings.Contains(strings.TrimSuffix(a, "/*"), "/"):
			f.allowScopes[strings.TrimPrefix(strings.TrimSuffix(a, "/*"), "@")] = true
		default:
			f.allowNames[a] = true
		}
	}
	for _, s := range privateScopes {
		if s = strings.Trim(strings.TrimSpace(s), "@/*"); s != "" {
			f.privateScopes[s] = true
		}
	}
	return f
}

func scopeOf(name string) string {
	if !strings.HasPrefix(name, "@") {
		return ""
	}
	scope, _, _ := strings.Cut(name[1:], "/")
	return scope
}

// Private reports whether name's scope is private: such names are never
// looked up upstream.
func (f *Filter) Private(name string) bool {
	s := scopeOf(name)
	return s != "" && f.privateScopes[s]
}

// Allowed reports whether name may be mirrored.
func (f *Filter) Allowed(name string) bool {
	if f.Private(name) || strings.HasPrefix(name, "_design/") {
		return false
	}
	if len(f.allowNames) == 0 && len(f.allowScopes) == 0 {
		return true
	}
	return f.allowNames[name] || f.allowScopes[scopeOf(name)]
}
