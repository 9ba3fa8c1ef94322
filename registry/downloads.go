package registry

import (
	"strings"
	"time"
)

// MaxDownloadDays bounds a download-count range (npm's API allows about
// 18 months; one year keeps a query to a bounded number of reads).
const MaxDownloadDays = 366

// ParsePeriod reads the period of the download-count API as npm's
// download-counts API names them: last-day (today, UTC: counts show within
// seconds, so the current day is the last one), last-week and last-month
// (the 7 and 30 days ending today), a day (YYYY-MM-DD) or a range
// (YYYY-MM-DD:YYYY-MM-DD, both ends included). It returns the first and
// last day at midnight UTC.
func ParsePeriod(period string, now time.Time) (from, to time.Time, err error) {
	today := now.UTC().Truncate(24 * time.Hour)
	switch period {
	case "last-day":
		return today, today, nil
	case "last-week":
		return today.AddDate(0, 0, -6), today, nil
	case "last-month":
		return today.AddDate(0, 0, -29), today, nil
	}
	a, b, isRange := strings.Cut(period, ":")
	if !isRange {
		b = a
	}
	from, err1 := time.Parse(time.DateOnly, a)
	to, err2 := time.Parse(time.DateOnly, b)
	if err1 != nil || err2 != nil {
		return time.Time{}, time.Time{}, E(KindInvalid, "invalid period %q: use last-day, last-week, last-month, YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD", period)
	}
	if to.Before(from) {
		return time.Time{}, time.Time{}, E(KindInvalid, "invalid period %q: the end is before the start", period)
	}
	if to.Sub(from) >= MaxDownloadDays*24*time.Hour {
		return time.Time{}, time.Time{}, E(KindInvalid, "invalid period %q: at most %d days", period, MaxDownloadDays)
	}
	return from, to, nil
}

// TarballVersion reads the version from a tarball's file name
// ("<name>-<version>.tgz"); "" when the name is not of that form.
func TarballVersion(name, file string) string {
	_, base, _ := SplitName(name)
	v, ok := strings.CutPrefix(file, base+"-")
	if !ok {
		return ""
	}
	v, ok = strings.CutSuffix(v, ".tgz")
	if !ok || v == "" {
		return ""
	}
	return v
}
