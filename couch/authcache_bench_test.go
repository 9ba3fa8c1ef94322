package couch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

// BenchmarkByTokenCouchDB is the authentication of one request carrying a
// token (what every authenticated tarball or packument GET pays before
// the registry answers), against the CouchDB named by COUCHDB_URL
// (COUCHDB_USER, COUCHDB_PASSWORD): without the auth cache (a token read
// and an account read) and with it, warm. It reports CouchDB reads per
// authentication. Skipped without COUCHDB_URL.
func BenchmarkByTokenCouchDB(b *testing.B) {
	url := os.Getenv("COUCHDB_URL")
	if url == "" {
		b.Skip("COUCHDB_URL not set")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	prefix := "bench-authcache-" + hex.EncodeToString(suffix)
	cfg := couch.Config{URL: url, User: os.Getenv("COUCHDB_USER"), Password: os.Getenv("COUCHDB_PASSWORD"), Prefix: prefix, Timeout: 10 * time.Second}
	db, err := couch.Open(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Bootstrap(ctx); err != nil {
		b.Fatal(err)
	}
	user := prefix + "-alice"
	b.Cleanup(func() {
		for _, name := range couch.DBNames(prefix) {
			req, _ := http.NewRequest("DELETE", url+"/"+name, nil)
			req.SetBasicAuth(cfg.User, cfg.Password)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		_ = db.Users().DeleteUser(ctx, user)
	})
	if err := db.Users().CreateUser(ctx, user, "Bench-pw-1a2b3c4d", "alice@example.com"); err != nil {
		b.Fatal(err)
	}
	token, _ := registry.NewToken()
	if err := db.Tokens().PutToken(ctx, &registry.Token{Key: registry.TokenKey(token), User: user, Created: time.Now()}); err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("127.0.0.1")
	run := func(b *testing.B, c *registry.AuthCache) {
		a, err := registry.NewAccounts(registry.AccountsConfig{Users: db.Users(), Tokens: db.Tokens(), Cache: c})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.ByToken(ctx, token, addr); err != nil { // warm
			b.Fatal(err)
		}
		var before registry.AuthCacheStats
		if c != nil {
			before = c.Stats()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := a.ByToken(ctx, token, addr); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reads := 2.0
		if c != nil {
			reads = float64(c.Stats().Misses-before.Misses) / float64(b.N)
		}
		b.ReportMetric(reads, "couch-reads/op")
	}
	b.Run("cache=off", func(b *testing.B) { run(b, nil) })
	b.Run("cache=on", func(b *testing.B) {
		c, err := registry.NewAuthCache(registry.AuthCacheConfig{Tokens: db.Tokens(), Users: db.Users()})
		if err != nil {
			b.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go c.Run(cctx)
		for c.Stats().FeedsUp < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		run(b, c)
	})
}
