package workflows

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// Bounds that keep a long incident's status, evidence and result well under
// Temporal's 2 MB payload limit, however many messages people send.
const (
	// MaxText caps every free text a person sends (comments, reasons,
	// notes); the rest is cut, saying how much.
	MaxText = 1000
	// MaxNotes is the most notes one run keeps; a note beyond it is refused.
	MaxNotes = 500
	// KeptRefusals is how many refused signals a run keeps in full; all of
	// them are counted (Evidence.RefusedSignals).
	KeptRefusals = 5
)

// capText cuts s to MaxText characters, saying how many were cut.
func capText(s string) string { return capTextAt(s, MaxText) }

// capTextAt cuts s to n characters, saying how many were cut.
func capTextAt(s string, n int) string {
	total := utf8.RuneCountInString(s)
	if total <= n {
		return s
	}
	cut := 0
	for i := range s {
		if cut == n {
			return s[:i] + fmt.Sprintf("… [%d more characters not kept]", total-n)
		}
		cut++
	}
	return s
}

// refusals are the refused signals of a run: a count and the last few.
type refusals struct {
	total  int
	notes  []record.NoteRecord
	events []record.EventRecord
}

// add records one refused signal, dropping the oldest kept beyond KeptRefusals.
func (f *refusals) add(note record.NoteRecord, event record.EventRecord) {
	f.total++
	f.notes = append(f.notes, note)
	f.events = append(f.events, event)
	if len(f.notes) > KeptRefusals {
		f.notes = f.notes[1:]
		f.events = f.events[1:]
	}
}

// byTime merges two time-ordered lists into one, a's first on ties.
func byTime[T any](a, b []T, at func(T) time.Time) []T {
	out := make([]T, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if at(b[0]).Before(at(a[0])) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}
