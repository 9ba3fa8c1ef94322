//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const hiddenDetail = "(shown to administrators)"

// TestMirrorStatusDetailsForAdminsOnly: GET /-/mirror/status shows the
// upstream's address, the instance names and the error texts to an admin
// only; anyone else sees the mode, progress, counts and which package
// failed, with those details replaced. couchnpm mirror status shows them
// with an admin's COUCHNPM_TOKEN, not without.
func TestMirrorStatusDetailsForAdminsOnly(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("ms-ok", "1.0.0", nil)
	up.publish("ms-bad", "1.0.0", nil)
	up.setFail("ms-bad", 500)
	prefix := sharedPrefix(t)
	const instance = "ms-host-7"
	reg := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow",
		"--admins", "msroot-"+prefix, "--instance-id", instance)})
	eventually(t, 30*time.Second, "catch-up with a failure", func() (bool, string) {
		st := mirrorStatus(t, reg)
		return st["state"] == "following" && num(st["packuments_written"]) >= 1 && num(st["failures"]) >= 1, fmt.Sprint(st)
	})
	_, userToken := rawAddUser(t, reg, "msuser")
	_, adminToken := rawAddUser(t, reg, "msroot")
	upHost := strings.TrimPrefix(up.URL(), "http://")

	for _, tc := range []struct {
		name, token string
		admin       bool
	}{
		{"anonymous", "", false},
		{"a user", userToken, false},
		{"an admin", adminToken, true},
	} {
		st := mirrorStatusAs(t, reg, tc.token)
		all := fmt.Sprint(st)
		failures, _ := st["last_failures"].([]any)
		var bad map[string]any
		for _, f := range failures {
			if m, _ := f.(map[string]any); m["package"] == "ms-bad" {
				bad = m
			}
		}
		if st["mode"] != "follow" || st["state"] != "following" || st["checkpoint"] == "" || st["lag_changes"] == nil ||
			num(st["failures"]) < 1 || bad == nil || st["upstream_fetches"] == nil {
			t.Errorf("%s: mode, progress, counts and the failed package are for everyone: %v", tc.name, st)
			continue
		}
		if tc.admin {
			if st["upstream"] != up.URL() || st["instance"] != instance || st["follower_holder"] != instance ||
				!strings.Contains(fmt.Sprint(bad["error"]), "500") {
				t.Errorf("the admin does not see the details: %v", st)
			}
			continue
		}
		if strings.Contains(all, upHost) || strings.Contains(all, instance) || strings.Contains(fmt.Sprint(failures), "500") {
			t.Errorf("%s sees the upstream, the instance or an error text: %v", tc.name, st)
		}
		if st["upstream"] != hiddenDetail || st["instance"] != hiddenDetail || st["follower_holder"] != hiddenDetail || bad["error"] != hiddenDetail {
			t.Errorf("%s: the hidden details are not marked as such: %v", tc.name, st)
		}
	}

	// The command line: what anyone sees, and everything with an admin's token.
	for _, tc := range []struct {
		token string
		admin bool
	}{{"", false}, {adminToken, true}} {
		cmd := exec.Command(suite.bin, "mirror", "status", "--url", reg.URL)
		cmd.Env = append(envWithout(os.Environ(), "COUCHNPM_TOKEN"), "COUCHNPM_TOKEN="+tc.token)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "state:         following") || !strings.Contains(string(out), "ms-bad") {
			t.Fatalf("couchnpm mirror status: %v\n%s", err, out)
		}
		if shown := strings.Contains(string(out), "upstream:      "+up.URL()); shown != tc.admin {
			t.Errorf("admin token %v: upstream shown %v:\n%s", tc.admin, shown, out)
		}
		if hidden := strings.Contains(string(out), hiddenDetail); hidden == tc.admin {
			t.Errorf("admin token %v: details hidden %v:\n%s", tc.admin, hidden, out)
		}
	}
}
