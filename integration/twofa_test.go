//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238 TOTP, as an authenticator app computes it
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// authenticator is the test's authenticator app: it computes RFC 6238
// codes of the secret npm printed, independently of the registry's code,
// and hands out codes of ever later 30-second steps (the registry accepts
// each step once per credential, and one step either side of now).
type authenticator struct {
	t    *testing.T
	key  []byte
	last int64 // the latest step handed out
}

func newAuthenticator(t *testing.T, secret string) *authenticator {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(key) < 16 {
		t.Fatalf("npm printed the secret %q: %v", secret, err)
	}
	return &authenticator{t: t, key: key}
}

func (a *authenticator) code(step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac := hmac.New(sha1.New, a.key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// fresh returns the code of a step no credential has used yet, waiting
// when that step is more than one ahead of now.
func (a *authenticator) fresh() string {
	a.t.Helper()
	step := max(time.Now().Unix()/30, a.last+1)
	for step > time.Now().Unix()/30+1 {
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)) + 200*time.Millisecond)
	}
	a.last = step
	return a.code(step)
}

var (
	otpSecretRE    = regexp.MustCompile(`Or enter code:\s+([A-Z2-7]{16,})`)
	recoveryCodeRE = regexp.MustCompile(`(?m)^\s+([0-9a-f]{64})\s*$`)
)

// Issue 9, point 4: npm profile enable-2fa / get / disable-2fa against the
// registry, and what auth-and-writes then asks of npm's writes and logins.
// The codes are computed here, from the secret npm prints.
func TestTwoFactor(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("tfalice")
	const password = "Pw-tfa-alice-31ee42ff"
	alice := newNPMUser(t, reg, name)
	alice.mustLogin(name, password, name+"@example.com")
	bobName := reg.user("tfbob")
	const bobPassword = "Pw-tfa-bob-53aa64bb"
	bob := newNPMUser(t, reg, bobName)
	bob.mustLogin(bobName, bobPassword, bobName+"@example.com")
	alice.publish("tfa-pkg", "1.0.0")

	// npm profile enable-2fa: password, then a code of the new secret.
	auth, res := enable2FA(t, alice, "auth-and-writes", password)
	recovery := recoveryCodeRE.FindAllStringSubmatch(res.Stdout, -1)
	if len(recovery) != 5 {
		t.Fatalf("npm printed %d recovery codes, want 5:\n%s", len(recovery), res)
	}

	t.Run("profile get shows 2FA on, never the secret", func(t *testing.T) {
		res := alice.mustRunIn("", "profile", "get")
		if !strings.Contains(res.Stdout, "two-factor auth: auth-and-writes") {
			t.Errorf("npm profile get:\n%s", res)
		}
		var info struct {
			Name string
			TFA  struct {
				Mode    string
				Pending bool
			}
		}
		parseJSON(t, alice.mustRunIn("", "profile", "get", "--json"), &info)
		if info.Name != name || info.TFA.Mode != "auth-and-writes" || info.TFA.Pending {
			t.Errorf("npm profile get --json: %+v", info)
		}
		if h := reg.do("GET", "/-/npm/v1/user", alice.token(), nil); strings.Contains(string(h.Body), "secret") || strings.Contains(string(h.Body), "recovery") {
			t.Errorf("the profile shows two-factor secrets: %s", h)
		}
	})

	var used string // a code alice's token used
	t.Run("writes need a code", func(t *testing.T) {
		dir := writePackage(t, "tfa-pkg", "1.1.0", "tfa-1.1.0")
		res := alice.mustFail(dir, []string{"EOTP"}, "publish")
		if !strings.Contains(res.Stderr, "one-time password") {
			t.Errorf("npm's message for a publish without a code:\n%s", res)
		}
		alice.mustFail(dir, []string{"EOTP"}, "publish", "--otp=000000")
		// On a terminal npm asks for the code and sends the publish again.
		res = alice.inTerminal(dir, []string{"publish"}, "Enter OTP:", func() string {
			used = auth.fresh()
			return used
		})
		if used == "" || res.Err != nil || !strings.Contains(res.Stdout, "+ tfa-pkg@1.1.0") {
			t.Fatalf("npm publish answering the OTP prompt:\n%s", res)
		}
		alice.mustFail("", []string{"EOTP"}, "dist-tag", "add", "tfa-pkg@1.0.0", "old")
		// npm sends one code with every request of a command; the same
		// token may use it again within its step (npm unpublish
		// pkg@version writes twice).
		alice.mustRunIn("", "dist-tag", "add", "tfa-pkg@1.0.0", "old", "--otp="+used)
		alice.mustFail("", []string{"EOTP"}, "token", "create", "--password="+password)
		alice.mustFail("", []string{"EOTP"}, "deprecate", "tfa-pkg@1.0.0", "old")
		// npm owner wraps the EOTP in its own code, keeping npm's message.
		if res := alice.mustFail("", []string{"EOWNERMUTATE"}, "owner", "add", bobName, "tfa-pkg"); !strings.Contains(res.Stderr, "OTP required") {
			t.Errorf("npm owner add without a code:\n%s", res)
		}
		// Reading needs nothing.
		if res := alice.mustRunIn("", "view", "tfa-pkg", "dist-tags", "--json"); !strings.Contains(res.Stdout, `"old": "1.0.0"`) {
			t.Errorf("npm view after the dist-tag:\n%s", res)
		}
	})

	alice2 := newNPMUser(t, reg, name+"-second")
	t.Run("login needs a code, used once", func(t *testing.T) {
		login := func(otp string) npmResult {
			args := []string{"login", "--auth-type=legacy"}
			if otp != "" {
				args = append(args, "--otp="+otp)
			}
			return alice2.answerPrompts(args, []string{"Username:", "Password:"}, []string{name, password})
		}
		if res := login(""); res.Err == nil || npmErrorCode(res.Stderr) != "EOTP" {
			t.Errorf("login without a code: want EOTP\n%s", res)
		}
		if res := login(used); res.Err == nil || npmErrorCode(res.Stderr) != "EOTP" {
			t.Errorf("login with a code another token used (replay): want EOTP\n%s", res)
		}
		if res := login(auth.fresh()); res.Err != nil || alice2.token() == "" {
			t.Fatalf("login with a fresh code:\n%s", res)
		}
		reg.addSecret(alice2.token())
	})

	t.Run("one code, two tokens at once: one wins", func(t *testing.T) {
		code := auth.fresh()
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, tok := range []string{alice.token(), alice2.token()} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("PUT", reg.URL+"/-/package/tfa-pkg/dist-tags/race"+strconv.Itoa(i), strings.NewReader(`"1.0.0"`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("npm-otp", code)
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			if st < 300 {
				ok++
			} else if st != 401 {
				t.Errorf("status %d, want 2xx or 401", st)
			}
		}
		if ok != 1 {
			t.Errorf("one code sent by two tokens at once: statuses %v, want exactly one accepted", statuses)
		}
	})

	t.Run("a recovery code works once", func(t *testing.T) {
		code := recovery[0][1]
		alice2.mustRunIn("", "dist-tag", "add", "tfa-pkg@1.1.0", "rc", "--otp="+code)
		alice2.mustFail("", []string{"EOTP"}, "dist-tag", "add", "tfa-pkg@1.1.0", "rc2", "--otp="+code)
	})

	t.Run("another user cannot turn it off", func(t *testing.T) {
		// bob's token and bob's password change bob's account only;
		// with alice's password it is a wrong password.
		if h := reg.do("POST", "/-/npm/v1/user", bob.token(), mustJSON(map[string]any{"tfa": map[string]string{"password": bobPassword, "mode": "disable"}})); h.Status != 200 {
			t.Errorf("bob disabling his own (off) 2FA: %s", h)
		}
		if h := reg.do("POST", "/-/npm/v1/user", bob.token(), mustJSON(map[string]any{"tfa": map[string]string{"password": password, "mode": "disable"}})); h.Status != 401 {
			t.Errorf("bob with alice's password: %s, want 401", h)
		}
		// alice's token without a code cannot either.
		if h := reg.do("POST", "/-/npm/v1/user", alice.token(), mustJSON(map[string]any{"tfa": map[string]string{"password": password, "mode": "disable"}})); h.Status != 401 || h.Header.Get("WWW-Authenticate") != "OTP" {
			t.Errorf("alice's token disabling without a code: %s, want the OTP challenge", h)
		}
		if res := alice.mustRunIn("", "profile", "get", "two-factor auth"); strings.TrimSpace(res.Stdout) != "auth-and-writes" {
			t.Errorf("alice's 2FA after the attempts: %s", res)
		}
	})

	t.Run("disable-2fa", func(t *testing.T) {
		res := alice.answerPrompts([]string{"profile", "disable-2fa", "--otp=" + auth.fresh()},
			[]string{"npm password:"}, []string{password})
		if res.Err != nil || !strings.Contains(res.Stdout, "Two factor authentication disabled") {
			t.Fatalf("npm profile disable-2fa:\n%s", res)
		}
		if res := alice.mustRunIn("", "profile", "get", "two-factor auth"); strings.TrimSpace(res.Stdout) != "disabled" {
			t.Errorf("npm profile get after disable: %s", res)
		}
		alice.publish("tfa-pkg", "1.2.0")
	})
	reg.checkNoSecrets()
}

// enable2FA runs npm profile enable-2fa mode as u, answering its prompts
// with password and a code of the secret it prints; it returns the
// authenticator and npm's output.
func enable2FA(t *testing.T, u *npmUser, mode, password string) (*authenticator, npmResult) {
	t.Helper()
	var auth *authenticator
	res := u.answerPromptsWith([]string{"profile", "enable-2fa", mode},
		[]string{"npm password:", "And an OTP code from your authenticator:"},
		func(i int, out string) string {
			if i == 0 {
				return password
			}
			m := otpSecretRE.FindStringSubmatch(out)
			if m == nil {
				t.Errorf("npm printed no secret before asking for a code:\n%s", out)
				return "000000"
			}
			u.reg.addSecret(m[1])
			auth = newAuthenticator(t, m[1])
			return auth.fresh()
		})
	if res.Err != nil || auth == nil || !strings.Contains(res.Stdout, "2FA successfully enabled") {
		t.Fatalf("npm profile enable-2fa %s:\n%s", mode, res)
	}
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(res.Stdout, -1) {
		u.reg.addSecret(m[1])
	}
	return auth, res
}

// auth-only: logins need a code, writes do not; switching to
// auth-and-writes needs a code and then writes do.
func TestTwoFactorAuthOnly(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("tfcarol")
	const password = "Pw-tfa-carol-75cc86dd"
	carol := newNPMUser(t, reg, name)
	carol.mustLogin(name, password, name+"@example.com")
	auth, _ := enable2FA(t, carol, "auth-only", password)
	if res := carol.mustRunIn("", "profile", "get", "two-factor auth"); strings.TrimSpace(res.Stdout) != "auth-only" {
		t.Errorf("npm profile get: %s", res)
	}
	carol.publish("tfa-only", "1.0.0") // no code asked
	other := newNPMUser(t, reg, name+"-second")
	if res := other.answerPrompts([]string{"login", "--auth-type=legacy"}, []string{"Username:", "Password:"}, []string{name, password}); res.Err == nil || npmErrorCode(res.Stderr) != "EOTP" {
		t.Errorf("auth-only login without a code: want EOTP\n%s", res)
	}
	res := carol.answerPrompts([]string{"profile", "enable-2fa", "auth-and-writes", "--otp=" + auth.fresh()},
		[]string{"npm password:"}, []string{password})
	if res.Err != nil || !strings.Contains(res.Stdout, "mode changed to: auth-and-writes") {
		t.Fatalf("npm profile enable-2fa auth-and-writes while on:\n%s", res)
	}
	carol.mustFail(writePackage(t, "tfa-only", "1.1.0", "x"), []string{"EOTP"}, "publish")
	// Lost device and recovery codes: the operator turns it off.
	if out, err := reg.couchnpmUser("", "reset-2fa", name); err != nil || !strings.Contains(out, "turned off two-factor") {
		t.Fatalf("couchnpm user reset-2fa: %v\n%s", err, out)
	}
	// Heard through the _users feed, within the authentication cache's
	// bound: the profile stops showing the mode.
	eventually(t, 10*time.Second, "two-factor authentication off after reset-2fa", func() (bool, string) {
		h := reg.do("GET", "/-/npm/v1/user", carol.token(), nil)
		return h.Status == 200 && !bytes.Contains(h.Body, []byte("auth-and-writes")), h.String()
	})
	carol.publish("tfa-only", "1.1.0")
	reg.checkNoSecrets()
}

// inTerminal runs npm in dir under a pseudo-terminal (util-linux script):
// npm asks for a one-time password only when stdin and stdout are
// terminals. Once prompt shows, it types answer().
func (u *npmUser) inTerminal(dir string, args []string, prompt string, answer func() string) npmResult {
	u.t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		u.t.Skip("no script(1) for a pseudo-terminal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	npm := u.command(ctx, dir, args...)
	quoted := make([]string, len(npm.Args))
	for i, a := range npm.Args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.CommandContext(ctx, "script", "-qefc", strings.Join(quoted, " "), "/dev/null")
	cmd.Dir, cmd.Env, cmd.WaitDelay = npm.Dir, npm.Env, npm.WaitDelay
	stdin, err := cmd.StdinPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	out := &promptWriter{notify: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
wait:
	for !strings.Contains(out.String(), prompt) {
		select {
		case <-out.notify:
		case <-exited:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	select {
	case <-exited:
	default:
		io.WriteString(stdin, answer()+"\r")
	}
	<-exited
	stdin.Close()
	return npmResult{Args: args, Stdout: out.String(), Err: waitErr}
}
