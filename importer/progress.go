package importer

import (
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
)

// Bar is a one-line progress bar for a terminal, redrawn in place on
// each package.
type Bar struct {
	W           io.Writer
	total, done int
	counts      map[string]int
}

// Start implements Observer.
func (b *Bar) Start(total int) { b.total, b.counts = total, map[string]int{} }

// Done implements Observer.
func (b *Bar) Done(r PackageReport) {
	b.done++
	b.counts[r.Outcome()]++
	const width = 30
	filled := width
	if b.total > 0 {
		filled = width * b.done / b.total
	}
	name := r.Name
	if len(name) > 40 {
		name = name[:39] + "…"
	}
	fmt.Fprintf(b.W, "\r\x1b[K[%s%s] %d/%d  copied %d, skipped %d, refused %d  %s",
		strings.Repeat("#", filled), strings.Repeat(" ", width-filled), b.done, b.total,
		b.counts["copied"], b.counts["skipped"], b.counts["refused"], name)
	if b.done == b.total {
		fmt.Fprintln(b.W)
	}
}

// LogLines logs one line per package (when the output is not a terminal).
type LogLines struct {
	Log   zerolog.Logger
	total int
	done  int
}

// Start implements Observer.
func (l *LogLines) Start(total int) { l.total = total }

// Done implements Observer.
func (l *LogLines) Done(r PackageReport) {
	l.done++
	ev := l.Log.Info()
	if r.Outcome() == "refused" {
		ev = l.Log.Warn()
	}
	ev = ev.Str("pkg", r.Name).Str("outcome", r.Outcome()).Int("copied", len(r.Copied)).
		Int("skipped", len(r.Skipped)).Int("refused", len(r.Refused)).Int("n", l.done).Int("of", l.total)
	if why, ok := r.Refused[""]; ok {
		ev = ev.Str("reason", why)
	}
	ev.Msg("package imported")
}

// Observers runs several observers in turn.
type Observers []Observer

// Start implements Observer.
func (os Observers) Start(total int) {
	for _, o := range os {
		o.Start(total)
	}
}

// Done implements Observer.
func (os Observers) Done(r PackageReport) {
	for _, o := range os {
		o.Done(r)
	}
}
