package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/replication"
)

// peersConfig holds the flags of active-active sites (docs/conflicts.md,
// README "Two sites").
type peersConfig struct {
	Peers peerList
}

// peerList is a repeatable --peer flag; COUCHNPM_PEERS holds a
// comma-separated list.
type peerList []string

func (p *peerList) String() string { return strings.Join(*p, ",") }

func (p *peerList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*p = append(*p, s)
		}
	}
	return nil
}

func (c *peersConfig) register(e *envFlags) {
	if v, ok := os.LookupEnv("COUCHNPM_PEERS"); ok {
		_ = c.Peers.Set(v)
	}
	e.fs.Var(&c.Peers, "peer", "a peer site's CouchDB URL (with credentials) to replicate with both ways; repeatable (env COUCHNPM_PEERS, comma-separated)")
}

func (c *peersConfig) check() error {
	for _, p := range c.Peers {
		if err := checkHTTPURL("peer", p); err != nil {
			return err
		}
	}
	return nil
}

// peerDBs are the databases that travel between sites: private packages
// with their tarballs, token hashes and accounts. The mirror and its
// tarball cache do not: each site follows the upstream itself, and the
// system database holds per-site state (leases, pending web logins).
func peerDBs(db *couch.Client) []string {
	return []string{db.DBName(couch.RolePackages), db.DBName(couch.RoleTokens), "_users"}
}

// startPeers keeps the peer replications and returns their status for the
// handlers (nil without peers).
func startPeers(ctx context.Context, cfg *config, db *couch.Client, bg *sync.WaitGroup, log zerolog.Logger) (handlers.PeerStatus, error) {
	local := cfg.Mirror.ReplTarget // CouchDB's URL as CouchDB reaches it
	if local == "" {
		local = cfg.CouchURL
	}
	links, err := replication.PeerLinks(cfg.Peers.Peers, peerDBs(db), local, db.ServerDBURL)
	if err != nil {
		return nil, err
	}
	scope := db.DBName(couch.RolePackages) // the prefix: what this registry's documents carry
	k := replication.NewPeers(links, scope, peerDBs(db), db, func(l replication.PeerLink) couch.Replication {
		return couch.Replication{ID: l.ID, Source: l.Source, Target: l.Target, Owner: replication.PeerOwner, Scope: scope}
	}, log)
	if len(links) == 0 {
		// The last peer removed: stop this registry's replications, once.
		bg.Add(1)
		go func() {
			defer bg.Done()
			k.Ensure(ctx)
		}()
		return nil, nil
	}
	if m := cfg.Fastpath.metrics; m != nil {
		m.WatchPeers(k.Status)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		k.Run(ctx, time.Minute, 2*time.Second)
	}()
	return k, nil
}

// replicationCommand runs `couchnpm replication status`: it asks a running
// couchnpm for the state of its peer replications.
func replicationCommand(args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(os.Stderr, "usage: couchnpm replication status [--url URL] [--json] (env COUCHNPM_TOKEN: an admin's token shows the peers' addresses and errors)")
		return 2
	}
	sc := newStatusCommand("couchnpm replication status")
	base, asJSON := &sc.base, &sc.asJSON
	if exit, ok := sc.parse(args[1:]); !ok {
		return exit
	}
	var st struct {
		Peers     []replication.PeerStatus `json:"peers"`
		CheckedAt time.Time                `json:"checked_at"`
	}
	raw, err := getStatus(strings.TrimRight(*base, "/"), "/-/replication/status", &st)
	if err != nil {
		fmt.Fprintln(os.Stderr, "couchnpm:", err)
		return 1
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	if len(st.Peers) == 0 {
		fmt.Println("no peers configured (--peer)")
		return 0
	}
	fmt.Printf("%-40s %-24s %-10s %8s %10s  %s\n", "PEER", "DATABASE", "STATE", "PENDING", "WRITTEN", "LAST ERROR")
	for _, p := range st.Peers {
		pending := "-"
		if p.ChangesPending != nil {
			pending = fmt.Sprint(*p.ChangesPending)
		}
		fmt.Printf("%-40s %-24s %-10s %8s %10d  %s\n", p.Peer, p.DB, p.State, pending, p.DocsWritten, p.LastError)
	}
	return 0
}
