package registry

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// TokenLister lists a user's tokens (the tokens database's byUser view).
type TokenLister interface {
	ListTokens(ctx context.Context, user string) ([]*Token, error)
}

// TokenRequest is npm token create's body.
type TokenRequest struct {
	Password    string   `json:"password"`
	ReadOnly    bool     `json:"readonly"`
	CIDR        []string `json:"cidr_whitelist"`
	Expires     int      `json:"expires"` // days; 0: never
	Name        string   `json:"name"`
	Description string   `json:"description"`
	// npm 11 (granular tokens) says read-only this way; its --read-only
	// flag is not sent at all (npm 11.19).
	Permission string   `json:"packages_and_scopes_permission"`
	Packages   []string `json:"packages"`
	Scopes     []string `json:"scopes"`
	Orgs       []string `json:"orgs"`
}

// readOnly resolves the two ways npm asks for a read-only token, and
// refuses restrictions this registry cannot enforce rather than issuing a
// broader token than asked for.
func (req TokenRequest) readOnly() (bool, error) {
	if len(req.Packages)+len(req.Scopes)+len(req.Orgs) > 0 {
		return false, E(KindInvalid, "tokens limited to packages, scopes or orgs are not supported by this registry")
	}
	switch req.Permission {
	case "", "read-write":
		return req.ReadOnly, nil
	case "read-only":
		return true, nil
	}
	return false, E(KindInvalid, "packages-and-scopes-permission %q is not supported (read-only or read-write)", req.Permission)
}

// Bounds on what a token request may ask for.
const (
	maxTokenCIDRs    = 32
	maxTokenDays     = 3650
	maxTokenNameSize = 128
)

// CreateToken issues a new token for the caller after checking the
// password again: a stolen token alone must not mint more tokens. A
// read-only caller cannot create tokens at all.
func (a *Accounts) CreateToken(ctx context.Context, user Identity, req TokenRequest, from netip.Addr) (string, *Token, error) {
	if err := user.CanWrite(); err != nil {
		return "", nil, err
	}
	if req.Password == "" {
		return "", nil, E(KindUnauthorized, "creating a token needs your password")
	}
	readOnly, err := req.readOnly()
	if err != nil {
		return "", nil, err
	}
	cidrs, err := validCIDRs(req.CIDR)
	if err != nil {
		return "", nil, err
	}
	if req.Expires < 0 || req.Expires > maxTokenDays {
		return "", nil, E(KindInvalid, "expires must be between 1 and %d days", maxTokenDays)
	}
	if len(req.Name) > maxTokenNameSize {
		return "", nil, E(KindInvalid, "the token name is longer than %d characters", maxTokenNameSize)
	}
	if err := a.users.CheckPassword(ctx, user.Name, req.Password, from); err != nil {
		return "", nil, err
	}
	token, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	now := a.now().UTC()
	t := &Token{Key: TokenKey(token), User: user.Name, Email: user.Email, Created: now,
		ReadOnly: readOnly, CIDR: cidrs, Name: req.Name}
	if req.Expires > 0 {
		exp := now.Add(time.Duration(req.Expires) * 24 * time.Hour)
		t.Expires = &exp
	}
	if err := a.tokens.PutToken(ctx, t); err != nil {
		return "", nil, err
	}
	return token, t, nil
}

// validCIDRs accepts CIDR ranges and single addresses, in canonical form.
func validCIDRs(list []string) ([]string, error) {
	if len(list) > maxTokenCIDRs {
		return nil, E(KindInvalid, "at most %d CIDR ranges per token", maxTokenCIDRs)
	}
	var out []string
	for _, c := range list {
		c = strings.TrimSpace(c)
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked().String())
			continue
		}
		if ip, err := netip.ParseAddr(c); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
			continue
		}
		return nil, E(KindInvalid, "invalid CIDR %q (want e.g. 192.168.1.0/24)", c)
	}
	return out, nil
}

// ListTokens lists the caller's tokens, newest first.
func (a *Accounts) ListTokens(ctx context.Context, user Identity) ([]*Token, error) {
	if user.Anonymous() {
		return nil, E(KindUnauthorized, "you must be logged in to list tokens")
	}
	list, err := a.tokens.ListTokens(ctx, user.Name)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	return list, nil
}

// minKeyPrefix is the shortest key prefix accepted for a revoke (npm shows
// 6-character ids).
const minKeyPrefix = 6

// RevokeToken deletes one of the caller's tokens, named by its key, a
// unique prefix of the key, or the token itself. Other users' tokens look
// absent.
func (a *Accounts) RevokeToken(ctx context.Context, user Identity, ref string) error {
	if err := user.CanWrite(); err != nil {
		return err
	}
	if strings.HasPrefix(ref, tokenPrefix) {
		ref = TokenKey(ref)
	}
	ref = strings.ToLower(ref)
	if len(ref) < minKeyPrefix {
		return E(KindInvalid, "a token key prefix needs at least %d characters", minKeyPrefix)
	}
	list, err := a.ListTokens(ctx, user)
	if err != nil {
		return err
	}
	var match *Token
	for _, t := range list {
		if strings.HasPrefix(t.Key, ref) {
			if match != nil {
				return E(KindInvalid, "token key prefix %q is ambiguous; give more characters", ref)
			}
			match = t
		}
	}
	if match == nil {
		return E(KindNotFound, "you have no token with key %q", ref)
	}
	return a.tokens.DeleteToken(ctx, match.Key)
}
