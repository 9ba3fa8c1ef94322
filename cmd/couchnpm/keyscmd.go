package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/registry"
)

const keysUsage = `usage:
  couchnpm keys list [--json]
  couchnpm keys rotate
  couchnpm keys sign-existing [--signing-key-file key.pem]

The registry signs each version it publishes (and each mirrored version the
upstream left unsigned) with its active key; GET /-/npm/v1/keys serves the
public keys, for npm audit signatures. rotate adds a new active key and
gives the old ones an expiry one minute from now: what they signed before
still verifies. sign-existing signs the private versions published before
registry signatures (with the active key, or the --signing-key-file key
serve uses); versions that have signatures keep them. The commands reach
CouchDB as serve does (COUCHDB_URL,
COUCHDB_USER, COUCHDB_PASSWORD, --db-prefix). A key given to serve with
--signing-key-file is not stored and not rotated here.
`

func keysCommand(args []string) int {
	return keysMain(args, os.Stdout, os.Stderr)
}

func keysMain(args []string, stdout, stderr io.Writer) int {
	fs := newOperatorFlags("couchnpm keys", keysUsage, stderr)
	var asJSON bool
	var keyFile string
	fs.BoolVar(&asJSON, "json", false, "with list: print JSON")
	fs.StringVar(&keyFile, "signing-key-file", os.Getenv("COUCHNPM_SIGNING_KEY_FILE"), "with sign-existing: the key serve signs with, when it is given one")
	words, exit, ok := fs.parse(args)
	if !ok {
		return exit
	}
	cfg := fs.cfg
	if len(words) != 1 || (words[0] != "list" && words[0] != "rotate" && words[0] != "sign-existing") {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, code := operatorDB(ctx, cfg, stderr, true)
	if db == nil {
		return code
	}
	var override *registry.SigningKey
	if keyFile != "" && words[0] == "sign-existing" {
		data, err := os.ReadFile(keyFile)
		if err == nil {
			var k registry.SigningKey
			k, err = registry.ParseSigningKeyPEM(data, time.Now())
			override = &k
		}
		if err != nil {
			fmt.Fprintf(stderr, "couchnpm: --signing-key-file %s: %v\n", keyFile, err)
			return 2
		}
	}
	keyring := registry.NewKeyring(db.Docs(couch.RoleSystem), override).WithLeaves(db.Docs(couch.RoleSystem))
	fail := func(err error) int {
		fmt.Fprintln(stderr, "couchnpm:", registry.DetailOf(err))
		return 1
	}
	if words[0] == "sign-existing" {
		return signExisting(ctx, db.Packuments(couch.RolePackages), keyring, stdout, fail)
	}
	if words[0] == "rotate" {
		key, err := keyring.Rotate(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "new signing key %s is active; the earlier keys expire at %s\n", key.KeyID, key.Created.Add(registry.RotationGrace).Format(time.RFC3339))
		return 0
	}
	keys, err := keyring.Keys(ctx)
	if err != nil {
		return fail(err)
	}
	if asJSON {
		out := make([]registry.PublicKey, 0, len(keys))
		for _, k := range keys {
			out = append(out, k.PublicKey())
		}
		printJSONList(stdout, out)
		return 0
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "no signing keys yet: the first start of couchnpm serve creates one")
		return 0
	}
	for _, k := range keys {
		state := "active"
		if k.Expires != nil {
			state = "expires " + k.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s\tcreated %s\t%s\n", k.KeyID, k.Created.Format(time.RFC3339), state)
	}
	return 0
}

// packumentPages is what sign-existing needs of the private database.
type packumentPages interface {
	Names(ctx context.Context, after string, limit int) ([]string, string, error)
	GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error)
	PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error)
}

// signExisting signs the unsigned versions of every private package.
func signExisting(ctx context.Context, db packumentPages, keyring *registry.Keyring, stdout io.Writer, fail func(error) int) int {
	key, err := keyring.ActiveKey(ctx)
	if err != nil {
		return fail(err)
	}
	packages, versions := 0, 0
	after := ""
	for {
		names, next, err := db.Names(ctx, after, 200)
		if err != nil {
			return fail(err)
		}
		for _, name := range names {
			n, err := signPackage(ctx, db, name, key)
			if err != nil {
				return fail(err)
			}
			if n > 0 {
				packages++
				versions += n
				fmt.Fprintf(stdout, "signed %d version(s) of %s\n", n, name)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	fmt.Fprintf(stdout, "signed %d version(s) of %d package(s) with %s\n", versions, packages, key.KeyID)
	return 0
}

// signPackage signs name's unsigned versions, reading again after a
// concurrent write.
func signPackage(ctx context.Context, db packumentPages, name string, key registry.SigningKey) (int, error) {
	for attempt := 0; attempt < 5; attempt++ {
		p, err := db.GetPackumentForWrite(ctx, name) // its revision is written back
		if registry.IsKind(err, registry.KindNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		n, err := registry.SignUnsigned(p, key)
		if err != nil || n == 0 {
			return 0, err
		}
		_, err = db.PutPackument(ctx, p)
		if err == nil {
			return n, nil
		}
		if !registry.IsKind(err, registry.KindConflict) {
			return 0, err
		}
	}
	return 0, registry.E(registry.KindConflict, "%s kept changing; run sign-existing again", name)
}
