package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// RecoveryPlanWorkflowName is the registered name of RecoveryPlanWorkflow.
const RecoveryPlanWorkflowName = "RecoveryPlanWorkflow"

// SignalMemberProgress is the signal a plan's member run sends its plan when
// its state, layer or pending decisions change.
const SignalMemberProgress = "member-progress"

// RecoveryPlanWorkflow runs a recovery plan: every member runbook as a child
// RestoreWorkflow (members without dependencies in parallel), under one RTO
// clock, and returns the plan's Evidence.
//
// The plan's run is a run like any other — status query, approvals, retry,
// skip, abort, current details, evidence sealed in the same chain — whose
// steps are its members (runbooks.RecoveryPlan.AsRunbook): a member's gate is
// the step's approval gate; a member that fails pauses the plan for an
// operator (retry starts the member again, skip goes on without it) unless
// it is optional. Each member leaves its own evidence; the plan's names each
// member's run, outcome and RTO. An abort or a cancellation of the plan
// cancels the running members, which abort (their teardowns run) and leave
// evidence. Started from the UI with {"plan": "…", "mode": "drill"}.
func RecoveryPlanWorkflow(ctx workflow.Context, req Request) (*record.Evidence, error) {
	if !req.isPlan() {
		return nil, refuseStart(ctx, req, temporal.NewNonRetryableApplicationError(
			`request: "plan" is missing: name a recovery plan of the worker's catalog, e.g. {"plan": "region-ca-central-1-loss", "mode": "drill"}`, "BadRequest", nil), nil)
	}
	return RestoreWorkflow(ctx, req)
}

// MemberProgress is what a member run tells its plan about itself.
type MemberProgress struct {
	Runbook    string    `json:"runbook"`
	WorkflowID string    `json:"workflowId"`
	State      string    `json:"state"`
	Layer      string    `json:"layer,omitempty"`
	Pending    []Pending `json:"pending,omitempty"`
	Finished   bool      `json:"finished,omitempty"`
	// Seq orders the reports: two sent in one workflow task may arrive in
	// either order, and the plan keeps the latest.
	Seq int `json:"seq"`
}

// PlanStart is a plan's own start, handed to each member: the member proves
// its requester with the plan's signature, and only when the plan is its
// parent (the server says who the parent is, a client cannot).
type PlanStart struct {
	WorkflowID string `json:"workflowId"`
	// Request is the plan's request without its texts (InlinePlan,
	// PinnedMembers): each member gets only its own text, so a re-enacted
	// plan's history grows with its members, not with their square.
	Request Request `json:"request"`
	// Terms are the plan's start terms (StartTerms of the whole request):
	// what its requester signed, which the member checks the signature
	// against.
	Terms string `json:"terms,omitempty"`
	// StartedAt is when the plan started (and checked its signature's age).
	StartedAt time.Time `json:"startedAt"`
}

// planStart is what the plan hands each member: its start, texts left out.
func (r *run) planStart() *PlanStart {
	ps := &PlanStart{WorkflowID: r.workflowID, Request: r.req, StartedAt: r.startedAt}
	if r.authority {
		ps.Terms = StartTerms(r.req)
		if r.req.InlinePlan != "" { // named, as the signed statement names it
			ps.Request.Plan = r.req.RunbookName()
		}
		ps.Request.InlinePlan, ps.Request.PinnedMembers = "", nil
	}
	return ps
}

// memberID is the workflow id of a member's run: PLANRUN.MEMBER, and
// PLANRUN.MEMBER.retry-N for an operator's Nth retry of it.
func memberID(planID, member string, retries int) string {
	id := planID + "." + member
	if retries > 0 {
		id += fmt.Sprintf(".retry-%d", retries)
	}
	return id
}

// executeMember runs one member as a child RestoreWorkflow and records its
// outcome on the step: a member that did not succeed is the step's failure.
func (r *run) executeMember(ctx workflow.Context, s *step) error {
	member := s.spec.ID
	id := memberID(r.workflowID, member, s.retries)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		// An abort or cancellation of the plan reaches the member as a
		// cancellation, which the member turns into an abort with evidence;
		// the plan waits for it.
		ParentClosePolicy:   enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation: true,
	})
	req := Request{Runbook: member, Mode: r.req.Mode, RequestedBy: r.req.RequestedBy, InlineRunbook: r.req.PinnedMembers[member],
		Reason:    fmt.Sprintf("member of recovery plan %s (%s)", r.rb().Metadata.Name, r.workflowID),
		PlanStart: r.planStart()}
	if r.authority { // the plan's mode is the members' mode, whole
		req.DryRun, req.PrecheckOnly, req.DeclaredAt = r.req.DryRun, r.req.PrecheckOnly, &r.declaredAt
	}
	if req.InlineRunbook != "" {
		req.Runbook = "" // the text the member ran when the plan run re-enacted here ran
		req.ReenactmentOf = r.req.ReenactmentOf
	}
	if r.req.Reason != "" {
		req.Reason += ": " + r.req.Reason
	}
	s.state, s.err, s.summary = StateRunning, "", ""
	if s.started.IsZero() {
		s.started = workflow.Now(ctx)
	}
	s.member = &MemberProgress{Runbook: member, WorkflowID: id, State: RunResolving}
	r.publish(ctx)
	var ev record.Evidence
	err := workflow.ExecuteChildWorkflow(cctx, RestoreWorkflowName, req).Get(ctx, &ev)
	s.ended = workflow.Now(ctx)
	s.attempts++
	s.member.Finished = true
	if err != nil {
		s.member.State = RunFailed
		s.err = fmt.Sprintf("member run %s: %s", id, causeMessage(err))
		return err
	}
	s.member.State, s.member.Layer, s.member.Pending = ev.Outcome, "", nil
	s.outputs = map[string]any{"workflowId": id, "outcome": ev.Outcome, "rtoActual": ev.RTOActual.String(),
		"rtoTarget": ev.RTOTarget.String(), "runbookHash": ev.Runbook.Hash}
	if ev.Level != "" {
		s.outputs["level"] = ev.Level
	}
	s.summary = fmt.Sprintf("%s in %s (RTO %s) — lifeboat evidence %s", ev.Outcome, ev.RTOActual.Readable(), ev.RTOTarget, id)
	if ev.RTOBreached {
		s.summary += " — its RTO was breached"
	}
	if ev.Outcome != RunSucceeded {
		s.err = fmt.Sprintf("member run %s %s: %s", id, ev.Outcome, firstLine(ev.OutcomeReason, ev.FailedChecks))
		return fmt.Errorf("%s", s.err)
	}
	return nil
}

// receiveMemberProgress keeps each member step's progress as its run reports it.
func (r *run) receiveMemberProgress(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalMemberProgress)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p MemberProgress
			ch.Receive(ctx, &p)
			s, ok := r.steps[p.Runbook]
			if !ok || s.member == nil || s.member.WorkflowID != p.WorkflowID || s.member.Finished || p.Seq < s.member.Seq {
				continue // a late report (from an earlier attempt, or overtaken)
			}
			s.member = &p
			r.publish(ctx)
		}
	})
}

// versionMemberProgress guards the progress signal a member run sends its
// plan (only runs with a parent call it: older histories have none).
const versionMemberProgress = "plan-member-progress"

// reportToPlan tells the parent plan what changed, when something did.
func (r *run) reportToPlan(ctx workflow.Context, state string) {
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	if parent == nil || r.req.PlanStart == nil || !r.ready {
		return
	}
	p := MemberProgress{Runbook: r.rb().Metadata.Name, WorkflowID: r.workflowID, State: state, Layer: r.layer, Finished: r.finished}
	for _, s := range r.order {
		if pe, ok := r.pending(s); ok {
			p.Pending = append(p.Pending, pe)
		}
	}
	if r.lastReport != nil && sameProgress(*r.lastReport, p) {
		return
	}
	if workflow.GetVersion(ctx, versionMemberProgress, workflow.DefaultVersion, 1) != 1 {
		return
	}
	if r.lastReport != nil {
		p.Seq = r.lastReport.Seq + 1
	}
	r.lastReport = &p
	// Fire and forget: the plan only shows it; a lost report is replaced by the next.
	_ = workflow.SignalExternalWorkflow(ctx, parent.ID, "", SignalMemberProgress, p)
}

func sameProgress(a, b MemberProgress) bool {
	if a.State != b.State || a.Layer != b.Layer || a.Finished != b.Finished || len(a.Pending) != len(b.Pending) {
		return false
	}
	for i := range a.Pending {
		x, y := a.Pending[i], b.Pending[i]
		if x.Step != y.Step || x.Kind != y.Kind || !slices.Equal(x.Have, y.Have) || x.Message != y.Message {
			return false
		}
	}
	return true
}

// memberPending is what a plan's members wait on people for, each with the
// member's own command (answer it on the member's run) and the member named.
func (r *run) memberPending() []Pending {
	var out []Pending
	for _, s := range r.order {
		if s.member == nil || s.member.Finished || terminal(s.state) {
			continue
		}
		for _, p := range s.member.Pending {
			p.Member, p.MemberRun = s.spec.ID, s.member.WorkflowID
			p.Message = "member " + s.spec.ID + ": " + p.Message
			out = append(out, p)
		}
	}
	return out
}

// forwardable is the member run a message sent to a plan's run belongs to:
// it names a step that is not one of the plan's members and that a running
// member waits on ("" otherwise: the plan checks the message itself).
func (r *run) forwardable(msg Signable) string {
	id, _ := r.forwardTarget(msg)
	return id
}

// forwardTarget is forwardable's member run, or an error when more than one
// member waits on a step of that id (since versionOneAuthority): the plan
// cannot tell which member the sender meant, so the sender must name it by
// sending to the member's run.
func (r *run) forwardTarget(msg Signable) (string, error) {
	step := msg.decision().Step
	if !r.ready || !r.rb().IsPlan() || step == "" || r.steps[step] != nil {
		return "", nil
	}
	var runs []string
	for _, p := range r.memberPending() {
		if p.Step == step && !slices.Contains(runs, p.MemberRun) {
			runs = append(runs, p.MemberRun)
		}
	}
	switch {
	case len(runs) == 0:
		return "", nil
	case len(runs) == 1 || !r.authority:
		return runs[0], nil
	}
	return "", fmt.Errorf("members %s all wait on a step %s: send the decision to the member's own run (lifeboat %s %s %s …)",
		strings.Join(runs, ", "), step, msgVerb(msg), runs[0], step)
}

// forward hands an operator's message for a member's step to the member's
// run (as a signal), which checks it as its own: a refusal is recorded
// there. A signature must name the member's run; lifeboat approve PLANRUN
// STEP sends to the member directly and signs for it.
func (r *run) forward(ctx workflow.Context, name, id string, msg Signable) {
	text := fmt.Sprintf("%s for %s from %s forwarded to member run %s", name, msg.decision().Step, orSomeone(msg.Actor()), id)
	r.event(ctx, "forwarded", msg.decision().Step, msg.Actor(), capText(text))
	r.publish(ctx)
	_ = workflow.SignalExternalWorkflow(ctx, id, "", name, msg).Get(ctx, nil)
}

// planRecord lists each member's run and the critical path as it ran.
func (r *run) planRecord(end time.Time) *record.PlanRecord {
	rec := &record.PlanRecord{}
	byName := map[string]runbooks.MemberRef{}
	for _, m := range r.resolved.Members {
		byName[m.Runbook] = m
	}
	var members []runbooks.Step
	for _, s := range r.order {
		if s.layer != runbooks.MembersLayer {
			continue
		}
		members = append(members, s.spec)
		m := record.MemberRecord{Runbook: s.spec.ID, Optional: s.spec.OnFailure == runbooks.OnFailureContinue,
			Outcome: s.state, RTOTarget: byName[s.spec.ID].RTO, Hash: byName[s.spec.ID].Hash}
		if s.member != nil {
			m.WorkflowID = s.member.WorkflowID
		}
		if o := s.outputs; o != nil {
			m.Outcome, _ = o["outcome"].(string)
			m.Level, _ = o["level"].(string)
			m.Hash, _ = o["runbookHash"].(string)
			if d, err := runbooks.ParseDuration(fmt.Sprint(o["rtoActual"])); err == nil {
				m.RTOActual = d
			}
		}
		if !terminal(s.state) && r.finished {
			m.Outcome = StateNotRun
		}
		m.RTOBreached = m.RTOTarget > 0 && m.RTOActual > m.RTOTarget
		rec.Members = append(rec.Members, m)
	}
	took, chain := runbooks.LongestChain(members, func(spec runbooks.Step) time.Duration {
		s := r.steps[spec.ID]
		if s.started.IsZero() {
			return s.approvalWait
		}
		return s.approvalWait + stepEnd(s, end).Sub(s.started)
	})
	rec.CriticalPath, rec.CriticalPathTook = chain, runbooks.Duration(took.Round(time.Second))
	return rec
}

// planInvariant is the plan's recovery invariant: every member that is not
// optional restored within the plan's RTO, each member's own evidence
// proving its RPO.
func (r *run) planInvariant(e record.Evidence) string {
	rb := r.rb()
	var missing, restored []string
	switch {
	case e.Mode == ModeTabletop:
		missing = append(missing, "a tabletop run executes nothing, so it cannot validate a restore")
	case e.Outcome != RunSucceeded:
		missing = append(missing, fmt.Sprintf("this run did not succeed (%s)", e.Outcome))
	}
	if e.RTOBreached {
		missing = append(missing, fmt.Sprintf("the plan's RTO was breached (actual %s > %s)", e.RTOActual, e.RTOTarget))
	}
	for _, m := range e.Plan.Members {
		if m.Outcome == RunSucceeded {
			restored = append(restored, m.Runbook)
		}
	}
	if len(missing) > 0 {
		return "Not established by this run: " + strings.Join(missing, "; ") + "."
	}
	return fmt.Sprintf("Given a total loss of the %s (%s), we can restore %s within RTO <= %s using recovery plan %s v%d (each member's RPO is in its own evidence), validated by %s %s on %s.",
		rb.Spec.Scope, cmp.Or(rb.Spec.Disaster, "disaster"), strings.Join(restored, ", "), e.RTOTarget,
		rb.Metadata.Name, rb.Metadata.Version, e.Mode, e.ID, e.EndedAt.UTC().Format("2006-01-02"))
}

// msgVerb is the CLI verb of a message.
func msgVerb(m Signable) string {
	if d := m.decision().Decision; d != "" {
		return d
	}
	return MsgNote
}
