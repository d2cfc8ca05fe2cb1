package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// liveState is the run's state as shown to people: what it waits on first.
func (r *run) liveState() string {
	if r.finished || !r.ready || r.state == RunTearingDown {
		return r.state
	}
	if r.aborted {
		return "aborting"
	}
	has := map[string]bool{}
	for _, s := range r.order {
		has[s.state] = true
	}
	for _, st := range []string{StateAwaitingApproval, StatePaused, StateAwaitingAck} {
		if has[st] {
			return st
		}
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
		workflow.SetCurrentDetails(ctx, r.details(ctx))
	}
}

// details is the Markdown shown as the workflow's current details in the UI.
func (r *run) details(ctx workflow.Context) string {
	st := r.status(ctx)
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** v%d — %s — **%s**", st.Runbook, st.Version, st.Mode, st.State)
	if st.Layer != "" {
		fmt.Fprintf(&b, " — layer %s", st.Layer)
	}
	fmt.Fprintf(&b, "\n\nRTO %s: ", st.RTO)
	if st.RTOBreached {
		b.WriteString("**BREACHED**")
	} else {
		fmt.Fprintf(&b, "%s remaining", st.RTORemaining)
	}
	for _, p := range st.Pending {
		fmt.Fprintf(&b, "\n\n⏳ %s", p.Message)
	}
	for _, s := range st.Steps {
		if s.State == StateRunning || s.State == StatePaused {
			fmt.Fprintf(&b, "\n\n▶ %s/%s %s (attempts %d)", s.Layer, s.ID, s.State, s.Attempts)
		}
	}
	return b.String()
}

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
		st.Steps = append(st.Steps, ss)
		if p, ok := r.pending(s); ok {
			st.Pending = append(st.Pending, p)
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
	id := r.workflowID
	switch s.state {
	case StateAwaitingApproval:
		a := s.spec.Approval
		have := approvedBy(s)
		return Pending{Step: s.spec.ID, Kind: "approval", From: a.From, Have: have, Need: a.Needed(), Since: s.waitingSince,
			Message: fmt.Sprintf("step %s needs %d approval(s) from %s (have %d): lifeboat approve %s %s --as NAME",
				s.spec.ID, a.Needed(), strings.Join(a.From, " or "), len(have), id, s.spec.ID)}, true
	case StateAwaitingAck:
		return Pending{Step: s.spec.ID, Kind: "acknowledgement", Since: s.waitingSince,
			Message: fmt.Sprintf("step %s waits for an acknowledgement: lifeboat ack %s %s --as NAME", s.spec.ID, id, s.spec.ID)}, true
	case StatePaused:
		return Pending{Step: s.spec.ID, Kind: "operator", Since: s.waitingSince,
			Message: fmt.Sprintf("step %s is paused (%s): lifeboat retry|skip %s %s, or lifeboat abort %s", s.spec.ID, s.err, id, s.spec.ID, id)}, true
	}
	return Pending{}, false
}

// remainingEstimate projects the time left: for each layer not yet ended, the
// longest chain of its unfinished steps by estimate (expect, else timeout).
func (r *run) remainingEstimate(now time.Time) time.Duration {
	var total time.Duration
	layers := append(r.rb().Spec.Layers.Ordered(), runbooks.Layer{Name: runbooks.TeardownLayer})
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
