// Command pullthrough measures couchnpm's on-demand mirror against going
// direct: the time of an npm install straight from an upstream, and
// through couchnpm cold (nothing mirrored) and warm (everything mirrored;
// npm's cache empty each time). The upstream is a local fake
// (bench/upstream) that answers every request after a delay, like a far
// registry; with -real-upstream the same is timed against a real registry
// (its URL is given on the command line, never written in the project).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/couchnpm/couchnpm/bench/benchkit"
	"github.com/couchnpm/couchnpm/bench/upstream"
)

var (
	common       = benchkit.RegisterFlags()
	flagLatency  = flag.Duration("latency", 30*time.Millisecond, "the fake upstream's delay before each answer")
	flagPackages = flag.Int("packages", 200, "packages in the fake upstream")
	flagRoots    = flag.Int("roots", 8, "the app's direct dependencies (the fake's highest-numbered packages)")
	flagRuns     = flag.Int("runs", 2, "runs of each install (the median is reported)")
	flagReal     = flag.String("real-upstream", "", "also time an install against this registry URL (empty: skip)")
	flagRealDeps = flag.String("real-deps", "express,semver,debug,commander,@babel/code-frame", "the app's dependencies for -real-upstream")
	flagOut      = flag.String("out", "", "append the report to this file too")
	flagWork     = flag.String("work", "", "scratch folder (default: a temporary one)")
)

func main() {
	flag.Parse()
	common.Check("pullthrough bench")
	work := *flagWork
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "pullthrough-"); err != nil {
			fail(err)
		}
		defer os.RemoveAll(work)
	}
	var report strings.Builder
	out := io.MultiWriter(os.Stdout, &report)

	up := upstream.New(upstream.Config{Packages: *flagPackages, Big: -1, Seed: 11, Latency: *flagLatency, Deps: 3, RealTarballs: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	upURL := "http://" + ln.Addr().String()
	up.Bind(upURL)
	go func() { _ = http.Serve(ln, up) }()
	names := up.Names()
	deps := map[string]string{}
	for _, n := range names[len(names)-*flagRoots:] {
		deps[n] = "*"
	}
	fmt.Fprintf(out, "\n### Pull-through install on %s (%s)\n\n", common.Label, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(out, "Fake upstream: %d packages, %s before every answer; the app has %d direct dependencies. npm's cache is empty for every install (median of %d runs; cold runs each on a fresh mirror).\n\n",
		len(names), *flagLatency, *flagRoots, *flagRuns)
	fmt.Fprintf(out, "| install | packages | time | ÷ direct |\n|---|---:|---:|---:|\n")
	measure(out, work, "fake", upURL, deps)

	if *flagReal != "" {
		deps := map[string]string{}
		for _, d := range strings.Split(*flagRealDeps, ",") {
			deps[strings.TrimSpace(d)] = "*"
		}
		fmt.Fprintf(out, "\nThe real upstream (its URL from the environment, never written in the project), app: %s; the same runs and medians as above. "+
			"These installs cross the internet: network variance applies (a run minutes later can differ by seconds), and the upstream's own caches warm up between runs.\n\n", *flagRealDeps)
		fmt.Fprintf(out, "| install | packages | time | ÷ direct |\n|---|---:|---:|---:|\n")
		measure(out, work, "real", *flagReal, deps)
	}
	if *flagOut != "" {
		f, err := os.OpenFile(*flagOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fail(err)
		}
		_, _ = f.WriteString(report.String())
		_ = f.Close()
	}
}

// measure times direct, cold and warm installs of deps against upURL.
func measure(out io.Writer, work, label, upURL string, deps map[string]string) {
	var direct, cold, warm []time.Duration
	count := 0
	for run := range *flagRuns {
		d, n, err := install(work, fmt.Sprintf("%s-direct-%d", label, run), upURL, deps)
		if err != nil {
			fail(err)
		}
		direct, count = append(direct, d), n

		c := &benchkit.Couchnpm{Bin: common.Bin, Store: common.Store, Prefix: fmt.Sprintf("bench-pt-%d", rand.IntN(1e6))}
		err = c.Start([]string{"--mirror", "on-demand", "--upstream", upURL, "--mirror-max-age", "1h"})
		if err == nil {
			err = c.WaitReady(30 * time.Second)
		}
		if err != nil {
			c.Stop()
			fail(err)
		}
		d, _, err = install(work, fmt.Sprintf("%s-cold-%d", label, run), c.URL(), deps)
		if err != nil {
			c.Stop()
			c.Drop()
			fail(err)
		}
		cold = append(cold, d)
		time.Sleep(2 * time.Second) // the background writes land
		d, _, err = install(work, fmt.Sprintf("%s-warm-%d", label, run), c.URL(), deps)
		c.Stop()
		c.Drop()
		if err != nil {
			fail(err)
		}
		warm = append(warm, d)
	}
	md, mc, mw := median(direct), median(cold), median(warm)
	fmt.Fprintf(out, "| direct from the upstream | %d | %.2f s | 1.00× |\n", count, md.Seconds())
	fmt.Fprintf(out, "| through couchnpm, cold mirror | %d | %.2f s | **%.2f×** |\n", count, mc.Seconds(), mc.Seconds()/md.Seconds())
	fmt.Fprintf(out, "| through couchnpm, warm mirror | %d | %.2f s | **%.2f×** |\n", count, mw.Seconds(), mw.Seconds()/md.Seconds())
	fmt.Fprintf(out, "| (all runs: direct %v, cold %v, warm %v) | | | |\n", round(direct), round(cold), round(warm))
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// median is the middle run, or the mean of the two middle ones for an
// even number of runs (with two runs, the slower one alone would be the
// worst case, not the median).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// install runs npm install of deps in a new project with an empty cache
// and returns its time and the number of packages installed.
func install(work, name, registry string, deps map[string]string) (time.Duration, int, error) {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	pj, _ := json.Marshal(map[string]any{"name": "bench-app", "version": "1.0.0", "private": true, "dependencies": deps})
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pj, 0o644); err != nil {
		return 0, 0, err
	}
	npmrc := "registry=" + registry + "/\naudit=false\nfund=false\nupdate-notifier=false\n"
	if err := os.WriteFile(filepath.Join(dir, ".npmrc"), []byte(npmrc), 0o644); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--cache", filepath.Join(dir, ".npm-cache"), "--loglevel", "error")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_userconfig="+filepath.Join(dir, ".npmrc"))
	start := time.Now()
	b, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("npm install (%s): %v\n%s", name, err, b)
	}
	var lock struct {
		Packages map[string]json.RawMessage `json:"packages"`
	}
	lb, _ := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	_ = json.Unmarshal(lb, &lock)
	fmt.Fprintf(os.Stderr, "pullthrough: %s: %s, %d packages\n", name, took.Round(10*time.Millisecond), len(lock.Packages)-1)
	return took, len(lock.Packages) - 1, nil
}

func fail(err error) { benchkit.Fail("pullthrough bench", err) }
