package record

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Comparison sets a past run (then) beside a re-enactment of the same
// runbook text (now): each step's duration, the RTO, and the steps that got
// slower beyond the threshold.
type Comparison struct {
	Then      RunSide           `json:"then"`
	Now       RunSide           `json:"now"`
	SameText  bool              `json:"sameText"` // both ran the same runbook text (hash)
	Threshold float64           `json:"threshold"`
	MinDelta  runbooks.Duration `json:"minDelta"`
	Steps     []StepCompare     `json:"steps"`
	Slower    []string          `json:"slower,omitempty"` // step ids slower beyond the threshold
}

// RunSide is one run of a Comparison.
type RunSide struct {
	WorkflowID string            `json:"workflowId"`
	Mode       string            `json:"mode"`
	Outcome    string            `json:"outcome"`
	Hash       string            `json:"hash"`
	RTOActual  runbooks.Duration `json:"rtoActual"`
	RTOTarget  runbooks.Duration `json:"rtoTarget"`
	Breached   bool              `json:"rtoBreached"`
	Level      string            `json:"level,omitempty"`
}

// StepCompare is one step then and now.
type StepCompare struct {
	ID        string            `json:"id"`
	Layer     string            `json:"layer"`
	ThenState string            `json:"thenState"`
	NowState  string            `json:"nowState"`
	Then      runbooks.Duration `json:"then"`
	Now       runbooks.Duration `json:"now"`
	// Ratio is now/then (0 when then is 0).
	Ratio  float64 `json:"ratio"`
	Slower bool    `json:"slower"`
}

// Compare compares two runs' evidence. A step is slower when it ran both
// times, now took more than threshold × then (e.g. 1.5), and the difference is
// at least minDelta (so millisecond steps do not raise alarms).
func Compare(then, now Evidence, threshold float64, minDelta time.Duration) Comparison {
	side := func(e Evidence) RunSide {
		return RunSide{WorkflowID: e.WorkflowID, Mode: e.Mode, Outcome: e.Outcome, Hash: e.Runbook.Hash,
			RTOActual: e.RTOActual, RTOTarget: e.RTOTarget, Breached: e.RTOBreached, Level: e.Level}
	}
	c := Comparison{Then: side(then), Now: side(now), SameText: then.Runbook.Hash == now.Runbook.Hash,
		Threshold: threshold, MinDelta: runbooks.Duration(minDelta)}
	nowSteps := map[string]StepRecord{}
	for _, s := range now.Steps {
		nowSteps[s.ID] = s
	}
	seen := map[string]bool{}
	add := func(t, n StepRecord, inThen, inNow bool) {
		sc := StepCompare{ID: cmp.Or(t.ID, n.ID), Layer: cmp.Or(t.Layer, n.Layer), ThenState: "absent", NowState: "absent"}
		if inThen {
			sc.ThenState, sc.Then = t.State, t.Duration
		}
		if inNow {
			sc.NowState, sc.Now = n.State, n.Duration
		}
		ranBoth := inThen && inNow && t.Started != nil && n.Started != nil
		if ranBoth && t.Duration > 0 {
			sc.Ratio = float64(n.Duration) / float64(t.Duration)
			sc.Slower = sc.Ratio > threshold && n.Duration-t.Duration >= runbooks.Duration(minDelta)
		}
		if sc.Slower {
			c.Slower = append(c.Slower, sc.ID)
		}
		c.Steps = append(c.Steps, sc)
	}
	for _, t := range then.Steps {
		n, ok := nowSteps[t.ID]
		seen[t.ID] = true
		add(t, n, true, ok)
	}
	for _, n := range now.Steps {
		if !seen[n.ID] {
			add(StepRecord{}, n, false, true)
		}
	}
	return c
}

// Markdown renders the comparison.
func (c Comparison) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Re-enactment of %s\n\n", c.Then.WorkflowID)
	text := "the same runbook text (" + c.Then.Hash + ")"
	if !c.SameText {
		text = fmt.Sprintf("DIFFERENT runbook texts (then %s, now %s)", c.Then.Hash, c.Now.Hash)
	}
	w("Then: %s (%s, %s)  Now: %s (%s, %s) — %s\n\n", c.Then.WorkflowID, c.Then.Mode, c.Then.Outcome, c.Now.WorkflowID, c.Now.Mode, c.Now.Outcome, text)
	w("| | Then | Now |\n|---|---|---|\n")
	w("| RTO (target %s) | %s%s | %s%s |\n", c.Then.RTOTarget, c.Then.RTOActual.Readable(), breachedMark(c.Then.Breached),
		c.Now.RTOActual.Readable(), breachedMark(c.Now.Breached))
	w("| Level | %s | %s |\n\n", runbooks.OrDash(c.Then.Level), runbooks.OrDash(c.Now.Level))
	w("| Layer / step | Then | Now | Now/then | |\n|---|---|---|---|---|\n")
	for _, s := range c.Steps {
		ratio, mark := "—", ""
		if s.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", s.Ratio)
		}
		if s.Slower {
			mark = "**slower**"
		}
		w("| %s/%s | %s | %s | %s | %s |\n", s.Layer, s.ID, sideText(s.ThenState, s.Then), sideText(s.NowState, s.Now), ratio, mark)
	}
	if len(c.Slower) == 0 {
		w("\nNo step got slower than %.2f× (and %s) its earlier duration.\n", c.Threshold, c.MinDelta)
	} else {
		w("\nSlower than %.2f× (and by at least %s): %s\n", c.Threshold, c.MinDelta, strings.Join(c.Slower, ", "))
	}
	return b.String()
}

func sideText(state string, d runbooks.Duration) string {
	if state == "succeeded" {
		return d.Readable()
	}
	if d > 0 {
		return fmt.Sprintf("%s (%s)", d.Readable(), state)
	}
	return state
}

func breachedMark(b bool) string {
	if b {
		return " (breached)"
	}
	return ""
}
