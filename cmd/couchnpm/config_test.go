package main

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// Configuration (issue 13, point 5): what serve's flags and environment
// variables turn into, and the exact message for each mistake.

func TestParseServeGood(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *config)
	}{
		{name: "defaults", check: func(t *testing.T, c *config) {
			want := map[string]any{
				"Listen": "127.0.0.1:4880", "PublicURL": "http://127.0.0.1:4880", "CouchURL": "http://127.0.0.1:5984",
				"DBPrefix": "registry", "MaxPublishBytes": int64(100 << 20), "LogLevel": "info", "LogFormat": "json",
				"AllowSignup": false, "CouchTimeout": 10 * time.Second, "CouchWait": 60 * time.Second, "ShutdownTimeout": 15 * time.Second,
			}
			v := reflect.ValueOf(*c)
			for field, w := range want {
				if got := v.FieldByName(field).Interface(); !reflect.DeepEqual(got, w) {
					t.Errorf("%s = %v, want %v", field, got, w)
				}
			}
			if c.InstanceID == "" {
				t.Error("no default instance id")
			}
			if c.Mirror.Mode != replication.ModeOff || c.Fastpath.CacheBytes != 256<<20 || c.Mirror.MaxPackumentBytes != replication.DefaultMaxPackumentBytes {
				t.Errorf("mirror %q, cache %d, upstream packument bound %d", c.Mirror.Mode, c.Fastpath.CacheBytes, c.Mirror.MaxPackumentBytes)
			}
			if p := c.Commands.policy; p.Unpublish.Mode != registry.UnpublishMaintainers || p.DefaultAccess != "public" || p.Admins != nil {
				t.Errorf("command policy %+v", p)
			}
		}},
		{name: "any-address listen gets a loopback public URL", args: []string{"--listen", "0.0.0.0:8080"}, check: func(t *testing.T, c *config) {
			if c.PublicURL != "http://127.0.0.1:8080" {
				t.Errorf("PublicURL = %q", c.PublicURL)
			}
		}},
		{name: "IPv6 any-address too", args: []string{"--listen", "[::]:8080"}, check: func(t *testing.T, c *config) {
			if c.PublicURL != "http://127.0.0.1:8080" {
				t.Errorf("PublicURL = %q", c.PublicURL)
			}
		}},
		{name: "public URL loses its trailing slash", args: []string{"--public-url", "https://npm.example.com/base/"}, check: func(t *testing.T, c *config) {
			if c.PublicURL != "https://npm.example.com/base" {
				t.Errorf("PublicURL = %q", c.PublicURL)
			}
		}},
		{name: "environment fills in", env: map[string]string{
			"COUCHNPM_LISTEN": "127.0.0.1:9999", "COUCHDB_URL": "https://couch.example.com:6984", "COUCHNPM_DB_PREFIX": "npm_a",
			"COUCHNPM_MAX_PUBLISH_BYTES": "512KB", "COUCHNPM_ALLOW_SIGNUP": "true", "COUCHNPM_COUCHDB_WAIT": "5s",
			"COUCHNPM_CACHE_BYTES": "0", "COUCHNPM_PEERS": "http://a.example:5984, http://b.example:5984", "COUCHDB_USER": "svc", "COUCHDB_PASSWORD": "pw",
		}, check: func(t *testing.T, c *config) {
			if c.Listen != "127.0.0.1:9999" || c.CouchURL != "https://couch.example.com:6984" || c.DBPrefix != "npm_a" ||
				c.MaxPublishBytes != 512<<10 || !c.AllowSignup || c.CouchWait != 5*time.Second || c.Fastpath.CacheBytes != 0 ||
				c.CouchUser != "svc" || c.CouchPassword != "pw" {
				t.Errorf("config from the environment: %+v", c)
			}
			if want := (peerList{"http://a.example:5984", "http://b.example:5984"}); !reflect.DeepEqual(c.Peers.Peers, want) {
				t.Errorf("peers %v, want %v", c.Peers.Peers, want)
			}
		}},
		{name: "a flag wins over the environment", args: []string{"--log-level", "debug", "--listen", "127.0.0.1:1234"},
			env: map[string]string{"COUCHNPM_LOG_LEVEL": "trace", "COUCHNPM_LISTEN": "nonsense"}, check: func(t *testing.T, c *config) {
				if c.LogLevel != "debug" || c.Listen != "127.0.0.1:1234" {
					t.Errorf("LogLevel %q, Listen %q", c.LogLevel, c.Listen)
				}
			}},
		{name: "sign-up domains are trimmed and lowercased", args: []string{"--signup-email-domains", " Example.COM , ,b.org"}, check: func(t *testing.T, c *config) {
			if want := []string{"example.com", "b.org"}; !reflect.DeepEqual(c.SignupEmailDomains, want) {
				t.Errorf("SignupEmailDomains = %q, want %q", c.SignupEmailDomains, want)
			}
		}},
		{name: "trusted proxies from the environment", env: map[string]string{"COUCHNPM_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"}, check: func(t *testing.T, c *config) {
			if got := fmt.Sprint([]netip.Prefix(c.TrustedProxies)); got != "[10.0.0.0/8 192.0.2.7/32]" {
				t.Errorf("TrustedProxies = %s", got)
			}
		}},
		{name: "follow mode", args: []string{"--mirror", "follow", "--upstream", "http://up.example", "--upstream-changes", "http://up.example/_changes",
			"--upstream-headers", "X-A: 1; X-B:two ;", "--mirror-allow", "left-pad, @acme", "--private-scopes", "@corp"}, check: func(t *testing.T, c *config) {
			m := c.Mirror
			if m.Mode != replication.ModeFollow || m.parsedHeaders.Get("X-A") != "1" || m.parsedHeaders.Get("X-B") != "two" ||
				!reflect.DeepEqual(m.allowList, []string{"left-pad", "@acme"}) || !reflect.DeepEqual(m.privateScopes, []string{"@corp"}) {
				t.Errorf("mirror config %+v", m)
			}
		}},
		{name: "replicate mode targets COUCHDB_URL by default", args: []string{"--couchdb-url", "http://db.internal:5984", "--mirror", "replicate",
			"--upstream", "http://up.example", "--upstream-couchdb", "http://up.example:5984/registry"}, check: func(t *testing.T, c *config) {
			if c.Mirror.ReplTarget != "http://db.internal:5984" {
				t.Errorf("ReplTarget = %q", c.Mirror.ReplTarget)
			}
		}},
		{name: "admins-only unpublishing with admins", args: []string{"--unpublish-policy", "admins", "--admins", "root, ops", "--default-access", "restricted"},
			check: func(t *testing.T, c *config) {
				p := c.Commands.policy
				if p.Unpublish.Mode != registry.UnpublishAdmins || !reflect.DeepEqual(p.Admins, []string{"root", "ops"}) || p.DefaultAccess != "restricted" {
					t.Errorf("policy %+v", p)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := parseServe(tc.args)
			if err != nil {
				t.Fatalf("parseServe(%q): %v", tc.args, err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseServeBad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		badFlag bool // a flag that does not parse (one line, exit 2), not a bad value
	}{
		{name: "listen without port", args: []string{"--listen", "localhost"}, want: `--listen "localhost" is not host:port`},
		{name: "public URL not http", args: []string{"--public-url", "ftp://npm.example.com"}, want: `--public-url "ftp://npm.example.com" must be an http(s) URL without query`},
		{name: "public URL with a query", args: []string{"--public-url", "http://npm.example.com/?a=1"}, want: `--public-url "http://npm.example.com/?a=1" must be an http(s) URL without query`},
		{name: "public URL with a fragment", args: []string{"--public-url", "http://npm.example.com/#x"}, want: `--public-url "http://npm.example.com/#x" must be an http(s) URL without query`},
		{name: "CouchDB URL without scheme", args: []string{"--couchdb-url", "localhost:5984"}, want: "COUCHDB_URL must be an http(s) URL"},
		{name: "CouchDB URL from the environment", env: map[string]string{"COUCHDB_URL": "http://"}, want: "COUCHDB_URL must be an http(s) URL"},
		{name: "db prefix with capitals", args: []string{"--db-prefix", "Registry"}, want: `--db-prefix "Registry" is not a valid CouchDB database name (lowercase letter first, then a-z 0-9 _$()+-/)`},
		{name: "db prefix starting with a digit", args: []string{"--db-prefix", "1reg"}, want: `--db-prefix "1reg" is not a valid CouchDB database name (lowercase letter first, then a-z 0-9 _$()+-/)`},
		{name: "zero CouchDB timeout", args: []string{"--couchdb-timeout", "0s"}, want: "--couchdb-timeout must be positive"},
		{name: "sign-up domain that is an address", args: []string{"--signup-email-domains", "example.com,user@example.org"}, want: `--signup-email-domains: "user@example.org" is not a domain (like example.com)`},
		{name: "sign-up domain without a dot", args: []string{"--signup-email-domains", "localhost"}, want: `--signup-email-domains: "localhost" is not a domain (like example.com)`},
		{name: "trusted proxy that is a host name", args: []string{"--trusted-proxies", "lb.internal"}, want: `--trusted-proxies: "lb.internal" is neither an address nor a CIDR prefix (like 10.0.0.0/8)`},
		{name: "log format", args: []string{"--log-format", "text"}, want: `--log-format "text": want json or console`},
		{name: "log level", args: []string{"--log-level", "trace"}, want: `--log-level "trace": want debug, info, warn or error`},
		{name: "zero shutdown timeout", args: []string{"--shutdown-timeout", "0s"}, want: "timeouts must be positive"},
		{name: "negative CouchDB wait", args: []string{"--couchdb-wait", "-1s"}, want: "timeouts must be positive"},
		{name: "pprof without host", args: []string{"--pprof", "6060"}, want: `--pprof "6060" is not host:port`},
		{name: "peer not http", args: []string{"--peer", "couch.example.com:5984"}, want: "--peer must be an http(s) URL"},
		{name: "unpublish policy", args: []string{"--unpublish-policy", "never"}, want: `--unpublish-policy: unpublish policy "never": want maintainers, admins or window:<duration>`},
		{name: "unpublish window", args: []string{"--unpublish-policy", "window:x"}, want: `--unpublish-policy: unpublish policy "window:x": the window must be a positive duration like 72h`},
		{name: "admins policy without admins", args: []string{"--unpublish-policy", "admins", "--admins", " , "}, want: "--unpublish-policy admins needs --admins"},
		{name: "default access", args: []string{"--default-access", "secret"}, want: `--default-access: access "secret": want public or restricted`},
		{name: "audit upstream with credentials", args: []string{"--audit-upstream", "https://u:p@audit.example"}, want: "--audit-upstream must be an http(s) URL without credentials"},
		{name: "zero audit timeout", args: []string{"--audit-timeout", "0s"}, want: "--audit-timeout must be positive"},
		{name: "mirror mode", args: []string{"--mirror", "sometimes"}, want: "mirror mode must be off, on-demand, follow or replicate"},
		{name: "on-demand without upstream", args: []string{"--mirror", "on-demand"}, want: "mirror mode on-demand needs COUCHNPM_UPSTREAM: --upstream must be an http(s) URL"},
		{name: "follow without changes", args: []string{"--mirror", "follow", "--upstream", "http://up.example"}, want: "follow mode needs COUCHNPM_UPSTREAM_CHANGES: --upstream-changes must be an http(s) URL"},
		{name: "replicate without upstream CouchDB", args: []string{"--mirror", "replicate", "--upstream", "http://up.example"}, want: "replicate mode needs COUCHNPM_UPSTREAM_COUCHDB: --upstream-couchdb must be an http(s) URL"},
		{name: "replication target", args: []string{"--mirror", "replicate", "--upstream", "http://up.example", "--upstream-couchdb", "http://up.example:5984/r", "--replication-target", "db:5984"},
			want: "--replication-target must be an http(s) URL"},
		{name: "upstream header without colon", args: []string{"--upstream-headers", "X-A: 1;NoColon"}, want: `--upstream-headers: "NoColon" is not a "Name: value" pair`},
		{name: "follow page size", args: []string{"--follow-page-size", "0"}, want: "--follow-page-size must be between 1 and 10000"},
		{name: "follow page size too big", args: []string{"--follow-page-size", "10001"}, want: "--follow-page-size must be between 1 and 10000"},
		{name: "upstream concurrency", args: []string{"--upstream-max-concurrent", "0"}, want: "--upstream-max-concurrent must be between 1 and 4096"},
		{name: "mirror durations", args: []string{"--mirror-max-age", "0s"}, want: "mirror durations must be positive"},

		{name: "boolean from the environment", env: map[string]string{"COUCHNPM_ALLOW_SIGNUP": "maybe"}, want: `COUCHNPM_ALLOW_SIGNUP="maybe" is not a boolean`},
		{name: "duration from the environment", env: map[string]string{"COUCHNPM_COUCHDB_WAIT": "10"}, want: `COUCHNPM_COUCHDB_WAIT="10" is not a duration (like 10s)`},
		{name: "number from the environment", env: map[string]string{"COUCHNPM_FOLLOW_PAGE_SIZE": "lots"}, want: `COUCHNPM_FOLLOW_PAGE_SIZE="lots" is not a whole number`},
		{name: "size from the environment", env: map[string]string{"COUCHNPM_MAX_PUBLISH_BYTES": "big"}, want: `COUCHNPM_MAX_PUBLISH_BYTES: "big" is not a size (like 100MB)`},
		{name: "negative size from the environment", env: map[string]string{"COUCHNPM_UPSTREAM_MAX_PACKUMENT_BYTES": "-1"}, want: `COUCHNPM_UPSTREAM_MAX_PACKUMENT_BYTES: "-1" is not a size (like 100MB)`},
		{name: "cache size from the environment", env: map[string]string{"COUCHNPM_CACHE_BYTES": "x"}, want: `COUCHNPM_CACHE_BYTES: "x" is not a size (like 100MB)`},
		{name: "every broken variable at once", env: map[string]string{"COUCHNPM_ALLOW_SIGNUP": "maybe", "COUCHNPM_SHUTDOWN_TIMEOUT": "soon"},
			want: "COUCHNPM_ALLOW_SIGNUP=\"maybe\" is not a boolean\nCOUCHNPM_SHUTDOWN_TIMEOUT=\"soon\" is not a duration (like 10s)"},
		{name: "a broken variable is reported even when the flag is given", args: []string{"--couchdb-wait", "5s"},
			env: map[string]string{"COUCHNPM_COUCHDB_WAIT": "10"}, want: `COUCHNPM_COUCHDB_WAIT="10" is not a duration (like 10s)`},

		{name: "a size flag that does not parse", args: []string{"--max-publish-bytes", "0"}, badFlag: true,
			want: `invalid value "0" for flag -max-publish-bytes: "0" is not a size (like 100MB)`},
		{name: "an unknown flag", args: []string{"--listen-on", "x"}, badFlag: true, want: "flag provided but not defined: -listen-on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := parseServe(tc.args)
			if err == nil {
				t.Fatalf("parseServe(%q) accepted the configuration, want %q", tc.args, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("parseServe(%q):\n got %q\nwant %q", tc.args, err.Error(), tc.want)
			}
			var bf badFlag
			if errors.As(err, &bf) != tc.badFlag {
				t.Errorf("badFlag = %v, want %v (it decides between a flag error and a configuration error)", !tc.badFlag, tc.badFlag)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"100MB", 100 << 20}, {"100mb", 100 << 20}, {"512k", 512 << 10}, {"512 KB", 512 << 10}, {"2G", 2 << 30},
		{"1048576", 1 << 20}, {"10B", 10}, {" 7M ", 7 << 20},
		{"", 0}, {"0", 0}, {"-1MB", 0}, {"1.5MB", 0}, {"MB", 0}, {"lots", 0}, {"2048GB", 0}, {"1TB", 0},
	}
	for _, tc := range tests {
		got, err := parseBytes(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("parseBytes(%q) = %d, want an error", tc.in, got)
			} else if want := `"` + tc.in + `" is not a size (like 100MB)`; err.Error() != want {
				t.Errorf("parseBytes(%q) error %q, want %q", tc.in, err, want)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
