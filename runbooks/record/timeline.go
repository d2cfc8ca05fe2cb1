package record

import (
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// layerColours are the timeline's bar colours by layer, in restore order.
var layerColours = map[string]string{
	"network": "#4e79a7", "identity": "#59a14f", "secrets": "#b07aa1", "storage": "#f28e2b",
	"workloads": "#76b7b2", "edge": "#edc948", runbooks.MembersLayer: "#9c755f", runbooks.TeardownLayer: "#bab0ac",
}

// Timeline geometry, in SVG user units.
const (
	tlWidth  = 960
	tlLabelW = 250 // the step names' column
	tlRow    = 22
	tlTop    = 64
	tlPlotW  = tlWidth - tlLabelW - 30
)

// TimelineSVG draws the run for an auditor at a glance: one bar per step
// from its start to its end, coloured by layer, against the RTO deadline
// (a red line once breached) and the run's end; a wait for approval is a
// hatched stretch before its step's bar, each decision a diamond, a failed
// step red, a skipped one an outline. Time runs from the declared disaster.
// The evidence store writes it beside the JSON and Markdown and signs its
// digest with the record.
func (e Evidence) TimelineSVG() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	t0 := e.DeclaredAt
	span := max(e.RTOTarget.D(), e.EndedAt.Sub(t0), time.Minute)
	span += span / 20
	x := func(t time.Time) float64 {
		d := t.Sub(t0)
		if d < 0 {
			d = 0
		}
		return tlLabelW + float64(tlPlotW)*float64(d)/float64(span)
	}
	height := tlTop + tlRow*len(e.Steps) + 56
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" role="img" aria-labelledby="title">`+"\n", tlWidth, height, tlWidth, height)
	title := fmt.Sprintf("%s v%d — %s — %s", e.Runbook.Name, e.Runbook.Version, e.Mode, e.Outcome)
	w(`<title id="title">Timeline of %s</title>`+"\n", esc(title))
	w(`<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#e8a33d"/></pattern></defs>` + "\n")
	w(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	w(`<text x="10" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", esc(title))
	rto := fmt.Sprintf("RTO %s · actual %s", e.RTOTarget, e.RTOActual.Readable())
	if e.RTOBreached {
		rto += " · BREACHED"
	}
	w(`<text x="10" y="42" fill="%s">%s · declared %s</text>`+"\n", map[bool]string{true: "#c0392b", false: "#333"}[e.RTOBreached], esc(rto), t0.UTC().Format("2006-01-02 15:04:05 UTC"))
	// Time axis: about six ticks at round steps.
	axisY := tlTop + tlRow*len(e.Steps) + 8
	tick := niceTick(span / 6)
	for d := time.Duration(0); d <= span; d += tick {
		tx := tlLabelW + float64(tlPlotW)*float64(d)/float64(span)
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", tx, tlTop-6, tx, axisY)
		w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#666">T+%s</text>`+"\n", tx, axisY+14, clock(d))
	}
	for i, s := range e.Steps {
		y := tlTop + tlRow*i
		w(`<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", tlLabelW-8, y+14, esc(s.Layer+" / "+s.ID))
		colour := layerColours[s.Layer]
		if colour == "" {
			colour = "#888"
		}
		if s.Started == nil {
			w(`<text x="%d" y="%d" fill="#888">%s</text>`+"\n", tlLabelW+4, y+14, esc(stepStateText(e.Mode, s.State)))
			continue
		}
		if s.ApprovalWait > 0 {
			from := s.Started.Add(-s.ApprovalWait.D())
			w(`<rect x="%.1f" y="%d" width="%.1f" height="14" fill="url(#wait)" stroke="#e8a33d"><title>%s waited %s for approval</title></rect>`+"\n",
				x(from), y+3, x(*s.Started)-x(from), esc(s.ID), s.ApprovalWait.Readable())
		}
		end := *s.Started
		if s.Ended != nil {
			end = *s.Ended
		}
		width := max(x(end)-x(*s.Started), 2)
		fill, stroke := colour, colour
		switch s.State {
		case "failed", "rejected", "blocked":
			fill, stroke = "#c0392b", "#922b21"
		case "skipped", "not-run", "aborted":
			fill = "none"
		}
		w(`<rect x="%.1f" y="%d" width="%.1f" height="14" fill="%s" stroke="%s"><title>%s: %s, %s</title></rect>`+"\n",
			x(*s.Started), y+3, width, fill, stroke, esc(s.ID), esc(stepStateText(e.Mode, s.State)), s.Duration.Readable())
		for _, a := range s.Approvals {
			ax := x(a.At)
			w(`<path d="M%.1f %d l5 5 l-5 5 l-5 -5 z" fill="#333"><title>%s by %s at %s</title></path>`+"\n", ax, y, esc(a.Decision), esc(a.By), a.At.UTC().Format("15:04:05"))
		}
		w(`<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x(*s.Started)+width+4, y+14, esc(stepStateText(e.Mode, s.State)))
	}
	deadline := x(t0.Add(e.RTOTarget.D()))
	lineColour := "#333"
	if e.RTOBreached {
		lineColour = "#c0392b"
	}
	w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", deadline, tlTop-12, deadline, axisY, lineColour)
	anchor := "middle" // the label stays inside the picture near its right edge
	if deadline > tlWidth-90 {
		anchor = "end"
	}
	w(`<text x="%.1f" y="%d" text-anchor="%s" fill="%s">RTO deadline %s</text>`+"\n", deadline, tlTop-16, anchor, lineColour, t0.Add(e.RTOTarget.D()).UTC().Format("15:04:05"))
	if !e.EndedAt.IsZero() {
		end := x(e.EndedAt)
		w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#2c7a3f" stroke-width="2"/>`+"\n", end, tlTop-6, end, axisY)
		w(`<text x="%.1f" y="%d" text-anchor="middle" fill="#2c7a3f">ended T+%s</text>`+"\n", end, axisY+30, clock(e.EndedAt.Sub(t0)))
	}
	w("</svg>\n")
	return b.String()
}

// stepStateText is a step's state as evidence shows it: a tabletop step
// that "succeeded" was acknowledged on paper, nothing ran.
func stepStateText(mode, state string) string {
	if mode == "tabletop" && state == "succeeded" {
		return "acknowledged (nothing executed)"
	}
	return state
}

// niceTick rounds d up to a tick a reader counts in.
func niceTick(d time.Duration) time.Duration {
	for _, t := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
		15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if d <= t {
			return t
		}
	}
	return 24 * time.Hour
}

func esc(s string) string { return html.EscapeString(s) }
