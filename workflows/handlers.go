package workflows

import (
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// registerHandlers installs the status query and, for every operator message,
// an update (validator + handler) and a mirror signal. A signal runs the same
// validator; a refused signal is recorded as a note and changes nothing.
func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.status(ctx), nil }); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgApprove, r.checkApprove, r.applyApprove); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgReject, r.checkReject, r.applyReject); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgAck, r.checkAck, r.applyAck); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgRetry, r.checkRetry, r.applyRetry); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgSkip, r.checkSkip, r.applySkip); err != nil {
		return err
	}
	if err := registerMessage(ctx, r, MsgAbort, r.checkAbort, r.applyAbort); err != nil {
		return err
	}
	return registerMessage(ctx, r, MsgNote, r.checkNote, r.applyNote)
}

func registerMessage[T any](ctx workflow.Context, r *run, name string, check func(T) error, apply func(workflow.Context, T) Reply) error {
	err := workflow.SetUpdateHandlerWithOptions(ctx, name,
		func(ctx workflow.Context, msg T) (Reply, error) {
			reply := apply(ctx, msg)
			r.publish(ctx)
			return reply, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, msg T) error { return check(msg) }},
	)
	if err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, name)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var msg T
			ch.Receive(ctx, &msg)
			if err := check(msg); err != nil {
				now := workflow.Now(ctx)
				r.refusals.add(runbooks.NoteRecord{At: now, By: "lifeboat", Text: capText(fmt.Sprintf("refused %s signal %+v: %v", name, msg, err))},
					runbooks.EventRecord{At: now, Kind: "signal-refused", Text: capText(fmt.Sprintf("%s: %v", name, err))})
				r.refused = capText(fmt.Sprintf("%s signal %+v at %s: %v", name, msg, now.UTC().Format("15:04:05"), err))
				r.publish(ctx)
				continue
			}
			apply(ctx, msg)
			r.publish(ctx)
		}
	})
	return nil
}

func (r *run) checkReady() error {
	if !r.ready {
		return fmt.Errorf("the run is still resolving its runbook; try again in a moment")
	}
	if r.finished {
		return fmt.Errorf("the run has finished (%s)", r.state)
	}
	return nil
}

func (r *run) lookup(id string) (*step, error) {
	if err := r.checkReady(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("no step given: name one of %s", strings.Join(r.stepIDs(), ", "))
	}
	s, ok := r.steps[id]
	if !ok {
		return nil, fmt.Errorf("unknown step %q: this run's steps are %s", id, strings.Join(r.stepIDs(), ", "))
	}
	return s, nil
}

func (r *run) stepIDs() []string {
	ids := make([]string, len(r.order))
	for i, s := range r.order {
		ids[i] = s.spec.ID
	}
	return ids
}

// checkApprover applies the gate's rules to a would-be approver.
func (r *run) checkApprover(s *step, by, verb string) error {
	if s.state != StateAwaitingApproval {
		return fmt.Errorf("step %s is not awaiting approval (it is %s)", s.spec.ID, s.state)
	}
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("say who you are: %s needs --as NAME", verb)
	}
	people := r.approvers(s)
	if !people[by] {
		return fmt.Errorf("%s is not in the approver groups of step %s (%s: %s)", by, s.spec.ID,
			strings.Join(s.spec.Approval.From, ", "), strings.Join(sortedSet(people), ", "))
	}
	if s.spec.Approval.Separate && by == r.req.RequestedBy {
		return fmt.Errorf("%s requested this run and step %s requires separation of duties: another approver must %s", by, s.spec.ID, verb)
	}
	return nil
}

func (r *run) checkApprove(m Approve) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if err := r.checkApprover(s, m.By, "approve"); err != nil {
		return err
	}
	for _, who := range approvedBy(s) {
		if who == m.By {
			return fmt.Errorf("%s has already approved step %s; %d distinct approvers are needed", m.By, s.spec.ID, s.spec.Approval.Needed())
		}
	}
	return nil
}

func (r *run) applyApprove(ctx workflow.Context, m Approve) Reply {
	s := r.steps[m.Step]
	s.approvals = append(s.approvals, runbooks.ApprovalRecord{By: m.By, Decision: "approved", Comment: capText(m.Comment), At: workflow.Now(ctx)})
	have, need := len(approvedBy(s)), s.spec.Approval.Needed()
	r.event(ctx, "approve", s.spec.ID, m.By, fmt.Sprintf("%s approved %s (%d of %d)", m.By, s.spec.ID, have, need))
	msg := fmt.Sprintf("approval %d of %d recorded", have, need)
	if have >= need {
		msg += "; the step starts now"
	}
	return Reply{Step: s.spec.ID, State: s.state, Message: msg}
}

func (r *run) checkReject(m Reject) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if err := r.checkApprover(s, m.By, "reject"); err != nil {
		return err
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("give a reason for rejecting step %s", s.spec.ID)
	}
	return nil
}

func (r *run) applyReject(ctx workflow.Context, m Reject) Reply {
	s := r.steps[m.Step]
	s.approvals = append(s.approvals, runbooks.ApprovalRecord{By: m.By, Decision: "rejected", Comment: capText(m.Reason), At: workflow.Now(ctx)})
	s.rejected = true
	r.event(ctx, "reject", s.spec.ID, m.By, fmt.Sprintf("%s rejected %s: %s", m.By, s.spec.ID, capText(m.Reason)))
	return Reply{Step: s.spec.ID, State: StatePaused, Message: "rejected; the step is paused: retry reopens the gate, skip or abort end it"}
}

func (r *run) checkAck(m Ack) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if s.state != StateAwaitingAck {
		return fmt.Errorf("step %s is not awaiting an acknowledgement (it is %s)", s.spec.ID, s.state)
	}
	if strings.TrimSpace(m.By) == "" {
		return fmt.Errorf("say who you are: ack needs --as NAME")
	}
	return nil
}

func (r *run) applyAck(ctx workflow.Context, m Ack) Reply {
	s := r.steps[m.Step]
	s.acked = true
	s.approvals = append(s.approvals, runbooks.ApprovalRecord{By: m.By, Decision: "acknowledged", Comment: capText(m.Comment), At: workflow.Now(ctx)})
	r.event(ctx, "ack", s.spec.ID, m.By, fmt.Sprintf("%s acknowledged %s", m.By, s.spec.ID))
	return Reply{Step: s.spec.ID, State: StateSucceeded, Message: "acknowledged"}
}

func (r *run) checkRetry(m Retry) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if s.state != StatePaused {
		return fmt.Errorf("step %s is not paused (it is %s): only a failed or rejected step can be retried", s.spec.ID, s.state)
	}
	return nil
}

func (r *run) applyRetry(ctx workflow.Context, m Retry) Reply {
	s := r.steps[m.Step]
	s.decision = MsgRetry
	r.event(ctx, "retry", s.spec.ID, m.By, fmt.Sprintf("%s retried %s", orSomeone(m.By), s.spec.ID))
	return Reply{Step: s.spec.ID, State: StateRunning, Message: "retrying"}
}

func (r *run) checkSkip(m Skip) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if terminal(s.state) {
		return fmt.Errorf("step %s has already ended (%s)", s.spec.ID, s.state)
	}
	if s.state == StateRunning {
		return fmt.Errorf("step %s is running: wait for it to end, or abort the run", s.spec.ID)
	}
	if s.decision == MsgSkip {
		return fmt.Errorf("step %s is already marked to be skipped", s.spec.ID)
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("give a reason for skipping step %s: the evidence records it", s.spec.ID)
	}
	return nil
}

func (r *run) applySkip(ctx workflow.Context, m Skip) Reply {
	s := r.steps[m.Step]
	s.decision, s.skippedBy, s.skipReason = MsgSkip, m.By, capText(m.Reason)
	return Reply{Step: s.spec.ID, State: StateSkipped, Message: "skipped"}
}

func (r *run) checkAbort(m Abort) error {
	if err := r.checkReady(); err != nil {
		return err
	}
	if r.aborted {
		return fmt.Errorf("the run is already aborted (%s)", r.abortReason)
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("give a reason for aborting: the evidence records it")
	}
	return nil
}

func (r *run) applyAbort(ctx workflow.Context, m Abort) Reply {
	r.abort(ctx, m.By, capText(m.Reason))
	return Reply{State: RunAborted, Message: "aborting: running steps are cancelled; drill teardown still runs"}
}

func (r *run) checkNote(m Note) error {
	if r.finished {
		return fmt.Errorf("the run has finished (%s)", r.state)
	}
	if strings.TrimSpace(m.Text) == "" {
		return fmt.Errorf("the note is empty")
	}
	if len(r.notes) >= MaxNotes {
		return fmt.Errorf("this run holds %d notes, the most one run keeps: put the rest in the incident channel", MaxNotes)
	}
	return nil
}

func (r *run) applyNote(ctx workflow.Context, m Note) Reply {
	r.notes = append(r.notes, runbooks.NoteRecord{At: workflow.Now(ctx), By: m.By, Text: capText(m.Text)})
	return Reply{State: r.state, Message: "noted"}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orSomeone(by string) string {
	if by == "" {
		return "an operator"
	}
	return by
}
