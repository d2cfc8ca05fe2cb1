package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
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
	if err := registerMessage(ctx, r, MsgOverride, r.checkOverride, r.applyOverride); err != nil {
		return err
	}
	return registerMessage(ctx, r, MsgNote, r.checkNote, r.applyNote)
}

// registerMessage installs message name as an update and a signal. Both
// verify the sender's signature first (prove), then the message's own
// rules (check, which sees the proof: nil when unproven); only then does
// apply change the run, and the signature is spent.
func registerMessage[T Signable](ctx workflow.Context, r *run, name string, check func(T, *proof.Proof) error, apply func(workflow.Context, T, *proof.Proof) Reply) error {
	validate := func(ctx workflow.Context, msg T) (*proof.Proof, error) {
		p, err := r.prove(ctx, msg)
		if err != nil {
			return nil, err
		}
		return p, check(msg, p)
	}
	accept := func(ctx workflow.Context, msg T, p *proof.Proof) Reply {
		r.refused, r.refusedStep = "", "" // the run moved on
		r.spend(p)
		reply := apply(ctx, msg, p)
		r.publish(ctx)
		return reply
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, name,
		func(ctx workflow.Context, msg T) (Reply, error) {
			if id := r.forwardable(msg); id != "" {
				r.forward(ctx, name, id, msg)
				return Reply{Step: msg.decision().Step, State: "forwarded",
					Message: fmt.Sprintf("forwarded to member run %s, which checks it as its own: lifeboat status %s shows the outcome", id, id)}, nil
			}
			// The validator accepted it in this same workflow task (and
			// does not run on replay): the proof is the same again, and is
			// never dropped silently (versionOneAuthority).
			p, err := r.prove(ctx, msg)
			if err != nil && r.authority {
				return Reply{}, err
			}
			return accept(ctx, msg, p), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, msg T) error {
			if id, err := r.forwardTarget(msg); err != nil || id != "" {
				return err // ambiguous, or the member's run checks it
			}
			_, err := validate(ctx, msg)
			return err
		}},
	)
	if err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, name)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var msg T
			ch.Receive(ctx, &msg)
			id, err := r.forwardTarget(msg)
			if id != "" {
				r.forward(ctx, name, id, msg)
				continue
			}
			var p *proof.Proof
			if err == nil {
				p, err = validate(ctx, msg)
			}
			if err != nil {
				r.refuseSignal(ctx, name, msg, err)
				continue
			}
			accept(ctx, msg, p)
		}
	})
	return nil
}

// refuseSignal records a refused signal (the sender of a signal gets no
// answer): a note, an event, and the current details' Refused line. The
// signature itself is left out of the text: it is long and proves nothing.
func (r *run) refuseSignal(ctx workflow.Context, name string, msg Signable, err error) {
	now := workflow.Now(ctx)
	b, _ := json.Marshal(msg)
	shown := string(b)
	if sig := msg.Proof().Signature; sig != "" {
		b, _ = json.Marshal(sig)
		shown = strings.ReplaceAll(shown, string(b), `"(signature)"`)
	}
	r.refusals.add(record.NoteRecord{At: now, By: "lifeboat", Text: capText(fmt.Sprintf("refused %s signal %s: %v", name, shown, err))},
		record.EventRecord{At: now, Kind: "signal-refused", Step: msg.decision().Step, By: msg.Actor(), Client: msg.Proof().Client,
			Text: capText(fmt.Sprintf("%s: %v", name, err))})
	// The current details pane is short: who and what, as a sentence.
	what := "a " + name + " signal"
	if strings.ContainsRune("aeiou", rune(name[0])) {
		what = "an " + name + " signal"
	}
	if step := msg.decision().Step; step != "" {
		what += " for step " + step
	}
	r.refused = capText(fmt.Sprintf("%s from %s was refused at %s: %s.", what, orSomeone(msg.Actor()),
		now.UTC().Format("15:04:05 UTC"), strings.TrimSuffix(err.Error(), ".")))
	r.refusedStep = msg.decision().Step
	r.publish(ctx)
}

// notCounted shows on the run's current details (the UI's page) that an
// unproven decision was recorded without counting, and what to do instead.
func (r *run) notCounted(ctx workflow.Context, name string, s *step, by string) {
	r.refused = capText(fmt.Sprintf("the %s of step %s from %s at %s is recorded but not counted: only a signed decision counts on this worker. Paste the JSON that lifeboat sign %s %s %s --as %s prints.",
		name, s.spec.ID, orSomeone(by), workflow.Now(ctx).UTC().Format("15:04:05 UTC"), name, r.workflowID, s.spec.ID, orName(by)))
	r.refusedStep = s.spec.ID
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

// stateInWords says what a step is doing, and for one that has not started
// what it waits for: "it waits for dns, db (steps it needs)", "it is
// pending: its layer storage starts after layer secrets", "it is running".
func (r *run) stateInWords(s *step) string {
	switch s.state {
	case StateWaiting:
		var open []string
		for _, n := range s.spec.Needs {
			if dep, ok := r.steps[n]; ok && !terminal(dep.state) {
				open = append(open, n)
			}
		}
		if len(open) > 0 {
			return fmt.Sprintf("it waits for %s to end: the step%s it needs", strings.Join(open, ", "), plural(len(open)))
		}
	case StatePending:
		if r.layer != "" && r.layer != s.layer {
			return fmt.Sprintf("it is pending: its layer %s starts after layer %s", s.layer, r.layer)
		}
	}
	return "it is " + s.state
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkGate is the state an approve or reject needs, then the policy.
func (r *run) checkGate(s *step, by, verb string, p *proof.Proof) (bool, error) {
	if s.state != StateAwaitingApproval {
		return false, fmt.Errorf("step %s is not awaiting approval (%s)", s.spec.ID, r.stateInWords(s))
	}
	return r.authorize(verb, s, by, p)
}

func (r *run) checkApprove(m Approve, p *proof.Proof) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	counts, err := r.checkGate(s, m.By, MsgApprove, p)
	if err != nil || !counts {
		return err // an uncounted approval is recorded as such
	}
	for _, who := range r.approvedBy(s) {
		if who == m.By {
			return fmt.Errorf("%s has already approved step %s; %d distinct approvers are needed", m.By, s.spec.ID, r.needed(s))
		}
	}
	return nil
}

func (r *run) applyApprove(ctx workflow.Context, m Approve, p *proof.Proof) Reply {
	s := r.steps[m.Step]
	s.approvals = append(s.approvals, record.ApprovalRecord{By: m.By, Decision: "approved", Comment: capText(m.Comment), At: workflow.Now(ctx),
		Proof: p, Client: m.Client})
	have, need := len(r.approvedBy(s)), r.needed(s)
	if counts, _ := r.authorize(MsgApprove, s, m.By, p); !counts {
		text := fmt.Sprintf("%s approved %s unproven: recorded, not counted (%d of %d); only a signed decision counts on this worker", m.By, s.spec.ID, have, need)
		r.actorEvent(ctx, "approve", s.spec.ID, signer(m.By, p, m.Signed), text)
		r.notCounted(ctx, MsgApprove, s, m.By)
		return Reply{Step: s.spec.ID, State: s.state, Message: text + ": lifeboat approve … --as " + m.By + " with your SSH key, or paste what lifeboat sign approve prints"}
	}
	r.actorEvent(ctx, "approve", s.spec.ID, signer(m.By, p, m.Signed), fmt.Sprintf("%s approved %s (%d of %d)", m.By, s.spec.ID, have, need))
	msg := fmt.Sprintf("approval %d of %d recorded", have, need)
	if have >= need {
		msg += "; the step starts now"
	}
	return Reply{Step: s.spec.ID, State: s.state, Message: msg}
}

func (r *run) checkReject(m Reject, p *proof.Proof) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if _, err := r.checkGate(s, m.By, MsgReject, p); err != nil {
		return err
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("give a reason for rejecting step %s", s.spec.ID)
	}
	return nil
}

func (r *run) applyReject(ctx workflow.Context, m Reject, p *proof.Proof) Reply {
	s := r.steps[m.Step]
	s.approvals = append(s.approvals, record.ApprovalRecord{By: m.By, Decision: "rejected", Comment: capText(m.Reason), At: workflow.Now(ctx),
		Proof: p, Client: m.Client})
	s.rejected = true
	r.actorEvent(ctx, "reject", s.spec.ID, signer(m.By, p, m.Signed), fmt.Sprintf("%s rejected %s: %s", m.By, s.spec.ID, capText(m.Reason)))
	return Reply{Step: s.spec.ID, State: StatePaused, Message: "rejected; the step is paused: retry reopens the gate, skip or abort end it"}
}

func (r *run) checkAck(m Ack, p *proof.Proof) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if s.state != StateAwaitingAck {
		return fmt.Errorf("step %s is not awaiting an acknowledgement (%s)", s.spec.ID, r.stateInWords(s))
	}
	_, err = r.authorize(MsgAck, s, m.By, p)
	return err
}

func (r *run) applyAck(ctx workflow.Context, m Ack, p *proof.Proof) Reply {
	s := r.steps[m.Step]
	s.acked = true
	s.approvals = append(s.approvals, record.ApprovalRecord{By: m.By, Decision: "acknowledged", Comment: capText(m.Comment), At: workflow.Now(ctx),
		Proof: p, Client: m.Client})
	r.actorEvent(ctx, "ack", s.spec.ID, signer(m.By, p, m.Signed), fmt.Sprintf("%s acknowledged %s", m.By, s.spec.ID))
	return Reply{Step: s.spec.ID, State: StateSucceeded, Message: "acknowledged"}
}

func (r *run) checkRetry(m Retry, p *proof.Proof) error {
	s, err := r.lookup(m.Step)
	if err != nil {
		return err
	}
	if s.state != StatePaused {
		return fmt.Errorf("step %s is not paused (it is %s): only a failed or rejected step can be retried", s.spec.ID, s.state)
	}
	_, err = r.authorize(MsgRetry, s, m.By, p)
	return err
}

func (r *run) applyRetry(ctx workflow.Context, m Retry, p *proof.Proof) Reply {
	s := r.steps[m.Step]
	s.decision = MsgRetry
	r.actorEvent(ctx, "retry", s.spec.ID, signer(m.By, p, m.Signed), fmt.Sprintf("%s retried %s", orSomeone(m.By), s.spec.ID))
	return Reply{Step: s.spec.ID, State: StateRunning, Message: "retrying"}
}

func (r *run) checkSkip(m Skip, p *proof.Proof) error {
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
	counts, err := r.authorize(MsgSkip, s, m.By, p)
	if err == nil && counts && r.about(MsgSkip, s) == AboutGate && slices.Contains(r.skippedBy(s), m.By) {
		return fmt.Errorf("%s has already asked to skip step %s; %d distinct approvers are needed", m.By, s.spec.ID, r.needed(s))
	}
	return err
}

func (r *run) applySkip(ctx workflow.Context, m Skip, p *proof.Proof) Reply {
	s := r.steps[m.Step]
	who := signer(m.By, p, m.Signed)
	if r.authority && r.about(MsgSkip, s) == AboutGate {
		// Skipping a gate is the gate's decision: a vote towards its quorum.
		counts, _ := r.authorize(MsgSkip, s, m.By, p)
		s.approvals = append(s.approvals, record.ApprovalRecord{By: m.By, Decision: DecisionSkip, Comment: capText(m.Reason), At: workflow.Now(ctx),
			Proof: p, Client: m.Client})
		have, need := len(r.skippedBy(s)), r.needed(s)
		if !counts {
			text := fmt.Sprintf("%s asked to skip %s unproven: recorded, not counted (%d of %d)", m.By, s.spec.ID, have, need)
			r.actorEvent(ctx, "skip-vote", s.spec.ID, who, text)
			r.notCounted(ctx, MsgSkip, s, m.By)
			return Reply{Step: s.spec.ID, State: s.state, Message: text}
		}
		r.actorEvent(ctx, "skip-vote", s.spec.ID, who, fmt.Sprintf("%s asked to skip %s (%d of %d): %s", m.By, s.spec.ID, have, need, capText(m.Reason)))
		if have < need {
			return Reply{Step: s.spec.ID, State: s.state, Message: fmt.Sprintf("skip %d of %d recorded: the gate's approvers decide a skip as they decide an approval", have, need)}
		}
	}
	s.decision, s.skipper, s.skipReason = MsgSkip, who, capText(m.Reason)
	return Reply{Step: s.spec.ID, State: StateSkipped, Message: "skipped"}
}

func (r *run) checkAbort(m Abort, p *proof.Proof) error {
	if err := r.checkReady(); err != nil {
		return err
	}
	if r.aborted {
		return fmt.Errorf("the run is already aborted (%s)", r.abortReason)
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("give a reason for aborting: the evidence records it")
	}
	_, err := r.authorize(MsgAbort, nil, m.By, p)
	return err
}

func (r *run) applyAbort(ctx workflow.Context, m Abort, p *proof.Proof) Reply {
	r.abort(ctx, signer(m.By, p, m.Signed), capText(m.Reason))
	return Reply{State: RunAborted, Message: "aborting: running steps are cancelled; drill teardown still runs"}
}

func (r *run) checkNote(m Note, p *proof.Proof) error {
	if r.finished {
		return fmt.Errorf("the run has finished (%s)", r.state)
	}
	if strings.TrimSpace(m.Text) == "" {
		return fmt.Errorf("the note is empty")
	}
	if len(r.notes) >= MaxNotes {
		return fmt.Errorf("this run holds %d notes, the most one run keeps: put the rest in the incident channel", MaxNotes)
	}
	_, err := r.authorize(MsgNote, nil, m.By, p)
	return err
}

func (r *run) applyNote(ctx workflow.Context, m Note, p *proof.Proof) Reply {
	r.notes = append(r.notes, record.NoteRecord{At: workflow.Now(ctx), By: m.By, Text: capText(m.Text)})
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
