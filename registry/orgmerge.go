package registry

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Merging conflicting revisions of an org document (docs/conflicts.md).
//
// On a CouchDB cluster, or between two sites replicating, two changes of
// one org can be stored side by side as conflicting revisions; CouchDB
// then shows one of them and hides the other. An org change is often a
// security change (npm org rm, npm access revoke), so the org is read with
// every leaf and merged entry by entry before any access is decided or
// any change is written.
//
// An org is a set of entries, each present (with a value) or absent:
//
//	member/U            U belongs to the org
//	role/U              U's role (owner, admin, developer)
//	team/T              team T exists (value: its description)
//	team/T/member/U     U is in team T
//	team/T/package/P    team T is granted P (value: read-only, read-write)
//
// Every write stamps each entry it adds, changes or removes with its time
// (Org.Changed); a removed entry keeps its stamp as a tombstone. Merging
// takes, per entry, the leaf with the latest stamp; on equal stamps a
// removal beats an addition and the lesser value (role, permission) beats
// the greater, so a revocation is never undone by an older or concurrent
// write. Entries inside a team or of a member count only when they are not
// older than the team's creation or the member's joining: a re-created
// team or re-added member does not get back what its previous incarnation
// had. Documents written before stamps existed count their entries as
// stamped at the org's creation.

// Entry prefixes of an org document (see above).
const (
	orgEntryMember = "member/"
	orgEntryRole   = "role/"
	orgEntryTeam   = "team/"
)

// DocLeaf is one live leaf revision of a state document.
type DocLeaf struct {
	Rev  string
	Body json.RawMessage
}

// LeafDocs reads every leaf revision of a state document and replaces the
// losing ones with a merge (CouchDB: conflicts=true, open_revs,
// _bulk_docs).
type LeafDocs interface {
	// Leaves returns the live leaf revisions of id, CouchDB's winner
	// first; KindNotFound when id is absent.
	Leaves(ctx context.Context, id string) ([]DocLeaf, error)
	// WriteMerge writes v on top of revision rev (a new document when rev
	// is empty) and then deletes the losing leaves; KindConflict when rev
	// is no longer the winner.
	WriteMerge(ctx context.Context, id, rev string, v any, losers []string) (Written, error)
}

// orgState is an org's entries: key → value of each present entry.
type orgState map[string]string

// entries lists o's present entries.
func (o *Org) entries() orgState {
	e := orgState{}
	for u, r := range o.Members {
		e[orgEntryMember+u] = ""
		e[orgEntryRole+u] = r
	}
	for name, t := range o.Teams {
		if t == nil {
			continue
		}
		e[orgEntryTeam+name] = t.Description
		for _, u := range t.Members {
			e[orgEntryTeam+name+"/member/"+u] = ""
		}
		for p, perm := range t.Packages {
			e[orgEntryTeam+name+"/package/"+p] = perm
		}
	}
	return e
}

// created is o's creation time; the zero time when unknown.
func (o *Org) created() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, o.Created)
	return t
}

// stampOf is when entry key of o last changed: its stamp, or for an
// entry present without one (written before stamps existed) the org's
// creation; the zero time when o never had it.
func (o *Org) stampOf(key string, present bool) time.Time {
	if s, ok := o.Changed[key]; ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	if present {
		return o.created()
	}
	return time.Time{}
}

// stampChanges records at time at every entry that differs from before.
// A write's stamp is later than every stamp of the document it replaces:
// on a clock behind the last writer's it is the latest stamp plus a
// nanosecond, so a write always wins a merge against what it saw (a team
// seat given after a member joined is never older than the joining).
// It returns the stamps it wrote.
func (o *Org) stampChanges(before orgState, at time.Time) map[string]time.Time {
	after := o.entries()
	written := map[string]time.Time{}
	t := at
	if latest, ok := o.latestStamp(); ok && !t.After(latest) {
		t = latest.Add(time.Nanosecond)
	}
	if c := o.created(); t.Before(c) {
		t = c // never before the org's creation, where unstamped entries are
	}
	for _, key := range unionOf(before, after) {
		bv, bok := before[key]
		av, aok := after[key]
		if bok == aok && bv == av {
			continue
		}
		if o.Changed == nil {
			o.Changed = map[string]string{}
		}
		o.Changed[key] = t.UTC().Format(time.RFC3339Nano)
		written[key] = t
	}
	return written
}

// latestStamp is the latest stamp of o; false when it has none.
func (o *Org) latestStamp() (time.Time, bool) {
	var latest time.Time
	found := false
	for _, s := range o.Changed {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && (!found || t.After(latest)) {
			latest, found = t, true
		}
	}
	return latest, found
}

func unionOf(a, b orgState) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// holds reports whether o has every stamp of written, or a later one: a
// write is in o (or was superseded by a later change).
func (o *Org) holds(written map[string]time.Time) bool {
	e := o.entries()
	for key, t := range written {
		_, present := e[key]
		if o.stampOf(key, present).Before(t) {
			return false
		}
	}
	return true
}

// orgVersion is one leaf's say on one entry.
type orgVersion struct {
	present bool
	value   string
	at      time.Time
}

// beats reports whether v wins over w: the later stamp; on equal stamps a
// removal, then the lesser value.
func (v orgVersion) beats(w orgVersion) bool {
	if !v.at.Equal(w.at) {
		return v.at.After(w.at)
	}
	if v.present != w.present {
		return !v.present
	}
	return lesserValue(v.value, w.value)
}

// valueRank orders roles and permissions by what they allow.
var valueRank = map[string]int{
	RoleDeveloper: 0, RoleAdmin: 1, RoleOwner: 2,
	PermReadOnly: 0, PermReadWrite: 1,
}

// lesserValue reports whether a allows less than b (or, for descriptions,
// sorts first): the tie-break that leaves the narrower access.
func lesserValue(a, b string) bool {
	ra, aok := valueRank[a]
	rb, bok := valueRank[b]
	if aok && bok && ra != rb {
		return ra < rb
	}
	return a < b
}

// MergeOrgs merges the leaf revisions of one org into the org that loses
// no change (see the top of this file). It is deterministic: the order of
// leaves does not matter, and merging the result with the same leaves
// again gives the result. notes say what the merge had to decide beyond
// the entries (an owner kept so that the org keeps one).
func MergeOrgs(leaves []*Org) (*Org, []string) {
	leaves, notes := sameCreation(leaves)
	states := make([]orgState, len(leaves))
	var keys []string
	seen := map[string]bool{}
	for i, l := range leaves {
		states[i] = l.entries()
		for k := range states[i] {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		for k := range l.Changed {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	win := make(map[string]orgVersion, len(keys))
	for _, k := range keys {
		var best orgVersion
		for i, l := range leaves {
			v, ok := states[i][k]
			cand := orgVersion{present: ok, value: v, at: l.stampOf(k, ok)}
			if i == 0 || cand.beats(best) {
				best = cand
			}
		}
		win[k] = best
	}

	m := &Org{Members: map[string]string{}, Teams: map[string]*Team{}, Changed: map[string]string{}}
	for _, l := range leaves {
		if m.Name == "" {
			m.Name = l.Name
		}
		if c := l.created(); !c.IsZero() && (m.Created == "" || c.Before(m.created())) {
			m.Created = l.Created
		}
	}
	at := func(k string) time.Time { return win[k].at }
	for _, k := range keys {
		if u, ok := strings.CutPrefix(k, orgEntryMember); ok && win[k].present {
			role := RoleDeveloper
			if r := win[orgEntryRole+u]; r.present {
				role = r.value
			}
			m.Members[u] = role
		}
		if t, ok := strings.CutPrefix(k, orgEntryTeam); ok && !strings.Contains(t, "/") && win[k].present {
			m.Teams[t] = &Team{Description: win[k].value, Members: []string{}, Packages: map[string]string{}}
		}
	}
	if m.owners() == 0 {
		if u := recentOwner(leaves); u != "" {
			m.Members[u] = RoleOwner
			notes = append(notes, "the merge left "+m.Name+" without an owner; kept "+u+", its most recently made owner")
		}
	}
	for _, k := range keys {
		v := win[k]
		keep := true // the stamp stays: a tombstone or a live entry
		if rest, ok := strings.CutPrefix(k, orgEntryTeam); ok && strings.Contains(rest, "/") {
			team, sub, _ := strings.Cut(rest, "/")
			kind, name, _ := strings.Cut(sub, "/")
			// An entry older than its team's creation belongs to a team
			// destroyed since: forget it.
			keep = !v.at.Before(at(orgEntryTeam + team))
			if kind == "member" && v.at.Before(at(orgEntryMember+name)) {
				keep = false // older than the member's joining or leaving
			}
			if t := m.Teams[team]; keep && v.present && t != nil {
				switch kind {
				case "member":
					if _, member := m.Members[name]; member {
						t.Members = append(t.Members, name)
					}
				case "package":
					t.Packages[name] = v.value
				}
			}
		}
		if keep && !v.at.IsZero() {
			m.Changed[k] = v.at.UTC().Format(time.RFC3339Nano)
		}
	}
	for _, t := range m.Teams {
		sort.Strings(t.Members)
	}
	return m, notes
}

// sameCreation keeps the leaves of the earliest creation of the org: two
// `npm org set` that created the same org on two sides of a partition made
// two orgs, and the later creator does not become an owner of the
// earlier one by the merge (a creation claims a scope).
func sameCreation(leaves []*Org) ([]*Org, []string) {
	first := leaves[0]
	for _, l := range leaves[1:] {
		if l.created().Before(first.created()) || l.created().Equal(first.created()) && l.Created < first.Created {
			first = l
		}
	}
	var kept []*Org
	var notes []string
	for _, l := range leaves {
		if l.Created == first.Created {
			kept = append(kept, l)
			continue
		}
		owners := make([]string, 0, 1)
		for u, r := range l.Members {
			if r == RoleOwner {
				owners = append(owners, u)
			}
		}
		sort.Strings(owners)
		notes = append(notes, "a later creation of "+l.Name+" (at "+l.Created+" by "+strings.Join(owners, ", ")+") lost to the one at "+first.Created+"; its changes were dropped")
	}
	return kept, notes
}

// recentOwner is the user most recently made owner in any leaf (by the
// stamps of their membership and role; on equal stamps the first name):
// the owner a merge keeps when it would leave none.
func recentOwner(leaves []*Org) string {
	var best string
	var bestAt time.Time
	for _, l := range leaves {
		for u, r := range l.Members {
			if r != RoleOwner {
				continue
			}
			t := l.stampOf(orgEntryRole+u, true)
			if j := l.stampOf(orgEntryMember+u, true); j.After(t) {
				t = j
			}
			if best == "" || t.After(bestAt) || t.Equal(bestAt) && u < best {
				best, bestAt = u, t
			}
		}
	}
	return best
}
