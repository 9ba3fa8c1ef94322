package registry

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// keyRecorder records every key the token store is asked for.
type keyRecorder struct {
	*fakeTokens
	keys []string
}

func (k *keyRecorder) GetToken(ctx context.Context, key string) (*Token, error) {
	k.keys = append(k.keys, key)
	return k.fakeTokens.GetToken(ctx, key)
}

func (k *keyRecorder) DeleteToken(ctx context.Context, key string) error {
	k.keys = append(k.keys, key)
	return k.fakeTokens.DeleteToken(ctx, key)
}

// Tokens are never compared in Go: the store is asked for the token's
// sha256 key (a CouchDB document id), so no comparison of secret bytes
// exists whose timing could leak them. Passwords are checked by CouchDB
// (POST /_session). This test pins the first half.
func TestTokensLookedUpByHashOnly(t *testing.T) {
	rec := &keyRecorder{fakeTokens: newFakeTokens()}
	a := mustAccounts(AccountsConfig{Users: newFakeUsers(), Tokens: rec, AllowSignup: true})
	ctx := context.Background()
	token, err := a.Login(ctx, "alice", "Sturdy-pw-42x", "alice@example.com", "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ByToken(ctx, token, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	_, _ = a.ByToken(ctx, token+"x", netip.Addr{})
	if err := a.Logout(ctx, token); err != nil {
		t.Fatal(err)
	}
	if len(rec.keys) != 3 {
		t.Fatalf("keys asked = %v", rec.keys)
	}
	for _, k := range rec.keys {
		secret := strings.TrimPrefix(token, tokenPrefix)
		if strings.Contains(k, secret[:8]) || (k != TokenKey(token) && k != TokenKey(token+"x")) {
			t.Errorf("the store was asked for %q, not a hash", k)
		}
	}
	for _, s := range rec.seen {
		if strings.Contains(s, token) {
			t.Errorf("the store was given the token itself: %s", s)
		}
	}
}
