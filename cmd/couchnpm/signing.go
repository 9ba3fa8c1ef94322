package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// signingConfig configures registry signatures.
type signingConfig struct {
	KeyFile string
	// UpstreamKeysEvery is how often the upstream's keys are fetched again.
	UpstreamKeysEvery time.Duration
}

func (s *signingConfig) register(e *envFlags) {
	e.str(&s.KeyFile, "signing-key-file", "COUCHNPM_SIGNING_KEY_FILE", "", "PEM PKCS#8 ECDSA P-256 private key that signs published versions (default: a key kept in CouchDB, created on first start)")
	e.duration(&s.UpstreamKeysEvery, "upstream-keys-refresh", "COUCHNPM_UPSTREAM_KEYS_REFRESH", time.Hour, "how often the mirrored upstream's signing keys are fetched again")
}

// signing is the wired signing state: the keyring, and the upstream's keys
// when mirroring.
type signing struct {
	keyring  *registry.Keyring
	upstream *replication.UpstreamKeys
	every    time.Duration // upstream keys refresh
}

// startSigning loads (or, on the very first start, creates) the signing key
// that signs every publish (registry.Config.Signer).
func startSigning(ctx context.Context, cfg *config, db *couch.Client, log zerolog.Logger) (*signing, error) {
	var override *registry.SigningKey
	if f := cfg.Signing.KeyFile; f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--signing-key-file: %w", err)
		}
		k, err := registry.ParseSigningKeyPEM(data, time.Now())
		if err != nil {
			return nil, fmt.Errorf("--signing-key-file %s: %w", f, err)
		}
		override = &k
	}
	keyring := registry.NewKeyring(db.Docs(couch.RoleSystem), override).WithLeaves(db.Docs(couch.RoleSystem))
	key, err := keyring.Ensure(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare the signing key: %w", err)
	}
	log.Info().Str("keyid", key.KeyID).Str("source", key.Source).Msg("signing published versions")
	every := cfg.Signing.UpstreamKeysEvery
	if every <= 0 {
		every = time.Hour
	}
	return &signing{keyring: keyring, every: every}, nil
}

// mirror keeps the upstream's keys (the mirror signs verified unsigned
// mirrored versions with s.keyring, see newMirror).
func (s *signing) mirror(ctx context.Context, up *replication.Upstream, system replication.DocStore, bg *sync.WaitGroup, log zerolog.Logger) {
	s.upstream = replication.NewUpstreamKeys(up, system, log)
	bg.Add(1)
	go func() {
		defer bg.Done()
		s.upstream.Run(ctx, s.every)
	}()
}

// wire serves the keys at GET /-/npm/v1/keys, and the attestations reg
// serves.
func (s *signing) wire(h *handlers.Config, reg *registry.Service) {
	h.Keys = s.keyring
	h.Attestations = reg
	if s.upstream != nil {
		h.UpstreamKeys = s.upstream
	}
}
