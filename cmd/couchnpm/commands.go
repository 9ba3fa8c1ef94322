package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
)

// commandsConfig holds the flags of the npm command surface (unpublish,
// access, audit); see docs/commands.md.
type commandsConfig struct {
	UnpublishPolicy string
	Admins          string
	DefaultAccess   string
	AuditUpstream   string
	AuditTimeout    time.Duration

	policy registry.Policy // parsed by check
}

func (c *commandsConfig) register(e *envFlags) {
	e.str(&c.UnpublishPolicy, "unpublish-policy", "COUCHNPM_UNPUBLISH_POLICY", "maintainers", "who may unpublish: maintainers, window:<duration> (maintainers, within that time of publishing) or admins")
	e.str(&c.Admins, "admins", "COUCHNPM_ADMINS", "", "comma-separated user names that may always unpublish")
	e.str(&c.DefaultAccess, "default-access", "COUCHNPM_DEFAULT_ACCESS", "public", "access of new packages published without --access: public or restricted")
	e.str(&c.AuditUpstream, "audit-upstream", "COUCHNPM_AUDIT_UPSTREAM", "", "registry base URL npm audit requests are forwarded to (empty: auditing off)")
	e.duration(&c.AuditTimeout, "audit-timeout", "COUCHNPM_AUDIT_TIMEOUT", 30*time.Second, "bound on one forwarded npm audit request")
}

func (c *commandsConfig) check() error {
	up, err := registry.ParseUnpublishPolicy(c.UnpublishPolicy)
	if err != nil {
		return fmt.Errorf("--unpublish-policy: %s", registry.DetailOf(err))
	}
	access, err := registry.NormalizeAccess(c.DefaultAccess)
	if err != nil {
		return fmt.Errorf("--default-access: %s", registry.DetailOf(err))
	}
	var admins []string
	for _, a := range strings.Split(c.Admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			admins = append(admins, a)
		}
	}
	if up.Mode == registry.UnpublishAdmins && len(admins) == 0 {
		return fmt.Errorf("--unpublish-policy admins needs --admins")
	}
	if c.AuditUpstream != "" {
		u, err := url.Parse(c.AuditUpstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return fmt.Errorf("--audit-upstream must be an http(s) URL without credentials")
		}
	}
	if c.AuditTimeout <= 0 {
		return fmt.Errorf("--audit-timeout must be positive")
	}
	c.policy = registry.Policy{Unpublish: up, Admins: admins, DefaultAccess: access}
	return nil
}

// wireCommands fills the handler configuration the command surface needs.
func wireCommands(cfg *config, reg *registry.Service, hc *handlers.Config) {
	hc.AuditUpstream = cfg.Commands.AuditUpstream
	hc.AuditTimeout = cfg.Commands.AuditTimeout
}
