package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/handlers"
)

// config is everything `couchnpm serve` can be told. Each flag falls back to
// an environment variable; a flag given on the command line wins.
type config struct {
	Listen          string
	PublicURL       string
	CouchURL        string
	CouchUser       string
	CouchPassword   string
	DBPrefix        string
	MaxPublishBytes int64
	LogLevel        string
	LogFormat       string
	AllowSignup     bool
	CouchTimeout    time.Duration
	CouchWait       time.Duration
	ShutdownTimeout time.Duration
	InstanceID      string
	Mirror          mirrorConfig
	Commands        commandsConfig // command surface (commands.go)
	Fastpath        fastpathConfig // packument cache, metrics, pprof (fastpath.go)
	Peers           peersConfig    // active-active sites (peers.go)
	Signing         signingConfig  // registry signatures (signing.go)
	// token and account cache (authcache.go)
	AuthCache authCacheConfig

	// SignupEmailDomains limits sign-up to these e-mail domains (empty: any).
	SignupEmailDomains []string
	// TrustedProxies may name the client in X-Forwarded-For.
	TrustedProxies handlers.TrustedProxies
}

// envFlags registers flags whose defaults come from the environment and
// remembers environment values that do not parse.
type envFlags struct {
	fs   *flag.FlagSet
	errs []error
}

func (e *envFlags) str(p *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	e.fs.StringVar(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) boolean(p *bool, name, env string, def bool, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s=%q is not a boolean", env, v))
		}
		def = b
	}
	e.fs.BoolVar(p, name, def, usage+" (env "+env+")")
}

func (e *envFlags) integer(p *int, name, env string, def int, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s=%q is not a whole number", env, v))
		}
		def = n
	}
	e.fs.IntVar(p, name, def, usage+" (env "+env+")")
}

// size registers a byte-size flag (like 100MB) with an environment fallback.
func (e *envFlags) size(p *int64, name, env string, def int64, usage string) {
	*p = def
	if v, ok := os.LookupEnv(env); ok {
		if err := (byteSize{p}).Set(v); err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s: %w", env, err))
		}
	}
	e.fs.Var(byteSize{p}, name, usage+" (env "+env+")")
}

func (e *envFlags) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s=%q is not a duration (like 10s)", env, v))
		}
		def = d
	}
	e.fs.DurationVar(p, name, def, usage+" (env "+env+")")
}

// byteSize is a flag value like 100MB, 512k or 1048576.
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return formatBytes(*b.n)
}

// formatBytes writes n in the largest unit parseBytes reads back exactly:
// 256MB, not 268435456.
func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b.n = n
	return nil
}

func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size (like 100MB)", s)
	}
	return n * mult, nil
}

var dbNameRe = regexp.MustCompile(`^[a-z][a-z0-9_$()+/-]*$`)

// parseServe reads the serve subcommand's flags and checks them.
func parseServe(args []string) (*config, error) {
	return parseServeAs("couchnpm serve", args, nil)
}

// parseServeAs reads serve's flags for the command name, with the
// command's own flags (extra, when not nil) beside them: couchnpm doctor
// is given serve's configuration.
func parseServeAs(name string, args []string, extra func(*envFlags)) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	e := &envFlags{fs: fs}
	if extra != nil {
		extra(e)
	}
	e.str(&c.Listen, "listen", "COUCHNPM_LISTEN", "127.0.0.1:4880", "address to listen on")
	e.str(&c.PublicURL, "public-url", "COUCHNPM_PUBLIC_URL", "", "base URL clients reach the registry at, written into dist.tarball (default: http://<listen address>)")
	c.registerCouch(e)
	c.MaxPublishBytes = 100 << 20
	if v, ok := os.LookupEnv("COUCHNPM_MAX_PUBLISH_BYTES"); ok {
		if err := (byteSize{&c.MaxPublishBytes}).Set(v); err != nil {
			e.errs = append(e.errs, fmt.Errorf("COUCHNPM_MAX_PUBLISH_BYTES: %w", err))
		}
	}
	fs.Var(byteSize{&c.MaxPublishBytes}, "max-publish-bytes", "largest publish body accepted, a `size` like 100MB or 512KB (env COUCHNPM_MAX_PUBLISH_BYTES)")
	e.str(&c.LogLevel, "log-level", "COUCHNPM_LOG_LEVEL", "info", "debug, info, warn or error")
	e.str(&c.LogFormat, "log-format", "COUCHNPM_LOG_FORMAT", "json", "json or console")
	e.boolean(&c.AllowSignup, "allow-signup", "COUCHNPM_ALLOW_SIGNUP", false, "let npm adduser and the web login create accounts for new names (off: only couchnpm user add)")
	var domains string
	e.str(&domains, "signup-email-domains", "COUCHNPM_SIGNUP_EMAIL_DOMAINS", "", "comma-separated e-mail domains sign-up is limited to (empty: any)")
	var proxies string
	e.str(&proxies, "trusted-proxies", "COUCHNPM_TRUSTED_PROXIES", "", "comma-separated addresses and CIDR prefixes of the reverse proxies in front; their X-Forwarded-For names the client (empty: none)")
	e.duration(&c.CouchWait, "couchdb-wait", "COUCHNPM_COUCHDB_WAIT", 60*time.Second, "how long to wait for CouchDB at start")
	e.duration(&c.ShutdownTimeout, "shutdown-timeout", "COUCHNPM_SHUTDOWN_TIMEOUT", 15*time.Second, "how long in-flight requests may finish on SIGTERM")
	e.str(&c.InstanceID, "instance-id", "COUCHNPM_INSTANCE_ID", "", "this instance's name in leases and status (default: host name and process id)")
	c.Mirror.register(e)
	c.Commands.register(e)
	c.Fastpath.register(e)
	c.Peers.register(e)
	c.Signing.register(e)
	c.AuthCache.register(e)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if len(e.errs) > 0 {
		return nil, errors.Join(e.errs...)
	}
	var err error
	if c.TrustedProxies, err = handlers.ParseTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	for _, d := range strings.Split(domains, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			c.SignupEmailDomains = append(c.SignupEmailDomains, d)
		}
	}
	return c, c.check()
}

// registerCouch registers the flags that say how to reach CouchDB; serve
// and the operators' commands (couchnpm user, claim, unclaim) share them.
func (c *config) registerCouch(e *envFlags) {
	e.str(&c.CouchURL, "couchdb-url", "COUCHDB_URL", "http://127.0.0.1:5984", "CouchDB base URL")
	c.CouchUser = os.Getenv("COUCHDB_USER")
	c.CouchPassword = os.Getenv("COUCHDB_PASSWORD")
	e.str(&c.DBPrefix, "db-prefix", "COUCHNPM_DB_PREFIX", "registry", "prefix of the registry's CouchDB database names")
	e.duration(&c.CouchTimeout, "couchdb-timeout", "COUCHNPM_COUCHDB_TIMEOUT", 10*time.Second, "bound on each CouchDB metadata call")
}

// checkCouch checks the flags of registerCouch.
func (c *config) checkCouch() error {
	if u, err := url.Parse(c.CouchURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("COUCHDB_URL must be an http(s) URL")
	}
	if !dbNameRe.MatchString(c.DBPrefix) || len(c.DBPrefix) > 200 {
		return fmt.Errorf("--db-prefix %q is not a valid CouchDB database name (lowercase letter first, then a-z 0-9 _$()+-/)", c.DBPrefix)
	}
	if c.CouchTimeout <= 0 {
		return errors.New("--couchdb-timeout must be positive")
	}
	return nil
}

// check checks the configuration and fills in what is derived from it
// (the public URL, the instance id, the parsed parts of the sections).
// The first mistake is reported, in the order of the checks.
func (c *config) check() error {
	for _, check := range []func() error{
		c.checkListen,
		c.checkCouch,
		c.checkSignupDomains,
		c.checkLogging,
		c.checkTimeouts,
		c.Fastpath.check,
		c.Peers.check,
		c.Commands.check,
		func() error { return c.Mirror.check(c.CouchURL) },
	} {
		if err := check(); err != nil {
			return err
		}
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return nil
}

// checkListen checks --listen and --public-url; without a public URL,
// clients reach the listen address (loopback for an any-address).
func (c *config) checkListen() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port", c.Listen)
	}
	if c.PublicURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q must be an http(s) URL without query", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return nil
}

func (c *config) checkSignupDomains() error {
	for _, d := range c.SignupEmailDomains {
		if strings.ContainsAny(d, "@ \t/") || !strings.Contains(d, ".") {
			return fmt.Errorf("--signup-email-domains: %q is not a domain (like example.com)", d)
		}
	}
	return nil
}

func (c *config) checkLogging() error {
	switch c.LogFormat {
	case "json", "console":
	default:
		return fmt.Errorf("--log-format %q: want json or console", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func (c *config) checkTimeouts() error {
	if c.CouchWait < 0 || c.ShutdownTimeout <= 0 {
		return errors.New("timeouts must be positive")
	}
	return nil
}
