package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every n rounds put every server once in every place; for 3 servers the
// 6 orders are the 6 permutations.
func TestCIOrders(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		orders := ciOrders(n)
		if len(orders) != 2*n {
			t.Fatalf("n=%d: %d orders", n, len(orders))
		}
		for half := range 2 {
			for place := range n {
				var seen []int
				for _, o := range orders[half*n : (half+1)*n] {
					seen = append(seen, o[place])
				}
				slices.Sort(seen)
				for k := range n {
					if seen[k] != k {
						t.Fatalf("n=%d, rounds %d-%d: place %d holds %v", n, half*n+1, (half+1)*n, place, seen)
					}
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, o := range ciOrders(3) {
		seen[sprint(o)] = true
	}
	if len(seen) != 6 {
		t.Fatalf("3 servers: %d distinct orders, want 6: %v", len(seen), seen)
	}
}

func sprint(o []int) string {
	var b strings.Builder
	for _, x := range o {
		b.WriteByte(byte('0' + x))
	}
	return b.String()
}

func TestMedianCI(t *testing.T) {
	s := time.Second
	runs := []ciRun{{Target: "a", Took: 5 * s}, {Target: "b", Took: 9 * s}, {Target: "a", Took: 1 * s}, {Target: "a", Took: 3 * s}, {Target: "b", Took: 7 * s}}
	tests := []struct {
		target string
		want   time.Duration
	}{{"a", 3 * s}, {"b", 8 * s}, {"c", 0}}
	for _, tc := range tests {
		if got := medianCI(runs, tc.target); got != tc.want {
			t.Errorf("median of %s: %v, want %v", tc.target, got, tc.want)
		}
	}
}

// The apps must install the same packages; only the host of the resolved
// URLs may differ, and it must be the app's own server.
func TestSameLocks(t *testing.T) {
	lock := func(resolved, integrity string) string {
		return `{"packages":{"":{"name":"bench-app"},"node_modules/p":{"version":"1.0.0","resolved":"` + resolved + `","integrity":"` + integrity + `"}}}`
	}
	tests := []struct {
		name    string
		a, b    string
		wantErr string
	}{
		{"hosts differ only", lock("http://a/p/-/p-1.0.0.tgz", "sha512-x"), lock("http://b/p/-/p-1.0.0.tgz", "sha512-x"), ""},
		{"no resolved URLs", lock("", "sha512-x"), lock("", "sha512-x"), ""},
		{"other integrity", lock("http://a/p/-/p-1.0.0.tgz", "sha512-x"), lock("http://b/p/-/p-1.0.0.tgz", "sha512-y"), "lockfile entry node_modules/p"},
		{"resolved at another server", lock("http://a/p/-/p-1.0.0.tgz", "sha512-x"), lock("http://a/p/-/p-1.0.0.tgz", "sha512-x"), "not to the server under test"},
		{"other path", lock("http://a/p/-/p-1.0.0.tgz", "sha512-x"), lock("http://b/q/-/p-1.0.0.tgz", "sha512-x"), "lockfile entry node_modules/p"},
		{"a package more", lock("", "sha512-x"), `{"packages":{"node_modules/p":{"version":"1.0.0","integrity":"sha512-x"},"node_modules/q":{"version":"1.0.0"}}}`, "2 packages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var apps []*ciApp
			for i, l := range []string{tc.a, tc.b} {
				label := string(rune('a' + i))
				a := &ciApp{t: &target{Label: label, Base: "http://" + label}, dir: filepath.Join(dir, label)}
				if err := os.MkdirAll(a.dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(a.dir, "package-lock.json"), []byte(l), 0o644); err != nil {
					t.Fatal(err)
				}
				apps = append(apps, a)
			}
			err := sameLocks(apps)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCITable(t *testing.T) {
	s := time.Second
	r := &results{Resolved: true, CILoad: []string{"1.00", "2.00"}, CI: []ciRun{
		{Target: "couchnpm", Round: 1, Took: 4 * s, PeakRSS: 100 << 20, NPMCPU: 3 * s, ServerCPU: s / 2}, {Target: "verdaccio", Round: 1, Took: 8 * s}, {Target: "floor", Round: 1, Took: 5 * s},
		{Target: "floor", Round: 2, Took: 3 * s}, {Target: "couchnpm", Round: 2, Took: 2 * s, NPMCPU: 2 * s, ServerCPU: s / 4}, {Target: "verdaccio", Round: 2, Took: 4 * s},
	}}
	out := ciTable(r)
	for _, want := range []string{
		"2 run(s) against each server",
		"with resolved URLs",
		"load average 1.00 before, 2.00 after",
		"| couchnpm | 4000.0 ms, 2000.0 ms | 3000.0 ms | 0.50× | 0.75× | 2500.0 ms | 375.0 ms | 100 MB |",
		"| floor | 5000.0 ms, 3000.0 ms | 4000.0 ms | 0.67× | 1.00× | n/a | n/a | n/a |",
		"couchnpm ÷ Verdaccio time (medians): **0.50×**; the floor ÷ Verdaccio: 0.67×",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

// cpuOf must agree with the kernel's own account of this process's CPU
// (getrusage), however loaded the machine is.
func TestCPUOf(t *testing.T) {
	if got := cpuOf(0); got != 0 {
		t.Fatalf("cpuOf(0) = %v", got)
	}
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, ruBefore := cpuOf(os.Getpid()), rusage()
	x := 0
	for begin := time.Now(); rusage()-ruBefore < 200*time.Millisecond && time.Since(begin) < 20*time.Second; {
		x++
	}
	got, want := cpuOf(os.Getpid())-before, rusage()-ruBefore
	if got < want/2 || got > 2*want {
		t.Fatalf("cpuOf counted %v of CPU, getrusage %v (%d loops)", got, want, x)
	}
}
