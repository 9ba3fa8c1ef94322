package main

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		runs []time.Duration
		want time.Duration
	}{
		{"one run", []time.Duration{7 * s}, 7 * s},
		{"two runs: their mean", []time.Duration{14 * s, 10 * s}, 12 * s},
		{"three runs: the middle one", []time.Duration{9 * s, 30 * s, 10 * s}, 10 * s},
		{"four runs: the mean of the middle two", []time.Duration{40 * s, 8 * s, 10 * s, 12 * s}, 11 * s},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.runs...)
			if got := median(tc.runs); got != tc.want {
				t.Fatalf("median(%v) = %v, want %v", in, got, tc.want)
			}
			for i := range in {
				if tc.runs[i] != in[i] {
					t.Fatalf("median reordered its argument: %v", tc.runs)
				}
			}
		})
	}
}
