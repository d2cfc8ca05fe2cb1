package workflows

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// evidence assembles the Evidence record from the run's state. It is called
// at the end (and for evidence.store checkpoints); it reads, never changes, r.
func (r *run) evidence(ctx workflow.Context) record.Evidence {
	now := workflow.Now(ctx)
	rb := r.rb()
	info := workflow.GetInfo(ctx)
	end := now
	if r.finished {
		end = r.endedAt
	}
	e := record.Evidence{
		ID:         evidenceID(r.declaredAt, rb.Metadata.Name, info.WorkflowExecution.ID, r.runKey(ctx)),
		WorkflowID: info.WorkflowExecution.ID, RunID: r.runKey(ctx),
		Runbook: record.RunbookRef{Name: rb.Metadata.Name, Version: rb.Metadata.Version, Hash: r.resolved.Hash,
			Owner: rb.Metadata.Owner, Description: rb.Metadata.Description},
		Mode: r.req.ModeLabel(), Scope: rb.Spec.Scope, Disaster: rb.Spec.Disaster, Strategy: rb.Spec.Strategy,
		Reason: capText(r.req.Reason), RequestedBy: r.req.RequestedBy, RequestProof: r.requestProof, RequestClient: r.req.Client,
		AllowedSigners: r.resolved.Signers,
		Outcome:        r.state,
		DeclaredAt:     r.declaredAt, StartedAt: r.startedAt, EndedAt: end,
		RPOTarget: rb.Spec.Objectives.RPO, RTOTarget: rb.Spec.Objectives.RTO,
		RTOActual: runbooks.Duration(end.Sub(r.declaredAt)), RTOBreached: r.breached,
		Notes:          byTime(r.notes, r.refusals.notes, func(n record.NoteRecord) time.Time { return n.At }),
		Events:         byTime(r.events, r.refusals.events, func(e record.EventRecord) time.Time { return e.At }),
		RefusedSignals: r.refusals.total,
	}
	if !r.finished {
		e.Outcome = "in-progress"
	}
	if ps := r.req.PlanStart; ps != nil {
		e.PlanRun = ps.WorkflowID
	}
	e.Failback = r.resolved.Failback
	if len(r.checks) > 0 {
		e.Prechecks = r.checkRecords()
	}
	e.DryRun = r.dry
	if r.truthful && !r.recoveredAt.IsZero() {
		// The RTO measures recovery; the drill's teardown is timed on its own.
		e.RTOActual = runbooks.Duration(r.recoveredAt.Sub(r.declaredAt))
		if r.drilling() && len(rb.TeardownSteps()) > 0 {
			td := runbooks.Duration(end.Sub(r.recoveredAt))
			e.Teardown = &td
		}
	}
	if r.cancelled && r.finished {
		e.Outcome = OutcomeCancelled
	}
	if r.aborted {
		e.OutcomeReason = r.abortReason
		if r.abortedBy.by != "" {
			e.OutcomeReason = fmt.Sprintf("aborted by %s: %s", r.abortedBy.by, r.abortReason)
		}
	}
	rto := rb.Spec.Objectives.RTO.D()
	for _, s := range r.order {
		rec := record.StepRecord{ID: s.spec.ID, Layer: s.layer, Action: s.spec.Action, State: s.state,
			Attempts: s.attempts, Error: s.err, Summary: s.summary, Outputs: s.outputs, Inputs: s.inputs,
			Approvals: s.approvals, ApprovalWait: runbooks.Duration(s.approvalWait),
			SkippedBy: s.skipper.by, SkipReason: s.skipReason}
		if !terminal(s.state) && r.finished {
			rec.State = StateNotRun
		}
		if !s.started.IsZero() {
			started, ended := s.started, stepEnd(s, end)
			rec.Started, rec.Ended = &started, &ended
			rec.Duration = runbooks.Duration(ended.Sub(started))
			if rto > 0 {
				rec.RTOShare = float64(ended.Sub(started)) / float64(rto)
			}
		}
		e.Steps = append(e.Steps, rec)
		if s.recovery != nil && s.spec.RPOSource && s.state == StateSucceeded {
			rp := *s.recovery.RecoveryPoint
			rpo := max(runbooks.Duration(r.declaredAt.Sub(rp)), 0)
			e.RPOSources = append(e.RPOSources, record.RPOSource{Step: s.spec.ID, Name: s.recovery.RecoveryPointName, RecoveryPoint: rp, RPO: rpo})
			// The worst source is the run's RPO (runs before versionOneAuthority: the last).
			if e.RPOActual == nil || !r.authority || rpo > *e.RPOActual {
				e.RPOActual, e.RecoveryPoint, e.RecoveryPointName = &rpo, &rp, s.recovery.RecoveryPointName
			}
		}
	}
	e.Derive()
	for _, c := range r.blockingChecks() {
		e.FailedChecks = append(e.FailedChecks, fmt.Sprintf("pre-flight check %s (%s): %s", c.id, c.result.Name, c.result.Message))
	}
	e.Level, e.LevelReason = validationLevel(r.req.Mode, e.Steps)
	if rb.IsPlan() {
		e.Plan = r.planRecord(end)
		e.Level, e.LevelReason = "", "a plan's members each have their own level (see Members)"
		e.Invariant = r.planInvariant(e)
		return e
	}
	e.Invariant = r.invariant(e)
	if d := rb.Spec.Drill; d != nil && d.Every > 0 && r.req.Mode == ModeDrill && e.Outcome == RunSucceeded {
		next := r.declaredAt.Add(d.Every.D())
		e.NextDrill = &next
	}
	return e
}

// invariant fills the recovery-invariant sentence (seed 004 §4) when this run
// proves it, and otherwise says what is missing.
func (r *run) invariant(e record.Evidence) string {
	rb := r.rb()
	capability := cmp.Or(rb.Spec.Capability, rb.Metadata.Description, rb.Metadata.Name)
	var missing []string
	switch {
	case e.Mode == ModeTabletop:
		missing = append(missing, "a tabletop run executes nothing, so it cannot validate a restore")
	case e.Mode == ModeTeardown:
		missing = append(missing, "a teardown run only cleans up after a drill")
	case r.req.DryRun || r.req.PrecheckOnly:
		missing = append(missing, "this run changed nothing: it only checked (lifeboat precheck) or asked what would change (--dry-run)")
	case e.Mode == ModeFailback:
		missing = append(missing, "a failback returns to the primary; it restores nothing in the DR region")
	case e.Outcome != RunSucceeded:
		missing = append(missing, fmt.Sprintf("this run did not succeed (%s)", e.Outcome))
	}
	if e.RTOBreached {
		missing = append(missing, fmt.Sprintf("the RTO was breached (actual %s > %s)", e.RTOActual, e.RTOTarget))
	}
	if e.RPOActual == nil {
		missing = append(missing, "no rpoSource step measured the recovery point")
	} else if *e.RPOActual > e.RPOTarget {
		missing = append(missing, fmt.Sprintf("the achieved RPO %s is above the target %s", *e.RPOActual, e.RPOTarget))
	}
	if len(missing) > 0 {
		return "Not established by this run: " + strings.Join(missing, "; ") + "."
	}
	return fmt.Sprintf("Given a total loss of the %s (%s), we can restore %s to RPO <= %s within RTO <= %s using runbook %s v%d, validated by %s %s on %s.",
		rb.Spec.Scope, cmp.Or(rb.Spec.Disaster, "disaster"), strings.TrimSuffix(capability, "."), e.RPOTarget, e.RTOTarget,
		rb.Metadata.Name, rb.Metadata.Version, e.Mode, e.ID, e.EndedAt.UTC().Format("2006-01-02"))
}

// evidenceID is unique per run: DR-<declared date>-<runbook>-<workflow>-<run>,
// where <workflow> is shortID of the workflow id and <run> the last 8
// letters and digits of the run id (a workflow id reused for a second run
// still gets its own evidence id).
func evidenceID(declared time.Time, runbook, workflowID, runID string) string {
	run := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, runID)
	if len(run) > 8 {
		run = run[len(run)-8:] // the random end (a UUIDv7 starts with the time)
	}
	return fmt.Sprintf("DR-%s-%s-%s-%s", declared.UTC().Format("2006-01-02"), runbook, shortID(workflowID), run)
}

// shortID names the workflow in an evidence id: for a lifeboat workflow id
// (lifeboat-<runbook>-<mode>-<short>) its last part, or for a scheduled run,
// whose id ends in the scheduled time (…-scheduled-2026-11-21T03:00:00Z),
// that time as 030000; any other id (typed in the UI) whole, made
// file-name safe and at most 40 characters.
func shortID(id string) string {
	if strings.HasPrefix(id, "lifeboat-") {
		if len(id) > len(time.RFC3339) {
			if t, err := time.Parse(time.RFC3339, id[len(id)-len("2006-01-02T15:04:05Z"):]); err == nil {
				return t.UTC().Format("150405")
			}
		}
		if i := strings.LastIndex(id, "-"); i >= 0 && len(id)-i-1 >= 4 {
			return id[i+1:]
		}
	}
	safe := strings.Trim(strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		if c >= 'A' && c <= 'Z' {
			return c + ('a' - 'A')
		}
		return '-'
	}, id), "-")
	if len(safe) > 40 {
		safe = safe[:40]
	}
	return safe
}
