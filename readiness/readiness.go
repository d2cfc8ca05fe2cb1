// Package readiness scores runbooks against the Recovery Readiness
// Scorecard of seed 004 §29, using only facts lifeboat holds: the runbook
// and its validation, the evidence of past runs, and the age of the latest
// backup. Each row is scored 0–3 with the fact that justifies the score.
package readiness

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// DefaultCriticalRTO: a runbook whose RTO is at most this protects a critical
// system (the runbook format has no criticality field; the RTO says it).
const DefaultCriticalRTO = 4 * time.Hour

// DefaultDrillEvery is the drill cadence assumed when spec.drill.every is not
// set: quarterly.
const DefaultDrillEvery = 90 * 24 * time.Hour

// Rows of the scorecard lifeboat can derive, in the order they print.
const (
	AreaRunbook  = "Runbook"
	AreaDrill    = "Last drill"
	AreaRestore  = "Restore tested"
	AreaEdge     = "DNS/edge failover"
	AreaBackup   = "Backup age vs RPO"
	AreaApproval = "Approvers"
	AreaPrecheck = "Pre-flight checks"
)

// PrecheckFresh is how long the last pre-flight checks count as current.
const PrecheckFresh = 7 * 24 * time.Hour

// Input is what is known about one runbook.
type Input struct {
	Name    string
	File    string
	Runbook *runbooks.Runbook // nil when the file does not parse
	Errors  []string          // validation errors (lifeboat validate)
	Runs    []record.Evidence
	Backup  *Backup // nil when the runbook names no backup schedule
	// Hash is the catalog text's hash: only runs of exactly this text count
	// ("" when unknown: every run counts).
	Hash string
}

// Backup is the latest backup of the runbook's schedule, checked now with
// velero.latestBackup (or the error that check returned).
type Backup struct {
	Schedule string
	Name     string
	Age      time.Duration
	Err      string // the check failed (no backup, no access, …)
}

// Row is one scored line.
type Row struct {
	Area  string `json:"area"`
	Score int    `json:"score"`
	Fact  string `json:"fact"`
}

// System is one runbook's scorecard.
type System struct {
	Runbook  string            `json:"runbook"`
	File     string            `json:"file"`
	RTO      runbooks.Duration `json:"rto"`
	Critical bool              `json:"critical"`
	Rows     []Row             `json:"rows"`
}

// Below returns the rows scored under min.
func (s System) Below(min int) []Row {
	var out []Row
	for _, r := range s.Rows {
		if r.Score < min {
			out = append(out, r)
		}
	}
	return out
}

// Score scores one runbook at time now.
func Score(in Input, now time.Time, criticalRTO time.Duration) System {
	sys := System{Runbook: in.Name, File: in.File}
	if in.Runbook == nil {
		sys.Rows = []Row{{AreaRunbook, 1, "draft: the file does not parse: " + first(in.Errors)}}
		return sys
	}
	rb := in.Runbook
	sys.RTO = rb.Spec.Objectives.RTO
	sys.Critical = rb.Spec.Objectives.RTO > 0 && rb.Spec.Objectives.RTO.D() <= criticalRTO
	k := known{in: in, now: now}
	k.in.Runs, k.older = byText(in.Runs, in.Hash)
	sys.Rows = []Row{k.runbookRow(), k.drillRow(), k.restoreRow(), k.edgeRow(), k.backupRow(), k.approverRow(), k.precheckRow()}
	return sys
}

// known answers questions about one runbook's facts.
type known struct {
	in  Input // in.Runs: the runs of the current text only
	now time.Time
	// older are runs of earlier texts of the runbook: they prove nothing
	// about today's text.
	older []record.Evidence
}

// byText splits runs into those of the text with hash and the others.
func byText(runs []record.Evidence, hash string) (current, older []record.Evidence) {
	for _, e := range runs {
		if hash == "" || e.Runbook.Hash == hash {
			current = append(current, e)
		} else {
			older = append(older, e)
		}
	}
	return current, older
}

// olderDrill says "v2 drilled on DATE; v3 never" when only an earlier text
// of the runbook has a successful drill ("" otherwise).
func olderDrill(older []record.Evidence, currentVersion int) string {
	for _, e := range older {
		if e.Mode == "drill" && e.Outcome == "succeeded" {
			return fmt.Sprintf("v%d drilled on %s; v%d never", e.Runbook.Version, e.EndedAt.UTC().Format("2006-01-02"), currentVersion)
		}
	}
	return ""
}

func (k known) rb() *runbooks.Runbook { return k.in.Runbook }

// lastSucceeded is the newest succeeded run of one of the modes.
func (k known) lastSucceeded(modes ...string) *record.Evidence {
	for i, e := range k.in.Runs {
		if e.Outcome == "succeeded" && slices.Contains(modes, e.Mode) {
			return &k.in.Runs[i]
		}
	}
	return nil
}

func (k known) ago(t time.Time) string {
	d := k.now.Sub(t)
	switch {
	case d < 24*time.Hour:
		return "today"
	case d < 48*time.Hour:
		return "1 day ago"
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func (k known) runbookRow() Row {
	if len(k.in.Errors) > 0 {
		return Row{AreaRunbook, 1, fmt.Sprintf("draft: %d validation error(s), first: %s", len(k.in.Errors), k.in.Errors[0])}
	}
	if e := k.lastSucceeded("drill", "failover"); e != nil {
		return Row{AreaRunbook, 3, fmt.Sprintf("valid and executed: %s %s succeeded %s", e.Mode, e.WorkflowID, k.ago(e.EndedAt))}
	}
	return Row{AreaRunbook, 2, "valid (lifeboat validate), but never executed in a drill or failover"}
}

func (k known) drillRow() Row {
	every := DefaultDrillEvery
	cadence := "default cadence 90d"
	if d := k.rb().Spec.Drill; d != nil && d.Every > 0 {
		every, cadence = d.Every.D(), "every "+d.Every.String()
	}
	var last *record.Evidence
	tabletops := 0
	for i, e := range k.in.Runs {
		if e.Mode == "tabletop" {
			tabletops++
			continue
		}
		if e.Mode == "drill" && last == nil {
			last = &k.in.Runs[i]
		}
	}
	ok := k.lastSucceeded("drill")
	switch {
	case ok != nil && k.now.Sub(ok.EndedAt) <= every:
		return Row{AreaDrill, 3, fmt.Sprintf("drill %s succeeded %s at level %s (%s)", ok.WorkflowID, k.ago(ok.EndedAt), runbooks.OrDash(ok.Level), cadence)}
	case ok != nil:
		return Row{AreaDrill, 2, fmt.Sprintf("overdue: the last successful drill %s was %s (%s)", ok.WorkflowID, k.ago(ok.EndedAt), cadence)}
	case last != nil:
		return Row{AreaDrill, 1, fmt.Sprintf("the last drill %s %s %s and none ever succeeded: %s", last.WorkflowID, last.Outcome, k.ago(last.EndedAt), first(last.FailedChecks))}
	case olderDrill(k.older, k.rb().Metadata.Version) != "":
		return Row{AreaDrill, 1, olderDrill(k.older, k.rb().Metadata.Version) + ": the runbook text changed since; drill it again: lifeboat drill " + k.in.Name}
	case tabletops > 0:
		return Row{AreaDrill, 1, fmt.Sprintf("only %d tabletop run(s): the restore was never executed", tabletops)}
	}
	return Row{AreaDrill, 0, "never drilled: lifeboat drill " + k.in.Name}
}

// bestLevel is the highest validation level of a succeeded drill or failover.
func (k known) bestLevel() (string, *record.Evidence) {
	best, by := "", (*record.Evidence)(nil)
	for i, e := range k.in.Runs {
		if e.Outcome == "succeeded" && e.Mode != "tabletop" && e.Level > best {
			best, by = e.Level, &k.in.Runs[i]
		}
	}
	return best, by
}

func (k known) restoreRow() Row {
	if !k.uses("velero.restore") {
		return Row{AreaRestore, 0, "the runbook restores no data (no velero.restore step)"}
	}
	level, by := k.bestLevel()
	switch {
	case level >= "L3":
		return Row{AreaRestore, 3, fmt.Sprintf("restored into a clean cluster: %s in %s %s %s", level, by.Mode, by.WorkflowID, k.ago(by.EndedAt))}
	case level == "L2":
		return Row{AreaRestore, 2, fmt.Sprintf("restored into an empty namespace only (L2, %s %s)", by.WorkflowID, k.ago(by.EndedAt))}
	case level == "L1":
		return Row{AreaRestore, 1, fmt.Sprintf("only the backup's existence was checked (L1, %s)", by.WorkflowID)}
	}
	return Row{AreaRestore, 0, "no run has restored anything yet"}
}

func (k known) edgeRow() Row {
	for _, e := range k.in.Runs {
		if e.Outcome == "succeeded" && e.Level == "L5" {
			return Row{AreaEdge, 3, fmt.Sprintf("failover tested: traffic moved in %s %s %s", e.Mode, e.WorkflowID, k.ago(e.EndedAt))}
		}
	}
	switch {
	case k.uses("cloudflare.dnsSwitch", "cloudflare.lbFailover"):
		return Row{AreaEdge, 2, "the switch is codified in the edge layer but traffic has never moved in a run"}
	case len(k.rb().Spec.Layers.Edge) > 0:
		return Row{AreaEdge, 1, "documented: the edge layer is a manual step"}
	}
	return Row{AreaEdge, 0, "no edge layer: traffic would move by hand"}
}

func (k known) backupRow() Row {
	rpo := k.rb().Spec.Objectives.RPO
	b := k.in.Backup
	if b == nil {
		return Row{AreaBackup, 0, "the runbook names no Velero schedule (velero.latestBackup or velero.restore with schedule)"}
	}
	if b.Err != "" {
		if e := k.lastWithRPO(); e != nil {
			score := 2
			if *e.RPOActual > rpo {
				score = 1
			}
			return Row{AreaBackup, score, fmt.Sprintf("not checked now (%s); at %s %s the RPO was %s (target %s)", b.Err, e.WorkflowID, k.ago(e.EndedAt), e.RPOActual.Readable(), rpo)}
		}
		return Row{AreaBackup, 0, fmt.Sprintf("schedule %s: %s", b.Schedule, b.Err)}
	}
	fact := fmt.Sprintf("latest backup %s of %s is %s old (RPO %s)", b.Name, b.Schedule, runbooks.Duration(b.Age.Round(time.Second)).Readable(), rpo)
	if rpo > 0 && b.Age > rpo.D() {
		return Row{AreaBackup, 1, fact + ": older than the RPO"}
	}
	if level, _ := k.bestLevel(); level >= "L2" {
		return Row{AreaBackup, 3, fact + ", and restores of it are tested"}
	}
	return Row{AreaBackup, 2, fact + "; no restore of it tested yet"}
}

func (k known) lastWithRPO() *record.Evidence {
	for i, e := range k.in.Runs {
		if e.RPOActual != nil {
			return &k.in.Runs[i]
		}
	}
	return nil
}

func (k known) approverRow() Row {
	rb := k.rb()
	people := map[string]bool{}
	for _, g := range rb.Spec.Approvers {
		for _, p := range g {
			people[p] = true
		}
	}
	gated := 0
	for _, s := range rb.AllSteps() {
		if s.Step.Approval != nil {
			gated++
		}
	}
	for _, e := range k.in.Runs {
		for _, s := range e.Steps {
			for _, a := range s.Approvals {
				if a.Decision == "approved" && e.Mode != "tabletop" {
					return Row{AreaApproval, 3, fmt.Sprintf("%d approver(s) in %d group(s); %s approved %s in %s %s", len(people), len(rb.Spec.Approvers), a.By, s.ID, e.WorkflowID, k.ago(a.At))}
				}
			}
		}
	}
	switch {
	case len(people) > 0 && gated > 0:
		return Row{AreaApproval, 2, fmt.Sprintf("%d approver(s) in %d group(s) gate %d step(s); no approval exercised in a run yet", len(people), len(rb.Spec.Approvers), gated)}
	case rb.Metadata.Owner != "":
		return Row{AreaApproval, 1, fmt.Sprintf("owner %s named, but no approval gate", rb.Metadata.Owner)}
	}
	return Row{AreaApproval, 0, "no owner and no approvers"}
}

// uses reports whether any step of the runbook runs one of the actions.
func (k known) uses(actions ...string) bool {
	for _, s := range k.rb().AllSteps() {
		if slices.Contains(actions, s.Step.Action) {
			return true
		}
	}
	return false
}

func first(list []string) string {
	if len(list) == 0 {
		return "—"
	}
	return list[0]
}

// Text renders systems as a table with the critical systems below 2 called out.
func Text(systems []System) string {
	var b strings.Builder
	for _, s := range systems {
		crit := ""
		if s.Critical {
			crit = " — critical (RTO " + s.RTO.String() + ")"
		}
		fmt.Fprintf(&b, "%s%s\n", s.Runbook, crit)
		for _, r := range s.Rows {
			fmt.Fprintf(&b, "  %d/3  %-18s %s\n", r.Score, r.Area, r.Fact)
		}
		b.WriteString("\n")
	}
	var alarms []string
	for _, s := range systems {
		if !s.Critical {
			continue
		}
		for _, r := range s.Below(2) {
			alarms = append(alarms, fmt.Sprintf("  %s: %s %d/3 — %s", s.Runbook, r.Area, r.Score, r.Fact))
		}
	}
	if len(alarms) == 0 {
		b.WriteString("No critical system scores below 2 (the target for critical systems).\n")
	} else {
		fmt.Fprintf(&b, "CRITICAL SYSTEMS BELOW 2 (target: none):\n%s\n", strings.Join(alarms, "\n"))
	}
	return b.String()
}

// precheckRow scores the newest run's pre-flight checks (lifeboat precheck,
// a dry run, or phase 0 of a drill or failover): what would stop a run now.
func (k known) precheckRow() Row {
	for _, e := range k.in.Runs {
		if len(e.Prechecks) == 0 {
			continue
		}
		var failed []record.PrecheckRecord
		for _, c := range e.Prechecks {
			if !c.OK && !c.Advisory {
				failed = append(failed, c)
			}
		}
		switch {
		case len(failed) > 0:
			c := failed[0]
			return Row{AreaPrecheck, 1, fmt.Sprintf("%d of %d failed in %s %s (%s): first %s %s — %s; fix: %s", len(failed), len(e.Prechecks),
				e.Mode, e.WorkflowID, k.ago(e.EndedAt), c.ID, c.Name, c.Message, runbooks.OrDash(c.Fix))}
		case k.now.Sub(e.EndedAt) > PrecheckFresh:
			return Row{AreaPrecheck, 2, fmt.Sprintf("all %d passed in %s %s, %s: run them again (lifeboat precheck %s)", len(e.Prechecks), e.Mode, e.WorkflowID, k.ago(e.EndedAt), k.in.Name)}
		}
		return Row{AreaPrecheck, 3, fmt.Sprintf("all %d passed in %s %s %s", len(e.Prechecks), e.Mode, e.WorkflowID, k.ago(e.EndedAt))}
	}
	return Row{AreaPrecheck, 0, "never checked: lifeboat precheck " + k.in.Name}
}
