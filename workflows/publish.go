package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// liveState is the run's state as shown to people: what it waits on first
// (an approval, then a paused step, then an acknowledgement). One pass, no
// allocation: it runs on every change of every step.
func (r *run) liveState() string {
	if r.finished || !r.ready || r.state == RunTearingDown {
		return r.state
	}
	if r.aborted {
		return "aborting"
	}
	if len(r.checks) > 0 && r.layer == PrechecksLayer && len(r.blockingChecks()) > 0 {
		return StatePrecheckFailed
	}
	paused, acking := false, false
	for _, s := range r.order {
		state := s.state
		if m := s.member; m != nil && !m.Finished && state == StateRunning {
			state = m.State // a plan waits on what its running members wait on
		}
		switch state {
		case StateAwaitingApproval:
			return StateAwaitingApproval
		case StatePaused:
			paused = true
		case StateAwaitingAck:
			acking = true
		}
	}
	switch {
	case paused:
		return StatePaused
	case acking:
		return StateAwaitingAck
	}
	return RunRunning
}

// publish pushes the live state to search attributes (only when changed) and
// to the workflow's current details, which the Temporal UI shows.
func (r *run) publish(ctx workflow.Context) {
	state := r.liveState()
	var updates []temporal.SearchAttributeUpdate
	if state != r.saState {
		r.saState = state
		updates = append(updates, SAState.ValueSet(state))
	}
	if r.layer != r.saLayer {
		r.saLayer = r.layer
		updates = append(updates, SALayer.ValueSet(r.layer))
	}
	if r.breached != r.saBreached {
		r.saBreached = r.breached
		updates = append(updates, SARTOBreached.ValueSet(r.breached))
	}
	if len(updates) > 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, updates...)
	}
	if r.ready {
		workflow.SetCurrentDetails(ctx, r.details(ctx, state))
	}
	r.runMetrics(ctx, state)
	r.reportToPlan(ctx, state)
}

// details is the Markdown shown as the workflow's current details in the
// UI, a pane of a fixed height: what a person must do comes first (with the
// command, the signal, who may approve, a manual task's instructions), then
// the latest refusal, then the run's state and RTO deadline (a deadline does
// not go stale while the page waits; a "remaining" figure would), then what
// runs. It runs on every change, so it reads the steps once and skips the
// projection the status query computes (1,000-step runs replay in time).
func (r *run) details(ctx workflow.Context, state string) string {
	rb := r.rb()
	var b strings.Builder
	line := func(format string, args ...any) {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, format, args...)
	}
	waiting := 0
	wait := func(label string, p Pending) {
		if waiting++; waiting <= detailLines {
			signal := "`" + p.Signal + "`"
			if msg, rest, ok := strings.Cut(p.Signal, signedVia); ok {
				signal = "`" + msg + "`" + signedVia + "`" + strings.TrimSuffix(rest, signedTail) + "`" + signedTail
			}
			line("**%s** %s: `%s`, or signal %s", label, strings.TrimSuffix(p.Message, ": "+p.Command), p.Command, signal)
		}
	}
	// One pass over the steps: who waits for a person is listed now, what
	// runs after the header.
	var running []*step
	nRunning := 0
	for _, s := range r.order {
		switch s.state {
		case StateRunning:
			if nRunning++; nRunning <= detailLines {
				running = append(running, s)
			}
		case StateAwaitingApproval, StateAwaitingAck, StatePaused:
			if p, ok := r.pending(s); ok && !r.finished {
				wait("Waiting:", p)
			}
		}
	}
	if !r.finished {
		for _, c := range r.blockingChecks() {
			wait("Pre-flight check failed:", r.checkPending(c))
		}
		for _, p := range r.memberPending() {
			p.Message, p.Signal = strings.TrimPrefix(p.Message, "member "+p.Member+": "), p.Signal+" here"
			wait("Waiting (member "+p.Member+"):", p)
		}
	}
	if waiting > detailLines {
		line("… and %d more waiting: `lifeboat status %s`", waiting-detailLines, r.workflowID)
	}
	// The run's state and its RTO deadline share one line, before the
	// refusal: the pane shows about four lines, and the deadline must stay
	// among them.
	shown := state
	if r.finished && r.cancelled {
		shown = OutcomeCancelled
	}
	header := fmt.Sprintf("**%s** v%d — %s — **%s**", rb.Metadata.Name, rb.Metadata.Version, r.req.Mode, shown)
	if r.layer != "" && !r.finished {
		header += " — layer " + r.layer
	}
	rto := rb.Spec.Objectives.RTO
	deadline := r.declaredAt.Add(rto.D())
	switch {
	case r.finished && r.breached:
		line("%s — RTO %s: **BREACHED** — finished after %s, deadline was %s", header, rto, runbooks.Duration(r.endedAt.Sub(r.declaredAt)).Readable(), deadline.UTC().Format("15:04:05 UTC"))
	case r.finished:
		line("%s — RTO %s: finished in %s, %s before the deadline %s", header, rto, runbooks.Duration(r.endedAt.Sub(r.declaredAt)).Readable(),
			runbooks.Duration(deadline.Sub(r.endedAt)).Readable(), deadline.UTC().Format("15:04:05 UTC"))
	case r.breached:
		line("%s — RTO %s: **BREACHED** — the deadline was %s", header, rto, deadline.UTC().Format("15:04:05 UTC"))
	default:
		line("%s — RTO %s: deadline **%s**", header, rto, deadline.UTC().Format("15:04:05 UTC"))
	}
	if refused := r.currentRefusal(); refused != "" {
		line("**Refused:** %s", refused)
	}
	for _, s := range running {
		line("▶ %s/%s running (attempt %d)", s.layer, s.spec.ID, s.attempts+1)
	}
	if nRunning > detailLines {
		line("… and %d more running", nRunning-detailLines)
	}
	return b.String()
}

// currentRefusal is the last refused signal while it still concerns the
// run: the step it was for still waits (or it was for the run as a whole).
func (r *run) currentRefusal() string {
	if r.refused == "" || r.finished {
		return ""
	}
	if s := r.steps[r.refusedStep]; s != nil && s.state != StateAwaitingApproval && s.state != StateAwaitingAck && s.state != StatePaused {
		return ""
	}
	return r.refused
}

// detailLines bounds each list in the current details (the pane is short).
const detailLines = 3

// status answers the status query.
func (r *run) status(ctx workflow.Context) Status {
	now := workflow.Now(ctx)
	info := workflow.GetInfo(ctx)
	st := Status{WorkflowID: info.WorkflowExecution.ID, Mode: r.req.Mode, State: r.liveState(), Layer: r.layer,
		RequestedBy: r.req.RequestedBy, DeclaredAt: r.declaredAt, RTOBreached: r.breached, Finished: r.finished, Runbook: r.req.Runbook}
	if !r.ready {
		return st
	}
	rb := r.rb()
	st.Runbook, st.Version, st.Hash = rb.Metadata.Name, rb.Metadata.Version, r.resolved.Hash
	st.RTO = rb.Spec.Objectives.RTO
	st.Deadline = r.declaredAt.Add(st.RTO.D())
	end := now
	if r.finished {
		end = r.endedAt
	}
	st.RTORemaining = runbooks.Duration(st.Deadline.Sub(end))
	st.ProjectedFinish = end.Add(r.remainingEstimate(now))
	for _, s := range r.order {
		ss := StepStatus{ID: s.spec.ID, Layer: s.layer, Action: s.spec.Action, State: s.state, Attempts: s.attempts, Error: s.err}
		if !s.started.IsZero() {
			t := s.started
			ss.Started = &t
			ss.Duration = runbooks.Duration(stepEnd(s, now).Sub(s.started))
		}
		ss.Member = s.member
		st.Steps = append(st.Steps, ss)
		if p, ok := r.pending(s); ok {
			st.Pending = append(st.Pending, p)
		}
	}
	st.Plan = rb.IsPlan()
	st.Refused = r.currentRefusal()
	st.Pending = append(st.Pending, r.memberPending()...)
	if !r.finished {
		for _, c := range r.blockingChecks() {
			st.Pending = append(st.Pending, r.checkPending(c))
		}
	}
	return st
}

func stepEnd(s *step, now time.Time) time.Time {
	if terminal(s.state) && !s.ended.IsZero() {
		return s.ended
	}
	return now
}

// pending describes what a person must do for the step, with the command.
func (r *run) pending(s *step) (Pending, bool) {
	id, sid := r.workflowID, s.spec.ID
	var p Pending
	var what string
	switch s.state {
	case StateAwaitingApproval:
		a := s.spec.Approval
		have := r.approvedBy(s)
		p = Pending{Kind: "approval", From: a.From, Have: have, Need: r.needed(s), Approvers: r.approversLeft(s, have),
			Command: fmt.Sprintf("lifeboat approve %s %s --as NAME", id, sid),
			Signal:  fmt.Sprintf(`%s {"step": %q, "by": "NAME"}`, MsgApprove, sid)}
		kind := "approval(s)"
		if r.signedOnly(MsgApprove, s) {
			kind = "signed approval(s)"
			p.Signal = r.signedSignal(MsgApprove, sid)
		}
		what = fmt.Sprintf("step %s needs %d %s from %s (have %d)", sid, r.needed(s), kind, strings.Join(a.From, " or "), len(have))
		if len(p.Approvers) > 0 {
			what += "; may approve: " + strings.Join(p.Approvers, ", ")
		}
	case StateAwaitingAck:
		p = Pending{Kind: "acknowledgement", Command: fmt.Sprintf("lifeboat ack %s %s --as NAME", id, sid),
			Signal: fmt.Sprintf(`%s {"step": %q, "by": "NAME"}`, MsgAck, sid)}
		if r.signedOnly(MsgAck, s) {
			p.Signal = r.signedSignal(MsgAck, sid)
		}
		what = fmt.Sprintf("step %s waits for an acknowledgement", sid)
		if text, _ := s.spec.With["instructions"].(string); text != "" && s.hints.Human {
			what += fmt.Sprintf(" (instructions: %s)", capTextAt(text, 200))
		}
	case StatePaused:
		p = Pending{Kind: "operator", Command: fmt.Sprintf("lifeboat retry|skip %s %s, or lifeboat abort %s", id, sid, id),
			Signal: fmt.Sprintf(`%s|%s {"step": %q, "by": "NAME"}`, MsgRetry, MsgSkip, sid)}
		if r.signedOnly(MsgSkip, s) {
			p.Signal = fmt.Sprintf(`%s {"step": %q, "by": "NAME"}; or %s`, MsgRetry, sid, r.signedSignal(MsgSkip, sid))
		}
		what = fmt.Sprintf("step %s is paused (%s)", sid, s.err)
	default:
		return Pending{}, false
	}
	p.Step, p.Since, p.Message = sid, s.waitingSince, what+": "+p.Command
	return p, true
}

// signedOnly is true when only a signed msg about s counts (or is taken):
// the policy row wants a signature and the worker has allowed signers, or,
// for runs before the one authority, a gate demanding separation.
func (r *run) signedOnly(msg string, s *step) bool {
	if !r.authority {
		return msg == MsgApprove && r.signedDecisions && s.spec.Approval != nil && s.spec.Approval.Separate
	}
	row := rule(msg, r.about(msg, s))
	return row != nil && row.Signed && r.provenOnly()
}

// signedSignal is the hint for the Temporal UI's signal dialog where only a
// signed message counts: what to paste, not a JSON that would be refused
// or recorded as unproven.
func (r *run) signedSignal(msg, step string) string {
	return fmt.Sprintf("%s%slifeboat sign %s %s %s --as NAME%s", msg, signedVia, msg, r.workflowID, step, signedTail)
}

// signedVia and signedTail frame the command in a signed signal hint; the
// current details set that command as code.
const signedVia, signedTail = " with the JSON that ", " prints"

// approversLeft are the people of the gate's groups who may still approve,
// in the runbook's order: not those who have, nor the requester of the run
// when the gate wants a separate approver.
func (r *run) approversLeft(s *step, have []string) []string {
	a := s.spec.Approval
	var out []string
	for _, g := range a.From {
		for _, who := range r.rb().Spec.Approvers[g] {
			if slices.Contains(have, who) || slices.Contains(out, who) || (a.Separate && who == r.req.RequestedBy) {
				continue
			}
			out = append(out, who)
		}
	}
	return out
}

// remainingEstimate projects the time left: for each layer not yet ended, the
// longest chain of its unfinished steps by estimate (expect, else timeout).
func (r *run) remainingEstimate(now time.Time) time.Duration {
	var total time.Duration
	layers := append(r.rb().Spec.Layers.Ordered(), runbooks.Layer{Name: runbooks.MembersLayer}, runbooks.Layer{Name: runbooks.TeardownLayer})
	for _, l := range layers {
		var steps []runbooks.Step
		for _, s := range r.order {
			if s.layer == l.Name {
				steps = append(steps, s.spec)
			}
		}
		if len(steps) == 0 {
			continue
		}
		d, _ := runbooks.LongestChain(steps, func(spec runbooks.Step) time.Duration {
			s := r.steps[spec.ID]
			switch {
			case terminal(s.state):
				return 0
			case s.state == StateRunning:
				return max(spec.Estimate()-now.Sub(s.started), 0)
			}
			return spec.Estimate()
		})
		total += d
	}
	return total
}
