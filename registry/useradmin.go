package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// UserAdminStore is what operators' account commands need of the account
// store, beyond UserStore.
type UserAdminStore interface {
	UserStore
	// SetUserDisabled sets or clears an account's disabled flag;
	// KindNotFound when absent.
	SetUserDisabled(ctx context.Context, name string, disabled bool) error
	// DeleteUser removes an account's credentials and e-mail but keeps its
	// name taken (packages may still name it as a maintainer, and a
	// stranger signing up under it must not inherit them); KindNotFound
	// when absent.
	DeleteUser(ctx context.Context, name string) error
	// ListUsers returns every account, deleted ones left out.
	ListUsers(ctx context.Context) ([]*User, error)
	// SetPassword makes password the account's password and drops an
	// imported hash it still holds, reporting whether it held one;
	// KindNotFound when absent or deleted.
	SetPassword(ctx context.Context, name, password string) (droppedImported bool, err error)
}

// TokenRevoker finds and deletes a user's tokens.
type TokenRevoker interface {
	TokenLister
	DeleteToken(ctx context.Context, key string) error
}

// UserAdmin is the operators' side of accounts (couchnpm user ...): it
// adds accounts whatever the sign-up setting, and disables, enables and
// deletes them.
type UserAdmin struct {
	users  UserAdminStore
	tokens TokenRevoker
}

// NewUserAdmin returns the operators' account service.
func NewUserAdmin(users UserAdminStore, tokens TokenRevoker) *UserAdmin {
	return &UserAdmin{users: users, tokens: tokens}
}

// Add creates an account. The password policy applies; e-mail domains do
// not (an operator may add anyone).
func (a *UserAdmin) Add(ctx context.Context, name, password, email string) error {
	if err := ValidateUsername(name); err != nil {
		return err
	}
	if err := CheckNewPassword(name, password); err != nil {
		return err
	}
	email = strings.TrimSpace(email)
	if email == "" {
		return E(KindInvalid, "an e-mail address is required (--email)")
	}
	if _, err := emailDomain(email); err != nil {
		return err
	}
	err := a.users.CreateUser(ctx, name, password, email)
	if IsKind(err, KindConflict) {
		return E(KindConflict, "the user name %q is taken (by an account, or by a deleted one: names are not reused)", name)
	}
	return err
}

// Disable stops an account: its password no longer logs in, and its
// tokens are revoked (deleted) and, should one survive, refused on use.
// It returns how many tokens were revoked.
func (a *UserAdmin) Disable(ctx context.Context, name string) (int, error) {
	if err := a.users.SetUserDisabled(ctx, name, true); err != nil {
		return 0, err
	}
	return a.RevokeTokens(ctx, name)
}

// Enable lifts Disable. Revoked tokens stay revoked.
func (a *UserAdmin) Enable(ctx context.Context, name string) error {
	return a.users.SetUserDisabled(ctx, name, false)
}

// Delete removes an account (its name stays taken) and revokes its
// tokens. It returns how many tokens were revoked.
func (a *UserAdmin) Delete(ctx context.Context, name string) (int, error) {
	// Disable first: should the token sweep fail half-way, the account
	// is already unusable.
	if err := a.users.SetUserDisabled(ctx, name, true); err != nil {
		return 0, err
	}
	n, err := a.RevokeTokens(ctx, name)
	if err != nil {
		return n, err
	}
	return n, a.users.DeleteUser(ctx, name)
}

// RevokeTokens deletes every token of name and returns how many it
// deleted.
func (a *UserAdmin) RevokeTokens(ctx context.Context, name string) (int, error) {
	list, err := a.tokens.ListTokens(ctx, name)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, t := range list {
		err := a.tokens.DeleteToken(ctx, t.Key)
		switch {
		case err == nil:
			n++
		case IsKind(err, KindNotFound): // revoked meanwhile
		default:
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// WebSessionTokenName names the read-only token behind a web UI session
// (npm token list shows it so).
const WebSessionTokenName = "web session"

// PasswordReset is what SetPassword did.
type PasswordReset struct {
	DroppedImportedHash bool // the account still held an imported hash; it no longer logs in
	RevokedSessions     int  // web UI sessions ended
	RevokedTokens       int  // other tokens revoked (with revokeTokens)
}

// SetPassword sets an account's password, as an operator does for a user
// who lost it: the sign-up policy applies, an imported hash the account
// still holds is dropped (it would otherwise keep logging in with the old
// password), and the account's web sessions end (they were opened with the
// old password). npm tokens stay unless revokeTokens: CI keeps working
// after a forgotten password, and a leaked password asks for
// revokeTokens. A disabled account stays disabled.
func (a *UserAdmin) SetPassword(ctx context.Context, name, password string, revokeTokens bool) (PasswordReset, error) {
	var res PasswordReset
	if err := CheckNewPassword(name, password); err != nil {
		return res, err
	}
	dropped, err := a.users.SetPassword(ctx, name, password)
	if err != nil {
		return res, err
	}
	res.DroppedImportedHash = dropped
	list, err := a.tokens.ListTokens(ctx, name)
	if err != nil {
		msg := fmt.Sprintf("the password of %s is set, but its sessions could not be listed (run again to end them)", name)
		return res, WrapDetail(KindOf(err), err, msg, "%s: %s", msg, DetailOf(err))
	}
	var errs []error
	for _, t := range list {
		session := t.Name == WebSessionTokenName
		if !session && !revokeTokens {
			continue
		}
		err := a.tokens.DeleteToken(ctx, t.Key)
		switch {
		case err == nil && session:
			res.RevokedSessions++
		case err == nil:
			res.RevokedTokens++
		case IsKind(err, KindNotFound): // revoked meanwhile
		default:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		msg := fmt.Sprintf("the password of %s is set, but not every session or token could be revoked (run again)", name)
		return res, WrapDetail(KindOf(err), err, msg, "%s: %s", msg, DetailOf(err))
	}
	return res, nil
}

// ResetTwoFactor turns off an account's two-factor authentication (or a
// pending set-up) for a user who lost both the device and the recovery
// codes. It reports whether there was any.
func (a *UserAdmin) ResetTwoFactor(ctx context.Context, name string) (bool, error) {
	was := false
	err := a.users.UpdateTwoFactor(ctx, name, func(cur *TwoFactor) (*TwoFactor, error) {
		was = cur != nil
		return nil, nil
	})
	return was, err
}

// List returns the accounts sorted by name.
func (a *UserAdmin) List(ctx context.Context) ([]*User, error) {
	list, err := a.users.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}
