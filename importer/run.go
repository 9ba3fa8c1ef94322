package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// Target is where packages go: registry.Service.
type Target interface {
	Import(ctx context.Context, operator registry.Identity, pkg *registry.ImportedPackage) (*registry.ImportResult, error)
}

// Accounts tells which users exist here (the maintainers of an imported
// package must).
type Accounts interface {
	GetUser(ctx context.Context, name string) (*registry.User, error)
}

// Observer hears of each package as it is done (a progress bar, a log
// line) and may record it (the audit log).
type Observer interface {
	Start(total int)
	Done(r PackageReport)
}

// Importer copies every package of a source.
type Importer struct {
	Source   Source
	Target   Target
	Accounts Accounts
	// Operator is who runs the import; the write acts for them as an
	// administrator (registry.Service.Import).
	Operator registry.Identity
	// Owner maintains the packages none of whose source maintainers is a
	// user here ("" : such packages are refused).
	Owner string
	// Access of the packages new here ("": restricted for those the
	// source only shows with credentials, else public).
	Access string
	// Parallel is how many packages are copied at a time (1 when unset).
	Parallel int
	Observer Observer
}

// PackageReport is what became of one package.
type PackageReport struct {
	Name     string
	Copied   []string
	Skipped  []string
	Refused  map[string]string // version (or "" for the whole package) → why
	Notes    []string
	Maintain []string // its maintainers, when it was created now
}

// Outcome classifies a report: refused when anything was refused, copied
// when a version was copied, else skipped.
func (r PackageReport) Outcome() string {
	switch {
	case len(r.Refused) > 0:
		return "refused"
	case len(r.Copied) > 0:
		return "copied"
	default:
		return "skipped"
	}
}

// Run imports every package, Parallel at a time, and returns the reports
// in name order. An error is returned only when the source cannot be
// listed, or when ctx ends (the reports then hold the packages done).
func (im *Importer) Run(ctx context.Context) ([]PackageReport, error) {
	names, err := im.Source.Names(ctx)
	if err != nil {
		return nil, err
	}
	if im.Observer != nil {
		im.Observer.Start(len(names))
	}
	workers := min(max(im.Parallel, 1), 16)
	reports := make([]*PackageReport, len(names))
	next := make(chan int)
	var mu sync.Mutex // the observer hears one package at a time
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := im.one(ctx, names[i])
				mu.Lock()
				reports[i] = &r
				if im.Observer != nil {
					im.Observer.Done(r)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range names {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	var out []PackageReport
	for _, r := range reports {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, ctx.Err()
}

// batchBytes is about how many bytes of tarballs one write carries.
var batchBytes = 64 << 20

func (im *Importer) one(ctx context.Context, name string) PackageReport {
	rep := PackageReport{Name: name, Refused: map[string]string{}}
	refuse := func(why string) PackageReport {
		rep.Refused[""] = why
		return rep
	}
	p, err := im.Source.Packument(ctx, name)
	if err != nil {
		return refuse(err.Error())
	}
	maintainers, dropped, err := im.maintainers(ctx, p)
	if err != nil {
		return refuse(err.Error())
	}
	if len(dropped) > 0 {
		rep.Notes = append(rep.Notes, "maintainers without an account here left out: "+strings.Join(dropped, ", "))
	}
	pkg := &registry.ImportedPackage{Name: name, DistTags: p.DistTags, Readme: p.Readme,
		Created: p.timeOf("created"), Maintainers: maintainers, Access: im.Access}
	if pkg.Access == "" && p.Restricted {
		pkg.Access = registry.AccessRestricted
	}
	// Versions go in batches of about batchBytes of tarballs, lowest
	// first: one write each, so a package of many large versions never
	// sits in memory whole. An interrupted package resumes at its next
	// batch (the ones written are skipped).
	cached, pending, kept := 0, 0, map[string]string{}
	flush := func() error {
		if len(pkg.Versions) == 0 {
			return nil
		}
		res, err := im.Target.Import(ctx, im.Operator, pkg)
		pkg.Versions, pending = nil, 0
		if err != nil {
			return err
		}
		rep.Copied = append(rep.Copied, res.Copied...)
		rep.Skipped = append(rep.Skipped, res.Skipped...)
		for v, why := range res.Refused {
			rep.Refused[v] = why
		}
		for tag, here := range res.TagsKept {
			kept[tag] = here
		}
		for _, tag := range res.TagsSet {
			delete(kept, tag)
		}
		return nil
	}
	seen := 0
	for _, v := range sortedVersions(p.Versions) {
		manifest := p.Versions[v]
		data, err := im.Source.Tarball(ctx, p, v)
		if errors.Is(err, errCachedUplink) {
			cached++
			continue
		}
		if err != nil {
			rep.Refused[v] = err.Error()
			continue
		}
		_, integrity, shasum := dist(manifest)
		if err := registry.CheckTarball(integrity, shasum, data); err != nil {
			rep.Refused[v] = registry.ReasonOf(err)
			continue
		}
		seen++
		pkg.Versions = append(pkg.Versions, registry.ImportedVersion{Version: v, Manifest: manifest, Tarball: data, Time: p.timeOf(v)})
		if pending += len(data); pending >= batchBytes {
			if err := flush(); err != nil {
				return refuse(registry.ReasonOf(err))
			}
		}
	}
	if err := flush(); err != nil {
		return refuse(registry.ReasonOf(err))
	}
	if cached > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d version(s) Verdaccio cached from an uplink left out", cached))
	}
	if seen == 0 && len(rep.Refused) == 0 && cached == 0 {
		rep.Refused[""] = "the package has no version"
	}
	for _, tag := range sortedTags(kept) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("dist-tag %s stays on %s here (the source has %s)", tag, kept[tag], p.DistTags[tag]))
	}
	if len(rep.Copied) > 0 {
		for _, m := range maintainers {
			rep.Maintain = append(rep.Maintain, m.Name)
		}
	}
	return rep
}

// maintainers maps the source's maintainers to the users of the same name
// here; names with no account are dropped (someone could sign up with
// them later and take the package). With none left, Owner maintains it.
func (im *Importer) maintainers(ctx context.Context, p *Packument) ([]registry.Person, []string, error) {
	var out []registry.Person
	var dropped []string
	for _, n := range p.maintainerNames() {
		u, err := im.Accounts.GetUser(ctx, n)
		if registry.IsKind(err, registry.KindNotFound) || registry.IsKind(err, registry.KindInvalid) {
			dropped = append(dropped, n)
			continue
		}
		if err != nil {
			return nil, nil, errors.New(registry.ReasonOf(err))
		}
		out = append(out, registry.Person{Name: u.Name, Email: u.Email})
	}
	if len(out) == 0 && im.Owner != "" {
		u, err := im.Accounts.GetUser(ctx, im.Owner)
		if err != nil {
			return nil, nil, fmt.Errorf("--owner %s: %s", im.Owner, registry.ReasonOf(err))
		}
		out = append(out, registry.Person{Name: u.Name, Email: u.Email})
	}
	if len(out) == 0 {
		names := p.maintainerNames()
		if len(names) == 0 {
			return nil, nil, errors.New("the source names no maintainer (Verdaccio 5 keeps none); name one with --owner USER")
		}
		return nil, nil, fmt.Errorf("none of its maintainers (%s) is a user here; import or add them, or name one with --owner USER", strings.Join(names, ", "))
	}
	return out, dropped, nil
}

func sortedTags(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UserImporter creates imported accounts (couch.Users).
type UserImporter interface {
	ImportUser(ctx context.Context, name, hash string, expires time.Time) error
	// RenewImportedUser sets the hash and expiry anew on an account that
	// still holds an imported hash (never logged in here); it reports
	// whether anything changed.
	RenewImportedUser(ctx context.Context, name, hash string, expires time.Time) (bool, error)
}

// UserPolicy is what the import does with weak hash kinds
// (registry.ImportedHashKind.Weak).
type UserPolicy struct {
	RefuseWeak bool          // --refuse-weak-hashes
	MaxAge     time.Duration // a weak hash logs in until the import's time + MaxAge
	Now        time.Time     // the import's time; zero: time.Now()
}

// UserReport is what became of one htpasswd account.
type UserReport struct {
	Name    string
	Outcome string // "copied", "renewed", "skipped" or "refused"
	Reason  string
	Kind    string    // the hash kind, when it is known
	Expires time.Time // when the imported weak hash stops logging in
}

// ImportUsers creates an account for each htpasswd entry whose hash may
// be imported (registry.CheckImportedHash); a name taken here is skipped
// and keeps its password here, unless that account never logged in here:
// then its imported hash and expiry are set anew ("renewed").
func ImportUsers(ctx context.Context, entries []HtpasswdEntry, users UserImporter, policy UserPolicy) []UserReport {
	if policy.Now.IsZero() {
		policy.Now = time.Now()
	}
	var out []UserReport
	for _, e := range entries {
		r := UserReport{Name: e.Name}
		err := importUser(ctx, e, users, policy, &r)
		renewed := false
		if registry.IsKind(err, registry.KindConflict) {
			if renewed, err = users.RenewImportedUser(ctx, e.Name, e.Hash, r.Expires); err == nil && !renewed {
				err = registry.E(registry.KindConflict, "taken")
			}
		}
		switch {
		case err == nil && renewed:
			r.Outcome = "renewed"
		case err == nil:
			r.Outcome = "copied"
		case registry.IsKind(err, registry.KindConflict):
			r.Outcome, r.Reason, r.Expires = "skipped", "the name is taken here; it keeps its password here", time.Time{}
		default:
			r.Outcome, r.Reason, r.Expires = "refused", registry.ReasonOf(err), time.Time{}
		}
		out = append(out, r)
	}
	return out
}

func importUser(ctx context.Context, e HtpasswdEntry, users UserImporter, policy UserPolicy, r *UserReport) error {
	if err := registry.ValidateUsername(e.Name); err != nil {
		return err
	}
	kind, err := registry.CheckImportedHash(e.Hash, policy.RefuseWeak)
	r.Kind = kind.Kind
	if err != nil {
		return err
	}
	if kind.Weak {
		r.Expires = policy.Now.Add(policy.MaxAge).UTC()
	}
	return users.ImportUser(ctx, e.Name, e.Hash, r.Expires)
}

// Summary writes the totals and every refusal and note to w.
func Summary(w io.Writer, pkgs []PackageReport, users []UserReport) (refused int) {
	count := map[string]int{}
	versions := map[string]int{}
	for _, r := range pkgs {
		count[r.Outcome()]++
		versions["copied"] += len(r.Copied)
		versions["skipped"] += len(r.Skipped)
		for v := range r.Refused {
			if v != "" {
				versions["refused"]++
			}
		}
	}
	fmt.Fprintf(w, "packages: %d copied, %d skipped (already here), %d refused\n", count["copied"], count["skipped"], count["refused"])
	fmt.Fprintf(w, "versions: %d copied, %d skipped (already here), %d refused\n", versions["copied"], versions["skipped"], versions["refused"])
	ucount := map[string]int{}
	for _, u := range users {
		ucount[u.Outcome]++
	}
	if users != nil {
		fmt.Fprintf(w, "users: %d copied, %d skipped (already here), %d refused", ucount["copied"], ucount["skipped"], ucount["refused"])
		if ucount["renewed"] > 0 {
			fmt.Fprintf(w, ", %d renewed (imported hash set anew: never logged in here)", ucount["renewed"])
		}
		fmt.Fprintln(w)
	}
	for _, r := range pkgs {
		keys := make([]string, 0, len(r.Refused))
		for v := range r.Refused {
			keys = append(keys, v)
		}
		sortVersions(keys)
		for _, v := range keys {
			what := r.Name
			if v != "" {
				what += "@" + v
			}
			fmt.Fprintf(w, "refused %s: %s\n", what, r.Refused[v])
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note %s: %s\n", r.Name, n)
		}
	}
	for _, u := range users {
		switch u.Outcome {
		case "refused":
			fmt.Fprintf(w, "refused user %s: %s\n", u.Name, u.Reason)
		case "copied", "renewed":
			verb := "imported"
			if u.Outcome == "renewed" {
				verb = "imported anew"
			}
			fmt.Fprintf(w, "user %s: %s hash %s; CouchDB's PBKDF2 replaces it at the first login", u.Name, u.Kind, verb)
			if !u.Expires.IsZero() {
				fmt.Fprintf(w, "; a weak kind: it logs in until %s only", u.Expires.Format(time.RFC3339))
			}
			fmt.Fprintln(w)
		}
	}
	return count["refused"] + ucount["refused"]
}
