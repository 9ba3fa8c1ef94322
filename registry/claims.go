package registry

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// A claim is an operator's decision that a name the upstream registry
// knows may be published here all the same: an internal fork that is meant
// to shadow the upstream package for everyone using this registry. Without
// a claim, the first publish of such a name is refused (takeover.go).

// Claim is one claimed name: who may publish it first, who decided and why.
type Claim struct {
	Name   string    `json:"name"`
	Owner  string    `json:"owner"`  // the one user allowed to publish the name first
	By     string    `json:"by"`     // the operator who claimed it
	Reason string    `json:"reason"` // why the upstream name is shadowed
	At     time.Time `json:"at"`
}

// claimDocPrefix starts the id of a claim document in the system database.
const claimDocPrefix = "claim:"

// maxClaims bounds a claim listing; a registry claims a handful of names.
const maxClaims = 10000

// ClaimBook answers whether a name is claimed; nil, nil when it is not.
type ClaimBook interface {
	Lookup(ctx context.Context, name string) (*Claim, error)
}

// Claims keeps claims as documents of the system database.
type Claims struct {
	docs StateDocs
	now  func() time.Time
}

// NewClaims returns the claims kept in docs.
func NewClaims(docs StateDocs) *Claims {
	return &Claims{docs: docs, now: time.Now}
}

// Lookup returns name's claim, or nil when it has none.
func (c *Claims) Lookup(ctx context.Context, name string) (*Claim, error) {
	var cl Claim
	_, err := c.docs.Get(ctx, claimDocPrefix+name, &cl)
	if IsKind(err, KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cl, nil
}

// Add records a claim, replacing an earlier claim of the same name. It
// reports whether an earlier claim was replaced.
func (c *Claims) Add(ctx context.Context, cl Claim) (replaced bool, err error) {
	if err := cl.Check(); err != nil {
		return false, err
	}
	cl.By, cl.Reason = strings.TrimSpace(cl.By), strings.TrimSpace(cl.Reason)
	cl.At = c.now().UTC()
	for attempt := 0; attempt < 5; attempt++ {
		var old Claim
		rev, err := c.docs.Get(ctx, claimDocPrefix+cl.Name, &old)
		if err != nil && !IsKind(err, KindNotFound) {
			return false, err
		}
		_, err = c.docs.Put(ctx, claimDocPrefix+cl.Name, rev, cl)
		if !IsKind(err, KindConflict) {
			return rev != "", err
		}
	}
	return false, E(KindConflict, "the claim of %s kept changing; try again", cl.Name)
}

// Check refuses a claim without a valid name and owner, an operator or a
// reason.
func (cl Claim) Check() error {
	if err := ValidateName(cl.Name); err != nil {
		return err
	}
	if err := ValidateUsername(cl.Owner); err != nil {
		return Wrap(KindInvalid, err, "owner: %s", ReasonOf(err))
	}
	if strings.TrimSpace(cl.By) == "" {
		return E(KindInvalid, "a claim must say who made it")
	}
	if strings.TrimSpace(cl.Reason) == "" {
		return E(KindInvalid, "a claim must give a reason")
	}
	return nil
}

// Remove deletes name's claim; KindNotFound when it has none.
func (c *Claims) Remove(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	for attempt := 0; attempt < 5; attempt++ {
		rev, err := c.docs.Get(ctx, claimDocPrefix+name, &Claim{})
		if IsKind(err, KindNotFound) {
			return E(KindNotFound, "%s is not claimed", name)
		}
		if err != nil {
			return err
		}
		err = c.docs.Delete(ctx, claimDocPrefix+name, rev)
		if !IsKind(err, KindConflict) {
			return err
		}
	}
	return E(KindConflict, "the claim of %s kept changing; try again", name)
}

// List returns every claim, by name.
func (c *Claims) List(ctx context.Context, lister StateLister) ([]Claim, error) {
	rows, err := lister.ListPrefix(ctx, claimDocPrefix, maxClaims)
	if err != nil {
		return nil, err
	}
	out := make([]Claim, 0, len(rows))
	for _, r := range rows {
		var cl Claim
		if json.Unmarshal(r.Doc, &cl) == nil && cl.Name != "" {
			out = append(out, cl)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
