package registry

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"
)

// Person is a maintainer or publisher as npm writes them.
type Person struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// Attachment is a CouchDB attachment entry of a packument document: a stub
// for a stored tarball, or inline base64 data for one being written.
type Attachment struct {
	ContentType string `json:"content_type,omitempty"`
	Digest      string `json:"digest,omitempty"`
	Length      int64  `json:"length,omitempty"`
	RevPos      int    `json:"revpos,omitempty"`
	Stub        bool   `json:"stub,omitempty"`
	Data        string `json:"data,omitempty"`
	// FromRev, set by MergeLeaves, names the leaf revision whose copy of
	// this attachment the merged document must carry; never stored.
	FromRev string `json:"-"`
	// FromName is the attachment's name in that revision, when the merge
	// stores it under another (a tarball kept aside); never stored.
	FromName string `json:"-"`
}

// Manifest is one version's metadata, kept as the raw JSON object so that
// every field a publisher sent survives untouched.
type Manifest = json.RawMessage

// Packument is a package document: what CouchDB stores and, rendered,
// what npm reads. Known fields are typed; all other root fields (readme,
// description, repository, …) are kept verbatim in Fields.
type Packument struct {
	ID          string
	Rev         string
	Name        string
	DistTags    map[string]string
	Versions    map[string]Manifest
	Time        map[string]string
	Unpublished json.RawMessage // time.unpublished of a tombstone
	Maintainers []Person
	Users       map[string]bool
	Attachments map[string]Attachment
	Fields      map[string]json.RawMessage
	// Meta is couchnpm's bookkeeping (the root field "couchnpm"; see
	// conflicts.go), never rendered to clients.
	Meta *Meta
	// Conflicts lists the losing leaf revisions CouchDB reported with the
	// document (_conflicts); read only, never written.
	Conflicts []string
}

// NewPackument returns an empty packument for name.
func NewPackument(name string) *Packument {
	return &Packument{
		ID: name, Name: name,
		DistTags: map[string]string{}, Versions: map[string]Manifest{}, Time: map[string]string{},
		Users: map[string]bool{}, Attachments: map[string]Attachment{}, Fields: map[string]json.RawMessage{},
	}
}

// IsTombstone reports whether the package was unpublished entirely.
func (p *Packument) IsTombstone() bool { return len(p.Unpublished) > 0 && len(p.Versions) == 0 }

// SortedVersions lists the versions in SemVer order, lowest first.
func (p *Packument) SortedVersions() []string {
	vs := make([]string, 0, len(p.Versions))
	for v := range p.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return CompareVersions(vs[i], vs[j]) < 0 })
	return vs
}

// HasMaintainer reports whether user maintains the package.
func (p *Packument) HasMaintainer(user string) bool {
	for _, m := range p.Maintainers {
		if m.Name == user {
			return true
		}
	}
	return false
}

// UnmarshalJSON reads a CouchDB packument document. Fields of unexpected
// shape (old upstream data) are kept raw rather than failing the document.
func (p *Packument) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*p = *NewPackument("")
	take := func(key string, into any) {
		v, ok := raw[key]
		if !ok {
			return
		}
		// Decode into a fresh value: on a type error encoding/json leaves a
		// partly filled map or slice, which must not replace the raw field.
		tmp := reflect.New(reflect.TypeOf(into).Elem())
		if err := json.Unmarshal(v, tmp.Interface()); err == nil {
			reflect.ValueOf(into).Elem().Set(tmp.Elem())
			delete(raw, key)
		}
	}
	take("_id", &p.ID)
	take("_rev", &p.Rev)
	take("name", &p.Name)
	take("dist-tags", &p.DistTags)
	take("versions", &p.Versions)
	take("maintainers", &p.Maintainers)
	take("users", &p.Users)
	take("_attachments", &p.Attachments)
	take("_conflicts", &p.Conflicts)
	take("couchnpm", &p.Meta)
	if t, ok := raw["time"]; ok {
		var times map[string]json.RawMessage
		if json.Unmarshal(t, &times) == nil {
			delete(raw, "time")
			for k, v := range times {
				var s string
				if json.Unmarshal(v, &s) == nil {
					p.Time[k] = s
				} else if k == "unpublished" {
					p.Unpublished = v
				}
			}
		}
	}
	for _, m := range []*map[string]string{&p.DistTags, &p.Time} {
		if *m == nil {
			*m = map[string]string{}
		}
	}
	if p.Versions == nil {
		p.Versions = map[string]Manifest{}
	}
	if p.Users == nil {
		p.Users = map[string]bool{}
	}
	if p.Attachments == nil {
		p.Attachments = map[string]Attachment{}
	}
	p.Fields = raw
	return nil
}

// MarshalJSON writes the document as CouchDB stores it (with _rev and
// _attachments when set).
func (p *Packument) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(p.Fields)+10)
	for k, v := range p.Fields {
		out[k] = v
	}
	out["_id"] = p.ID
	if p.Rev != "" {
		out["_rev"] = p.Rev
	}
	out["name"] = p.Name
	// A field of unexpected shape stays raw in Fields (see UnmarshalJSON);
	// the typed value replaces it only once something was put there.
	known := func(key string, v any, n int) {
		if _, raw := p.Fields[key]; !raw || n > 0 {
			out[key] = v
		}
	}
	known("dist-tags", p.DistTags, len(p.DistTags))
	known("versions", p.Versions, len(p.Versions))
	if p.Maintainers == nil {
		known("maintainers", []Person{}, 0)
	} else {
		known("maintainers", p.Maintainers, len(p.Maintainers))
	}
	times := make(map[string]any, len(p.Time)+1)
	for k, v := range p.Time {
		times[k] = v
	}
	if len(p.Unpublished) > 0 {
		times["unpublished"] = p.Unpublished
	}
	out["time"] = times
	if len(p.Users) > 0 {
		out["users"] = p.Users
	}
	if len(p.Attachments) > 0 {
		out["_attachments"] = p.Attachments
	}
	if p.Meta != nil && (len(p.Meta.Changed) > 0 || len(p.Meta.Conflicts) > 0) {
		out["couchnpm"] = p.Meta
	}
	return json.Marshal(out)
}

// Clone copies p so that the copy can be changed without touching p: its
// maps and slices, and Meta. The JSON values (manifests, fields) are
// shared: nothing in couchnpm writes into a json.RawMessage in place, it
// replaces it. Readers that share one packument (a cache, a singleflight
// of several waiters) hand each caller a Clone.
func (p *Packument) Clone() *Packument {
	if p == nil {
		return nil
	}
	q := *p
	q.DistTags = maps.Clone(p.DistTags)
	q.Versions = maps.Clone(p.Versions)
	q.Time = maps.Clone(p.Time)
	q.Users = maps.Clone(p.Users)
	q.Attachments = maps.Clone(p.Attachments)
	q.Fields = maps.Clone(p.Fields)
	q.Maintainers = slices.Clone(p.Maintainers)
	q.Unpublished = slices.Clone(p.Unpublished)
	q.Conflicts = slices.Clone(p.Conflicts)
	if p.Meta != nil {
		q.Meta = &Meta{Changed: maps.Clone(p.Meta.Changed), Conflicts: slices.Clone(p.Meta.Conflicts)}
	}
	return &q
}
