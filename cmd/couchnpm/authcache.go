package main

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

// authCacheConfig holds the flag of the token and account cache
// (registry.AuthCache).
type authCacheConfig struct {
	Entries int // 0: off, every authenticated request reads CouchDB
}

func (a *authCacheConfig) register(e *envFlags) {
	e.integer(&a.Entries, "auth-cache-entries", "COUCHNPM_AUTH_CACHE_ENTRIES", registry.DefaultAuthCacheEntries,
		"token records and accounts kept in memory for authentication, invalidated by the changes feeds; 0 turns the cache off")
}

// startAuthCache builds the authentication cache and follows its feeds in
// bg; nil when it is off.
func startAuthCache(ctx context.Context, cfg *config, db *couch.Client, bg *sync.WaitGroup, log zerolog.Logger) (*registry.AuthCache, error) {
	if cfg.AuthCache.Entries <= 0 {
		log.Info().Msg("auth cache off")
		return nil, nil
	}
	alog := log.With().Str("component", "authcache").Logger()
	c, err := registry.NewAuthCache(registry.AuthCacheConfig{
		Tokens: db.Tokens(), Users: db.Users(), Entries: cfg.AuthCache.Entries,
		FeedLost: func(feed string, err error, retryIn time.Duration) {
			msg := "feed ended"
			if err != nil {
				msg = err.Error()
			}
			alog.Warn().Str("feed", feed).Str("error", msg).Dur("retry_in", retryIn).Msg("changes feed lost; authentication reads CouchDB until it is back")
		},
	})
	if err != nil {
		return nil, err
	}
	log.Info().Int("entries", cfg.AuthCache.Entries).Dur("staleness_bound", c.Bound()).Msg("auth cache on")
	bg.Add(1)
	go func() {
		defer bg.Done()
		c.Run(ctx)
	}()
	return c, nil
}
