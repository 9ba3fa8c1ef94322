package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// histogram is couchnpm's request-duration histogram summed over its
// routes: upper bound in seconds → requests at most that long.
type histogram map[float64]float64

const requestMetric = "couchnpm_http_request_duration_seconds_bucket{"

// requestHistogram reads the histogram from couchnpm's /metrics (served
// beside /debug/pprof).
func requestHistogram(base string) (histogram, error) {
	resp, err := client.Get(strings.TrimRight(base, "/") + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	return parseHistogram(resp.Body)
}

func parseHistogram(r io.Reader) (histogram, error) {
	h := histogram{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, requestMetric) {
			continue
		}
		labels, value, ok := strings.Cut(line[len(requestMetric):], "} ")
		if !ok {
			continue
		}
		i := strings.Index(labels, `le="`)
		if i < 0 {
			continue
		}
		le := labels[i+4:]
		le = le[:strings.IndexByte(le, '"')]
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		h[bound] += n
	}
	return h, sc.Err()
}

// quantile is the upper bound of the bucket holding quantile q of the
// requests counted between before and after; ok false without requests.
func quantile(before, after histogram, q float64) (bound float64, ok bool) {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, false
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, false
	}
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b, true
		}
	}
	return bounds[len(bounds)-1], true
}

// ownTimeNote compares couchnpm's own p99 (handler chain in to answer
// out, as its histogram has it) with the p99 wrk saw: a wide gap is time
// spent outside couchnpm, waiting for a CPU on a loaded machine.
func ownTimeNote(scenario, store string, before, after histogram, wrkP99 time.Duration) string {
	b, ok := quantile(before, after, 0.99)
	if !ok {
		return ""
	}
	bound := "over the largest bucket"
	if b < 1e300 {
		bound = "≤ " + dur(time.Duration(b*float64(time.Second)))
	}
	return fmt.Sprintf("%s on %s: couchnpm's own request time (its /metrics histogram, handler chain in to answer out) p99 %s; wrk's p99 %s includes the client and waiting for a CPU", scenario, store, bound, dur(wrkP99))
}
