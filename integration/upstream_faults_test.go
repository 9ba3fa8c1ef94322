//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Upstream faults, slow clients and shutdown (issue 6): each promise below
// is a test that fails when the promise breaks.

// tarballURL is the registry path of a mirrored (unscoped) package's tarball.
func tarballURL(name, version string) string {
	return "/" + name + "/-/" + name + "-" + version + ".tgz"
}

// cachedTarballs lists the documents of a registry's tarball cache database.
func cachedTarballs(t *testing.T, r *registry) []string {
	t.Helper()
	body := mustCouch(t, "GET", "/"+r.Prefix+"-tarballs/_all_docs", nil, 200)
	var all struct {
		Rows []struct {
			ID string `json:"id"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatalf("tarball cache _all_docs: %v: %s", err, body)
	}
	var ids []string
	for _, row := range all.Rows {
		ids = append(ids, row.ID)
	}
	return ids
}

// TestUpstreamFaultsFollowerBackoff: the follower honours 429 Retry-After
// (its next changes request waits at least that long), backs off
// exponentially through 500s, says so in its status, and catches up once
// the upstream recovers; an unreadable page is read again, and a
// rate-limited packument is fetched again after its Retry-After.
func TestUpstreamFaultsFollowerBackoff(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("bo-a", "1.0.0", nil)
	up.setFault("/_changes", fault429, 1, 3) // the very first page: 429, Retry-After: 3
	prefix := sharedPrefix(t)
	// The error text is for admins (it may name hosts and URLs).
	r := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", "--admins", "boroot-"+prefix)})
	_, admin := rawAddUser(t, r, "boroot")

	eventually(t, 20*time.Second, "catch-up after a 429", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["packuments_written"]) >= 1, fmt.Sprint(st)
	})
	reqs := up.requests("/_changes")
	if len(reqs) < 2 || reqs[0].fault != fault429 {
		t.Fatalf("changes requests: %+v, want a 429 first", reqs)
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 3*time.Second {
		t.Fatalf("after a 429 with Retry-After: 3 the follower asked again %s later", gap.Round(time.Millisecond))
	} else {
		t.Logf("429 Retry-After: 3 → next changes request %s later", gap.Round(time.Millisecond))
	}

	// Three 500s in a row: waits of 1 s, 2 s, 4 s, then the page is read and
	// the change made meanwhile is mirrored.
	before := len(up.requests("/_changes"))
	up.setFault("/_changes", fault500, 3, 0)
	up.publish("bo-b", "1.0.0", nil)
	sawBackoff := false
	eventually(t, 30*time.Second, "catch-up after three 500s", func() (bool, string) {
		st := mirrorStatusAs(t, r, admin)
		if st["state"] == "backoff" && strings.Contains(fmt.Sprint(st["last_error"]), "500") {
			sawBackoff = true
		}
		return st["state"] == "following" && num(st["packuments_written"]) >= 2, fmt.Sprint(st)
	})
	if hits := up.hitCount("/bo-b"); hits != 1 {
		t.Fatalf("bo-b fetched %d times, want 1 (by the follower)", hits)
	}
	reqs = up.requests("/_changes")[before:]
	first := -1
	for i, rq := range reqs {
		if rq.fault == fault500 {
			first = i
			break
		}
	}
	if first < 0 || len(reqs) < first+4 {
		t.Fatalf("changes requests after the 500s were injected: %+v", reqs)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		a, b := reqs[first+i], reqs[first+i+1]
		gap := b.at.Sub(a.at)
		t.Logf("500 #%d → next changes request %s later", i+1, gap.Round(time.Millisecond))
		if a.fault != fault500 {
			t.Fatalf("request %d after the injection was not a 500: %+v", i, reqs)
		}
		if gap < want-50*time.Millisecond {
			t.Fatalf("after 500 #%d the follower waited %s, want ≥ %s (exponential backoff)", i+1, gap.Round(time.Millisecond), want)
		}
	}
	if reqs[first+3].fault != "" {
		t.Fatalf("the fourth request was faulted too: %+v", reqs)
	}
	if !sawBackoff {
		t.Fatal("the mirror status never reported the backoff while the changes feed answered 500")
	}

	// An unreadable page (200 with garbage) is retried, not skipped: the
	// checkpoint does not move past changes it never read.
	before = len(up.requests("/_changes"))
	up.setFault("/_changes", faultGarbage, 2, 0)
	up.publish("bo-c", "1.0.0", nil)
	eventually(t, 20*time.Second, "catch-up after two garbage pages", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["packuments_written"]) >= 3, fmt.Sprint(st)
	})
	if reqs := up.requests("/_changes")[before:]; len(reqs) < 3 || reqs[0].fault != faultGarbage || reqs[1].fault != faultGarbage {
		t.Fatalf("changes requests after garbage was injected: %+v", reqs)
	}

	// A packument the upstream rate-limits (429, Retry-After: 1) is fetched
	// again after the wait, not recorded as failed and skipped until it
	// changes again.
	up.setFault(pkgPath("bo-d"), fault429, 2, 1)
	up.publish("bo-d", "1.0.0", nil)
	eventually(t, 20*time.Second, "bo-d mirrored after two 429s", func() (bool, string) {
		st := mirrorStatus(t, r)
		return num(st["packuments_written"]) >= 4 || num(st["failures"]) > 0, fmt.Sprint(st)
	})
	if st := mirrorStatus(t, r); num(st["failures"]) != 0 || num(st["packuments_written"]) < 4 {
		t.Fatalf("a rate-limited packument was given up: %v", st)
	}
	pk := up.requests(pkgPath("bo-d"))
	if len(pk) != 3 {
		t.Fatalf("bo-d requested %d times, want 3 (two 429s, then the document)", len(pk))
	}
	for i := 1; i < len(pk); i++ {
		if gap := pk[i].at.Sub(pk[i-1].at); gap < time.Second {
			t.Fatalf("the follower asked for bo-d again %s after a 429 with Retry-After: 1", gap.Round(time.Millisecond))
		}
	}
}

// TestUpstreamFaultsPullThrough injects each fault into packument and
// tarball fetches of on-demand pull-through: couchnpm answers 503 (502 for
// a tarball whose bytes do not match the packument), never 404 and never
// the bytes it got, caches nothing, and serves the right, verified bytes
// once the upstream recovers. A slow drip is cut by the timeouts and does
// not hold up other requests.
func TestUpstreamFaultsPullThrough(t *testing.T) {
	t.Parallel()
	const metaTimeout, tarballTimeout = 2 * time.Second, 3 * time.Second
	up := newFakeUpstream(t)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand",
		"--upstream-timeout", metaTimeout.String(), "--upstream-tarball-timeout", tarballTimeout.String())})
	kinds := []faultKind{fault500, fault429, faultTruncate, faultDrip, faultGarbage, faultReset}
	for _, k := range kinds {
		up.publish("pf-"+string(k), "1.0.0", nil)
		up.publish("tf-"+string(k), "1.0.0", nil)
	}
	up.publish("quick", "1.0.0", nil)
	up.publish("slow", "1.0.0", nil)

	t.Run("faults", func(t *testing.T) {
		for _, kind := range kinds {
			t.Run("packument-"+string(kind), func(t *testing.T) {
				t.Parallel()
				name := "pf-" + string(kind)
				up.setFault(pkgPath(name), kind, -1, 1)
				for range 2 { // twice: the first failure left nothing behind
					start := time.Now()
					res, err := r.tryDo("GET", "/"+name, "", nil, 20*time.Second)
					took := time.Since(start)
					if err != nil {
						t.Fatalf("GET /%s with upstream fault %s: %v after %s", name, kind, err, took.Round(time.Millisecond))
					}
					if res.Status != 503 {
						t.Fatalf("GET /%s with upstream fault %s: %s, want 503", name, kind, res)
					}
					if kind == faultDrip && (took < metaTimeout-100*time.Millisecond || took > metaTimeout+4*time.Second) {
						t.Fatalf("dripping packument answered after %s, want about --upstream-timeout (%s)", took, metaTimeout)
					}
				}
				up.clearFault(pkgPath(name))
				if v, st := latestOf(r, name); v != "1.0.0" {
					t.Fatalf("after the upstream recovered: latest %q, status %d", v, st)
				}
			})
			t.Run("tarball-"+string(kind), func(t *testing.T) {
				t.Parallel()
				name := "tf-" + string(kind)
				if v, st := latestOf(r, name); v != "1.0.0" {
					t.Fatalf("packument: latest %q, status %d", v, st)
				}
				want := 503
				if kind == faultGarbage {
					want = 502 // the bytes do not match the packument's integrity
				}
				up.setFault(tarballPath(name, "1.0.0"), kind, -1, 1)
				for range 2 {
					// The GET that starts the download streams it: it
					// gets the status (when the upstream fails before
					// sending bytes) or a response cut short, never a
					// complete 200.
					res, err := r.tryDo("GET", tarballURL(name, "1.0.0"), "", nil, 20*time.Second)
					if err == nil && res.Status != want {
						t.Fatalf("tarball with upstream fault %s: %s, want %d or a cut response", kind, res, want)
					}
					// A request that waits for the download gets the status.
					start := time.Now()
					res, err = r.tryDo("HEAD", tarballURL(name, "1.0.0"), "", nil, 20*time.Second)
					took := time.Since(start)
					if err != nil {
						t.Fatalf("HEAD tarball with upstream fault %s: %v after %s", kind, err, took.Round(time.Millisecond))
					}
					if res.Status != want {
						t.Fatalf("HEAD tarball with upstream fault %s: %s, want %d", kind, res, want)
					}
					if kind == faultDrip && (took < tarballTimeout-100*time.Millisecond || took > tarballTimeout+4*time.Second) {
						t.Fatalf("dripping tarball answered after %s, want about --upstream-tarball-timeout (%s)", took, tarballTimeout)
					}
				}
				id := url.PathEscape(name + "@1.0.0")
				if st, body, _ := couchDo("GET", "/"+r.Prefix+"-tarballs/"+id, nil, true); st != 404 {
					t.Fatalf("after upstream fault %s the tarball cache has %s: status %d %s", kind, id, st, body)
				}
				up.clearFault(tarballPath(name, "1.0.0"))
				res := r.do("GET", tarballURL(name, "1.0.0"), "", nil)
				if res.Status != 200 || !bytes.Equal(res.Body, up.tarballOf(name, "1.0.0")) {
					t.Fatalf("after the upstream recovered: status %d, %d bytes (upstream has %d)", res.Status, len(res.Body), len(up.tarballOf(name, "1.0.0")))
				}
				if st, body, _ := couchDo("GET", "/"+r.Prefix+"-tarballs/"+id, nil, true); st != 200 {
					t.Fatalf("after recovery the tarball is not cached: status %d %s", st, body)
				}
			})
		}
		t.Run("drip-does-not-block", func(t *testing.T) {
			t.Parallel()
			for _, n := range []string{"quick", "slow"} {
				if v, st := latestOf(r, n); v != "1.0.0" {
					t.Fatalf("%s: latest %q, status %d", n, v, st)
				}
			}
			up.setFault(tarballPath("slow", "1.0.0"), faultDrip, -1, 0)
			slowDone := make(chan httpResult, 1)
			go func() {
				res, err := r.tryDo("GET", tarballURL("slow", "1.0.0"), "", nil, 20*time.Second)
				if err != nil {
					res = httpResult{Status: -1, Body: []byte(err.Error())}
				}
				slowDone <- res
			}()
			eventually(t, 5*time.Second, "the dripping download started", func() (bool, string) {
				return len(up.requests(tarballPath("slow", "1.0.0"))) > 0, "no request yet"
			})
			start := time.Now()
			res := r.do("GET", tarballURL("quick", "1.0.0"), "", nil)
			took := time.Since(start)
			if res.Status != 200 || !bytes.Equal(res.Body, up.tarballOf("quick", "1.0.0")) {
				t.Fatalf("a tarball fetched while another drips: %s", res)
			}
			select {
			case slow := <-slowDone:
				t.Fatalf("the dripping download ended (%s) before the other one (%s): no proof it did not block", slow, took)
			default:
			}
			t.Logf("a tarball pulled through in %s while another dripped", took.Round(time.Millisecond))
			// The dripping GET started the download: it is cut at the
			// tarball timeout (-1: a transport error), or answers 503 when
			// the upstream had sent nothing yet.
			if slow := <-slowDone; slow.Status != 503 && slow.Status != -1 {
				t.Fatalf("dripping tarball: %s, want 503 or a cut response", slow)
			}
		})
	})

	// Nothing unverified ever reached the cache: no staging leftovers (a
	// broken upload's partial document is removed within seconds), and only
	// the tarballs fetched after recovery are there.
	var ids []string
	eventually(t, 10*time.Second, "no staging documents left", func() (bool, string) {
		ids = cachedTarballs(t, r)
		for _, id := range ids {
			if strings.HasPrefix(id, "staging:") {
				return false, fmt.Sprint(ids)
			}
		}
		return true, ""
	})
	want := map[string]bool{"quick@1.0.0": true}
	for _, k := range kinds {
		want["tf-"+string(k)+"@1.0.0"] = true
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "_design/") {
			continue
		}
		if !want[id] {
			t.Errorf("unexpected document in the tarball cache: %q", id)
		}
		delete(want, id)
	}
	if len(want) > 0 {
		t.Errorf("missing from the tarball cache: %v (has %v)", want, ids)
	}
	st := mirrorStatus(t, r)
	if n := num(st["tarball_cache"].(map[string]any)["integrity_failures"]); n != 4 {
		t.Errorf("integrity failures = %v, want 4 (the wrong-content answers to two GETs and two HEADs; truncated downloads are not integrity failures)", n)
	}
}

// TestSlowClientsSlowloris: 200 connections sending their headers a byte a
// second do not keep a normal request from being answered at once, and the
// server drops them after its ReadHeaderTimeout (10 s).
func TestSlowClientsSlowloris(t *testing.T) {
	t.Parallel()
	const conns = 200
	const headerTimeout = 10 * time.Second
	r := startRegistry(t, registryOpts{})
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	defer halt()

	closed := make(chan time.Duration, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		wg.Add(2)
		go func() { // reader: notes when the server hangs up
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(headerTimeout + 15*time.Second))
			_, _ = io.Copy(io.Discard, c)
			closed <- time.Since(start)
		}()
		go func() { // writer: a request that never ends, one byte a second
			defer wg.Done()
			defer c.Close()
			msg := fmt.Sprintf("GET /-/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: ", i) + strings.Repeat("a", 100)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for j := 0; ; j++ {
				if _, err := c.Write([]byte{msg[j%len(msg)]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(func() { halt(); wg.Wait() })

	// While they are all open, normal requests are answered quickly.
	for i := range 5 {
		// The scenario: five pings a second apart while the slow
		// connections stay open, not a wait for anything.
		time.Sleep(time.Second)
		t0 := time.Now()
		res, err := r.tryDo("GET", "/-/ping", "", nil, 5*time.Second)
		took := time.Since(t0)
		if err != nil || res.Status != 200 {
			t.Fatalf("GET /-/ping #%d with %d slow connections open: %v %s", i, conns, err, res)
		}
		if took > time.Second {
			t.Fatalf("GET /-/ping #%d with %d slow connections open took %s", i, conns, took)
		}
		if i == 0 {
			t.Logf("GET /-/ping with %d slow connections open: %s", conns, took.Round(time.Millisecond))
		}
	}
	if len(closed) > 0 {
		t.Fatalf("%d slow connections were closed before the header timeout", len(closed))
	}

	// The server drops every slow connection at its header timeout.
	deadline := time.After(headerTimeout + 10*time.Second)
	var last time.Duration
	for n := 0; n < conns; n++ {
		select {
		case d := <-closed:
			last = d
			if d < headerTimeout-time.Second {
				t.Fatalf("a slow connection was closed after %s, before the header timeout", d)
			}
		case <-deadline:
			t.Fatalf("only %d of %d slow connections were closed by the server within %s", n, conns, headerTimeout+10*time.Second)
		}
	}
	t.Logf("the server closed all %d slow connections; the last after %s", conns, last.Round(time.Millisecond))
	halt()
}

// TestSlowClientsUpstreamConcurrencyLimit: with --upstream-max-concurrent 3
// the upstream never sees more than 3 packument or tarball requests at
// once, however many clients ask; the others wait and then succeed.
func TestSlowClientsUpstreamConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 12
	up := newFakeUpstream(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cc-%02d", i)
		up.publish(names[i], "1.0.0", nil)
		up.setLatency(pkgPath(names[i]), 300*time.Millisecond)
		up.setLatency(tarballPath(names[i], "1.0.0"), 300*time.Millisecond)
	}
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand", "--upstream-max-concurrent", fmt.Sprint(limit))})

	burst := func(what string, path func(string) string, check func(name string, res httpResult) bool) {
		up.resetPeak()
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := r.tryDo("GET", path(name), "", nil, 30*time.Second)
				if err != nil || !check(name, res) {
					errs <- fmt.Sprintf("%s %s: %v %s", what, name, err, res)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		peak := up.peakInflight()
		t.Logf("%d concurrent %s requests: at most %d upstream requests at once", n, what, peak)
		if peak > limit {
			t.Fatalf("the upstream saw %d %s requests at once, more than --upstream-max-concurrent %d", peak, what, limit)
		}
		if peak < 2 {
			t.Fatalf("the upstream saw at most %d %s request at once: the test did not load it", peak, what)
		}
	}
	burst("packument", func(name string) string { return "/" + name }, func(_ string, res httpResult) bool {
		return res.Status == 200
	})
	burst("tarball", func(name string) string { return tarballURL(name, "1.0.0") }, func(name string, res httpResult) bool {
		return res.Status == 200 && bytes.Equal(res.Body, up.tarballOf(name, "1.0.0"))
	})
}

// TestShutdownGraceful: on SIGTERM an in-flight request (a tarball pulled
// through from a slow upstream) completes with 200, the process exits 0,
// and the follower lease is released at once: the standby instance takes
// over well within the 15 s lease TTL.
func TestShutdownGraceful(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("sd-slow", "1.0.0", nil)
	prefix := newPrefix()
	t.Cleanup(func() { // registered first: runs after both instances stopped
		if !suite.ownCouch {
			dropDatabases(t, prefix)
			dropUsers(t, prefix)
		}
	})
	// The holder's name is for admins (instance names are host names by default).
	admins := []string{"--admins", "sdroot-" + prefix}
	a := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", append(admins, "--instance-id", "inst-a")...)})
	_, admin := rawAddUser(t, a, "sdroot")
	eventually(t, 15*time.Second, "inst-a follows", func() (bool, string) {
		st := mirrorStatusAs(t, a, admin)
		return st["follower_holder"] == "inst-a" && st["state"] == "following", fmt.Sprint(st)
	})
	b := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", append(admins, "--instance-id", "inst-b")...)})
	if st := mirrorStatusAs(t, b, admin); st["follower_holder"] != "inst-a" {
		t.Fatalf("the standby sees holder %v, want inst-a", st["follower_holder"])
	}

	const slowness = 3 * time.Second
	tp := tarballPath("sd-slow", "1.0.0")
	up.setLatency(tp, slowness)
	done := make(chan httpResult, 1)
	go func() {
		res, err := a.tryDo("GET", tarballURL("sd-slow", "1.0.0"), "", nil, 30*time.Second)
		if err != nil {
			res = httpResult{Status: -1, Body: []byte(err.Error())}
		}
		done <- res
	}()
	eventually(t, 10*time.Second, "the slow upstream download started", func() (bool, string) {
		return len(up.requests(tp)) > 0, "no upstream request yet"
	})
	a.killed.Store(true) // it is meant to exit
	sigAt := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	res := <-done
	if res.Status != 200 || !bytes.Equal(res.Body, up.tarballOf("sd-slow", "1.0.0")) {
		t.Fatalf("the in-flight request during shutdown: %s, want 200 with the tarball", res)
	}
	t.Logf("the in-flight request completed %s after SIGTERM", time.Since(sigAt).Round(time.Millisecond))
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("couchnpm did not exit within 20 s of SIGTERM")
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("couchnpm exited with %d after SIGTERM, want 0", code)
	}
	if elapsed := time.Since(sigAt); elapsed < slowness-500*time.Millisecond {
		t.Fatalf("couchnpm exited %s after SIGTERM, before its in-flight request could finish", elapsed)
	}

	// The lease was given up, not left to expire.
	var lease struct {
		Holder  string    `json:"holder"`
		Expires time.Time `json:"expires"`
	}
	body := mustCouch(t, "GET", "/"+prefix+"-system/lease:follower", nil, 200)
	if err := json.Unmarshal(body, &lease); err != nil {
		t.Fatal(err)
	}
	if lease.Holder == "inst-a" && lease.Expires.After(time.Now()) {
		t.Fatalf("after a graceful shutdown the lease is still held by inst-a until %s", lease.Expires)
	}
	eventually(t, 8*time.Second, "inst-b takes over", func() (bool, string) {
		st := mirrorStatusAs(t, b, admin)
		return st["follower_holder"] == "inst-b", fmt.Sprint(st["follower_holder"])
	})
	t.Logf("inst-b holds the lease %s after inst-a's SIGTERM (lease TTL 15 s)", time.Since(sigAt).Round(time.Millisecond))
	up.publish("sd-after", "1.0.0", nil)
	eventually(t, 15*time.Second, "inst-b follows", func() (bool, string) {
		st := mirrorStatus(t, b)
		return st["state"] == "following" && num(st["packuments_written"]) >= 2, fmt.Sprint(st)
	})
}
