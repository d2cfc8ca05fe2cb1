package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// runStep takes one step from waiting to a terminal state.
func (r *run) runStep(ctx workflow.Context, s *step) {
	_ = workflow.Await(ctx, func() bool { return r.mayDecide(s) })
	if r.startStep(ctx, s) {
		r.stepLoop(ctx, s)
	}
}

// mayDecide is true once the step can be started or ended without running:
// every step it needs has ended, or the run was aborted (teardown goes on).
func (r *run) mayDecide(s *step) bool {
	return (r.aborted && s.layer != runbooks.TeardownLayer) || r.needsDone(s)
}

// startStep decides a step that may be decided: false when it ended without
// running (aborted, skipped by an operator or the drill, blocked by a need
// that did not succeed).
func (r *run) startStep(ctx workflow.Context, s *step) bool {
	teardown := s.layer == runbooks.TeardownLayer
	switch {
	case r.aborted && !teardown:
		s.state = StateNotRun
		return false
	case s.decision == MsgSkip:
		r.endSkipped(ctx, s)
		return false
	case r.req.Mode == ModeDrill && r.drillSkips(s.spec.ID):
		s.skipper, s.skipReason = actor{by: "runbook"}, "listed in spec.drill.skip"
		r.endSkipped(ctx, s)
		return false
	case r.truthful:
		if dep := r.unmetNeed(s); dep != nil {
			s.state = StateBlocked
			s.err = fmt.Sprintf("needs %s, which %s", dep.spec.ID, dep.state)
			r.event(ctx, "blocked", s.spec.ID, "", fmt.Sprintf("step %s not run: it %s", s.spec.ID, s.err))
			return false
		}
	}
	return true
}

// stepLoop passes the step's gate, runs it (or waits for its
// acknowledgement) and, when it fails, follows its failure policy, again
// while an operator retries it.
func (r *run) stepLoop(ctx workflow.Context, s *step) {
	for {
		if r.needsPerson(s) {
			// Teardown never waits on people: it must run after an abort too.
			// A plan's dry run or pre-check changes nothing: its members'
			// gates do not wait (each member asks its own steps).
			if s.spec.Approval != nil && !s.gatePassed && s.layer != runbooks.TeardownLayer && !(r.authority && r.changesNothing()) {
				if !r.approvalGate(ctx, s) {
					return
				}
			}
			// A plan's member in a tabletop is a tabletop run of its own.
			if (r.req.Mode == ModeTabletop && s.spec.Action != runbooks.ActionPlanMember) || s.hints.Human {
				r.acknowledgement(ctx, s)
				return
			}
		}
		if !r.afterExecute(ctx, s, r.execute(ctx, s)) {
			return
		}
	}
}

// needsPerson is true when the step waits for someone before (or instead
// of) running: a gate not yet passed, a tabletop or a human step.
func (r *run) needsPerson(s *step) bool {
	gate := s.spec.Approval != nil && !s.gatePassed && s.layer != runbooks.TeardownLayer
	return gate || (r.req.Mode == ModeTabletop && s.spec.Action != runbooks.ActionPlanMember) || s.hints.Human
}

// afterExecute records how the step's execution ended (err nil: it
// succeeded) and applies its failure policy; true when an operator retries it.
func (r *run) afterExecute(ctx workflow.Context, s *step, err error) bool {
	teardown := s.layer == runbooks.TeardownLayer
	if err == nil {
		s.state = StateSucceeded
		return false
	}
	if r.aborted && !teardown {
		s.state = StateAborted
		return false
	}
	policy := s.spec.EffectiveOnFailure()
	if teardown {
		policy = runbooks.OnFailureContinue
	}
	switch policy {
	case runbooks.OnFailureContinue:
		s.state = StateFailed
		return false
	case runbooks.OnFailureAbort:
		s.state = StateFailed
		r.abort(ctx, actor{by: "runbook"}, fmt.Sprintf("step %s failed and its onFailure is abort: %s", s.spec.ID, s.err))
		return false
	}
	return r.pause(ctx, s, StateFailed)
}

// needsDone is true when every step s needs has ended.
func (r *run) needsDone(s *step) bool {
	for _, n := range s.spec.Needs {
		if dep, ok := r.steps[n]; ok && !terminal(dep.state) {
			return false
		}
	}
	return true
}

// unmetNeed is the first step s needs that ended without success (an
// operator's or the drill's skip counts as done), or nil.
func (r *run) unmetNeed(s *step) *step {
	for _, n := range s.spec.Needs {
		if dep, ok := r.steps[n]; ok && dep.state != StateSucceeded && dep.state != StateSkipped && !r.optionalMemberEnded(dep) {
			return dep
		}
	}
	return nil
}

// optionalMemberEnded is true for an optional plan member that has ended:
// the members after it start whatever its outcome (docs/runbooks.md, Recovery plans).
func (r *run) optionalMemberEnded(s *step) bool {
	return r.authority && s.spec.Action == runbooks.ActionPlanMember && s.spec.OnFailure == runbooks.OnFailureContinue && terminal(s.state)
}

func (r *run) drillSkips(id string) bool {
	d := r.rb().Spec.Drill
	if d == nil {
		return false
	}
	for _, s := range d.Skip {
		if s == id {
			return true
		}
	}
	return false
}

func (r *run) endSkipped(ctx workflow.Context, s *step) {
	s.state = StateSkipped
	r.actorEvent(ctx, "skip", s.spec.ID, s.skipper, fmt.Sprintf("step %s skipped: %s", s.spec.ID, s.skipReason))
}

// approvalGate waits for the step's approval quorum. It returns true when the
// step may run, false when the step has ended (skipped, rejected, aborted).
func (r *run) approvalGate(ctx workflow.Context, s *step) bool {
	a := *s.spec.Approval
	s.state = StateAwaitingApproval
	s.waitingSince = workflow.Now(ctx)
	// A reopened gate (retry after a rejection) counts only the decisions made
	// since; the earlier ones stay in the evidence.
	s.gateFrom, s.rejected = len(s.approvals), false
	r.publish(ctx)
	if p, ok := r.pending(s); ok {
		r.notify(ctx, NotifyApprovalNeeded, fmt.Sprintf("%s; from the UI: signal %s", p.Message, p.Signal))
	}
	decided := func() bool {
		return r.aborted || s.rejected || s.decision == MsgSkip || len(r.approvedBy(s)) >= r.needed(s)
	}
	endMarker := r.waitMarker(ctx, s)
	defer endMarker() // idempotent: the wait's end calls it first
	if a.Timeout > 0 {
		var ok bool
		var err error
		if r.markers { // the UI's timeline names the bar
			ok, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: a.Timeout.D(), TimerOptions: workflow.TimerOptions{
				Summary: fmt.Sprintf("approval of %s times out after %s (onTimeout: %s)", s.spec.ID, a.Timeout, cmp.Or(a.OnTimeout, runbooks.OnTimeoutAbort))}}, decided)
		} else {
			ok, err = workflow.AwaitWithTimeout(ctx, a.Timeout.D(), decided)
		}
		if err != nil && r.truthful {
			ok = true // cancelled: only an abort cancels the run's context; handled below
		}
		if !ok {
			switch a.OnTimeout {
			case runbooks.OnTimeoutProceed:
				r.event(ctx, "approval-timeout", s.spec.ID, "", fmt.Sprintf("no approval for %s within %s; proceeding as onTimeout: proceed says", s.spec.ID, a.Timeout))
				s.approvalWait += workflow.Now(ctx).Sub(s.waitingSince)
				s.gatePassed = true
				return true
			case runbooks.OnTimeoutEscalate:
				text := fmt.Sprintf("no approval for %s within %s; escalated, still waiting for %s", s.spec.ID, a.Timeout, strings.Join(a.From, " or "))
				r.event(ctx, "approval-escalated", s.spec.ID, "", text)
				r.publish(ctx)
				p, _ := r.pending(s)
				r.notify(ctx, NotifyApprovalEscalated, text+": "+p.Command)
				_ = workflow.Await(ctx, decided)
			default:
				s.approvalWait += workflow.Now(ctx).Sub(s.waitingSince)
				s.state = StateNotRun
				r.abort(ctx, actor{by: "runbook"}, fmt.Sprintf("no approval for step %s within %s (onTimeout: abort)", s.spec.ID, a.Timeout))
				return false
			}
		}
	} else {
		_ = workflow.Await(ctx, decided)
	}
	endMarker()
	s.approvalWait += workflow.Now(ctx).Sub(s.waitingSince)
	switch {
	case r.aborted:
		s.state = StateNotRun
		return false
	case s.decision == MsgSkip:
		r.endSkipped(ctx, s)
		return false
	case s.rejected:
		// A rejection pauses the run like a failure: retry reopens the gate.
		s.err = "approval rejected"
		return r.pause(ctx, s, StateRejected) && r.approvalGate(ctx, s)
	}
	s.gatePassed = true
	return true
}

// approvedBy lists who approved the step since its gate last opened.
func (r *run) approvedBy(s *step) []string { return r.counted(s, "approved") }

// skippedBy are the approvers who asked to skip the open gate.
func (r *run) skippedBy(s *step) []string { return r.counted(s, DecisionSkip) }

// DecisionSkip is an approver's request to skip a gate, as the evidence
// records it among the gate's decisions.
const DecisionSkip = "skip"

// counted are the distinct people whose decision of that kind counts at the
// open gate: only proven ones where the worker has allowed signers.
func (r *run) counted(s *step, decision string) []string {
	var out []string
	for _, a := range s.approvals[s.gateFrom:] {
		if a.Decision == decision && (a.Proof != nil || !r.provenOnly()) && !slices.Contains(out, a.By) {
			out = append(out, a.By)
		}
	}
	return out
}

// acknowledgement waits for a person to acknowledge the step (manual.task, or
// every step of a tabletop run). Nothing is executed.
func (r *run) acknowledgement(ctx workflow.Context, s *step) {
	s.state = StateAwaitingAck
	s.started = workflow.Now(ctx)
	s.waitingSince = s.started
	r.publish(ctx)
	endMarker := r.waitMarker(ctx, s)
	_ = workflow.Await(ctx, func() bool { return r.aborted || s.acked || s.decision == MsgSkip })
	endMarker()
	s.ended = workflow.Now(ctx)
	switch {
	case s.acked:
		s.state = StateSucceeded
		s.attempts = 1
		if r.req.Mode == ModeTabletop && !s.hints.Human {
			s.summary = "acknowledged (tabletop: nothing executed)"
		} else {
			s.summary = "acknowledged"
		}
	case s.decision == MsgSkip:
		r.endSkipped(ctx, s)
	default:
		s.state = StateAborted
	}
}

// pause waits for an operator after a failure or rejection (state is what the
// step ends as if the operator aborts). It returns true to try again.
func (r *run) pause(ctx workflow.Context, s *step, state string) bool {
	s.state, s.decision = StatePaused, ""
	s.waitingSince = workflow.Now(ctx)
	r.event(ctx, "paused", s.spec.ID, "", fmt.Sprintf("step %s paused: %s — retry, skip or abort", s.spec.ID, s.err))
	r.publish(ctx)
	if p, ok := r.pending(s); ok {
		r.notify(ctx, NotifyStepPaused, p.Message)
	}
	endMarker := r.waitMarker(ctx, s)
	_ = workflow.Await(ctx, func() bool { return r.aborted || s.decision != "" })
	endMarker()
	switch {
	case s.decision == MsgRetry:
		s.decision = ""
		s.retries++
		return true
	case s.decision == MsgSkip:
		r.endSkipped(ctx, s)
	default:
		s.state = state
	}
	return false
}

// execute runs the step's action as an activity, with the step's timeout and
// retry policy; attempts, result and error are recorded on the step.
func (r *run) execute(ctx workflow.Context, s *step) error {
	if s.spec.Action == runbooks.ActionPlanMember {
		return r.executeMember(ctx, s)
	}
	f, err := r.beginExecute(ctx, s)
	if err != nil {
		return err
	}
	return r.endExecute(ctx, s, f)
}

// beginExecute schedules the step's activity (its arguments resolved) and
// returns its future; an error when the arguments cannot be resolved.
func (r *run) beginExecute(ctx workflow.Context, s *step) (workflow.Future, error) {
	spec := s.spec
	var nonRetryable []string
	if spec.Retry != nil {
		nonRetryable = spec.Retry.NonRetryable
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: spec.EffectiveTimeout(),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: spec.Backoff(), BackoffCoefficient: 1, MaximumInterval: spec.Backoff(),
			MaximumAttempts: int32(spec.Attempts()), NonRetryableErrorTypes: nonRetryable,
		},
		ActivityID: spec.ID + "-" + fmt.Sprint(s.attempts),
	}
	if s.hints.Heartbeats {
		opts.HeartbeatTimeout = time.Minute
	}
	if r.truthful {
		// An abort waits until the activity has cancelled (and cleaned up)
		// before teardown starts; a 20s heartbeat timeout lets the
		// cancellation reach a waiting action within ~16s (the SDK sends
		// heartbeats at most every 0.8 × the timeout).
		opts.WaitForCancellation = true
		if s.hints.Heartbeats {
			opts.HeartbeatTimeout = 20 * time.Second
		}
	}
	actx := workflow.WithActivityOptions(ctx, opts)
	s.state, s.err, s.summary = StateRunning, "", ""
	if s.started.IsZero() {
		s.started = workflow.Now(ctx)
	}
	args, err := r.stepArgs(ctx, s)
	if err != nil {
		// Nothing ran: the step fails as a whole, and its failure policy
		// decides (a retry after the operator fixed the cause resolves again).
		s.ended, s.err = workflow.Now(ctx), err.Error()
		return nil, err
	}
	r.publish(ctx)
	in := r.stepInput(ctx, spec.ID, args)
	in.OperatorRetries = s.retries
	return workflow.ExecuteActivity(actx, spec.Action, in), nil
}

// endExecute records the result of the step's activity (f is ready, or Get
// blocks until it is): attempts, summary, outputs, or the error.
func (r *run) endExecute(ctx workflow.Context, s *step, f workflow.Future) error {
	var res runbooks.StepResult
	err := f.Get(ctx, &res)
	s.ended = workflow.Now(ctx)
	if err != nil {
		s.attempts += failedAttempts(err, s.spec.Attempts())
		s.err = causeMessage(err)
		return err
	}
	s.attempts += max(res.Attempt, 1)
	s.summary, s.outputs = res.Summary, res.Outputs
	if res.RecoveryPoint != nil {
		s.recovery = &res
	}
	return nil
}

// stepArgs resolves references to earlier steps' outputs and applies drill
// namespace mappings (to the resolved values too: a reference never leads a
// drill into production) and, for evidence.store, the evidence so far.
func (r *run) stepArgs(ctx workflow.Context, s *step) (map[string]any, error) {
	with := r.specArgs(s)
	if runbooks.HasRefs(with) && workflow.GetVersion(ctx, versionStepRefs, workflow.DefaultVersion, 1) == 1 {
		resolved, used, err := runbooks.ResolveRefs(with, r.output)
		s.inputs = used
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), "ReferenceUnresolved", nil)
		}
		with = resolved
	}
	args := r.mapArgs(s, with)
	if s.spec.Action == StoreActivity {
		ev := r.evidence(ctx)
		args["evidence"] = ev
	}
	return args, nil
}

// specArgs are the step's arguments as written, with spec.drill.with's
// overrides in a drill.
func (r *run) specArgs(s *step) map[string]any {
	if r.drilling() {
		return r.rb().Spec.Drill.Args(s.spec)
	}
	return s.spec.With
}

// mapArgs copies with, applying a drill's namespace mappings.
func (r *run) mapArgs(s *step, with map[string]any) map[string]any {
	args := make(map[string]any, len(with)+1)
	for k, v := range with {
		args[k] = v
	}
	if r.req.Mode == ModeDrill && r.rb().Spec.Drill != nil && s.layer != runbooks.TeardownLayer {
		r.rb().Spec.Drill.MapNamespaces(args)
	}
	return args
}

// versionStepRefs guards resolving ${{ steps.ID.outputs.NAME }} in step
// arguments (runbooks without references never reach it).
const versionStepRefs = "step-output-references"

// output is the value of an earlier step's output, for a reference.
func (r *run) output(ref runbooks.Ref) (any, error) {
	dep, ok := r.steps[ref.Step]
	switch {
	case !ok:
		return nil, fmt.Errorf("no step %s in this run", ref.Step)
	case dep.state != StateSucceeded:
		return nil, fmt.Errorf("step %s %s, so it has no outputs", ref.Step, dep.state)
	}
	v, ok := dep.outputs[ref.Output]
	if !ok {
		return nil, fmt.Errorf("step %s reported no output %q (it reported: %s)", ref.Step, ref.Output, strings.Join(slices.Sorted(maps.Keys(dep.outputs)), ", "))
	}
	return v, nil
}

// failedAttempts reads how many attempts an activity failure used.
func failedAttempts(err error, max int) int {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		var d struct {
			Attempt int `json:"attempt"`
		}
		if ae.Details(&d) == nil && d.Attempt > 0 {
			return d.Attempt
		}
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return 1
	}
	return max
}

// causeMessage is the innermost readable message of an activity error.
func causeMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return fmt.Sprintf("timed out (%s)", strings.ToLower(strings.TrimPrefix(te.TimeoutType().String(), "TIMEOUT_TYPE_")))
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		var why string
		if ce.HasDetails() && ce.Details(&why) == nil && why != "" {
			if strings.HasPrefix(why, RefusedPrefix) {
				return why // a run refused at its start (refuseStart)
			}
			return "cancelled: " + why
		}
		return "cancelled"
	}
	return err.Error()
}
