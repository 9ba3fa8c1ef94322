package registry

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	for _, tc := range []struct {
		name, in string
		from, to string
		wantErr  bool
	}{
		{name: "last-day is today", in: "last-day", from: "2026-12-02", to: "2026-12-02"},
		{name: "last-week is 7 days", in: "last-week", from: "2026-11-26", to: "2026-12-02"},
		{name: "last-month is 30 days", in: "last-month", from: "2026-11-03", to: "2026-12-02"},
		{name: "one day", in: "2026-01-15", from: "2026-01-15", to: "2026-01-15"},
		{name: "range", in: "2026-01-01:2026-01-31", from: "2026-01-01", to: "2026-01-31"},
		{name: "reversed range is refused", in: "2026-02-01:2026-01-01", wantErr: true},
		{name: "too long a range is refused", in: "2024-01-01:2026-01-01", wantErr: true},
		{name: "a year is fine", in: "2025-01-01:2025-12-31", from: "2025-01-01", to: "2025-12-31"},
		{name: "garbage", in: "yesterday", wantErr: true},
		{name: "bad date", in: "2026-13-01", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "half range", in: "2026-01-01:", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to, err := ParsePeriod(tc.in, now)
			if tc.wantErr {
				if err == nil || KindOf(err) != KindInvalid {
					t.Fatalf("ParsePeriod(%q) = %v, %v, %v; want an invalid-request error", tc.in, from, to, err)
				}
				return
			}
			if err != nil || !from.Equal(day(tc.from)) || !to.Equal(day(tc.to)) {
				t.Fatalf("ParsePeriod(%q) = %v, %v, %v; want %s..%s", tc.in, from, to, err, tc.from, tc.to)
			}
		})
	}
}

func TestTarballVersion(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"foo", "foo-1.0.0.tgz", "1.0.0"},
		{"foo", "foo-1.0.0-beta.1.tgz", "1.0.0-beta.1"},
		{"@s/p", "p-2.0.0.tgz", "2.0.0"},
		{"foo", "bar-1.0.0.tgz", ""},
		{"foo", "foo-1.0.0.tar", ""},
		{"foo", "foo-.tgz", ""},
	} {
		if got := TarballVersion(tc.name, tc.file); got != tc.want {
			t.Errorf("TarballVersion(%q, %q) = %q, want %q", tc.name, tc.file, got, tc.want)
		}
	}
}
