package workflows

import (
	"fmt"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"
)

// versionWaitMarker guards the wait marker: while a step waits for a
// person (an approval, an acknowledgement, an operator after a failure)
// the run holds a timer whose summary is the waiting line. The Temporal
// UI opens a run on its History tab, whose timeline draws pending timers
// with their summaries: the operator sees what the run waits for, and the
// command, on the page the UI shows first (the current details are a tab
// further, under User Metadata). The timer is cancelled when the wait
// ends; when it fires nothing happens.
const versionWaitMarker = "wait-marker"

// markerSummaryBytes bounds a timer's summary as the UI shows it on one line.
const markerSummaryBytes = 200

// waitMarker starts the marker of s's wait and returns what ends it.
func (r *run) waitMarker(ctx workflow.Context, s *step) (end func()) {
	if !r.markers {
		return func() {}
	}
	p, ok := r.pending(s)
	if !ok {
		return func() {}
	}
	// Until the RTO deadline (at least ten minutes): the bar runs to the
	// deadline the wait eats into.
	d := max(r.declaredAt.Add(r.rb().Spec.Objectives.RTO.D()).Sub(workflow.Now(ctx)), 10*time.Minute)
	summary := fmt.Sprintf("WAITING: %s %s — %s", s.spec.ID, waitsFor(p.Kind), p.Command)
	if len(summary) > markerSummaryBytes {
		for len(summary) > markerSummaryBytes-len("…") {
			_, size := utf8.DecodeLastRuneInString(summary)
			summary = summary[:len(summary)-size]
		}
		summary += "…"
	}
	tctx, cancel := workflow.WithCancel(ctx)
	workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: summary})
	return cancel
}

// waitsFor says what a pending kind waits for.
func waitsFor(kind string) string {
	switch kind {
	case "approval":
		return "waits for approval"
	case "acknowledgement":
		return "waits for an acknowledgement"
	}
	return "waits for an operator (retry, skip or abort)"
}
