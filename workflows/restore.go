package workflows

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// RestoreWorkflow executes a runbook and returns its Evidence.
//
// The result is the evidence whatever the outcome (succeeded, failed or
// aborted: see Evidence.Outcome and the LifeboatState search attribute). A
// run that cannot start (bad request, unknown or invalid runbook, an action
// this build cannot run, a drill that could touch production, an unproven
// or spent start) is refused: it closes Canceled with the reason, LifeboatState
// "refused" (refuseStart; older runs closed Failed).
//
// A cancellation through Temporal is an abort (see watchCancellation): the
// run lives on a context the cancellation does not reach, so its teardown,
// evidence and final notification still happen, and it closes Completed with
// the evidence (outcome OutcomeCancelled).
func RestoreWorkflow(root workflow.Context, req Request) (*record.Evidence, error) {
	ctx := root
	r := &run{req: req, steps: map[string]*step{}, state: RunResolving, startedAt: workflow.Now(ctx),
		workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID}
	r.declaredAt = r.startedAt
	if req.DeclaredAt != nil && !req.DeclaredAt.IsZero() {
		r.declaredAt = *req.DeclaredAt
	}
	if workflow.GetVersion(root, versionTruthfulEndings, workflow.DefaultVersion, 1) == 1 {
		r.truthful = true
		ctx, _ = workflow.NewDisconnectedContext(root)
	}
	r.signedDecisions = workflow.GetVersion(root, versionSignedDecisions, workflow.DefaultVersion, 1) == 1
	r.authority = workflow.GetVersion(root, versionOneAuthority, workflow.DefaultVersion, 1) == 1
	r.markers = workflow.GetVersion(root, versionWaitMarker, workflow.DefaultVersion, 1) == 1
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	if err := req.Check(); err != nil {
		return nil, r.refuse(ctx, temporal.NewNonRetryableApplicationError(err.Error(), "BadRequest", nil))
	}
	if r.truthful {
		r.watchCancellation(root, ctx)
	}
	if err := r.resolve(ctx); err != nil {
		return nil, r.refuse(ctx, err)
	}
	if r.signedDecisions {
		if err := r.proveRequester(ctx); err != nil {
			return nil, r.refuse(ctx, temporal.NewNonRetryableApplicationError("cannot start: "+err.Error(), "Unproven", nil))
		}
	}
	if err := r.checkStart(ctx); err != nil {
		return nil, r.refuse(ctx, temporal.NewNonRetryableApplicationError("cannot start: "+err.Error(), "BadRequest", nil))
	}
	r.setup(ctx)
	r.setupNotifications(ctx)

	mainCtx, cancelMain := workflow.WithCancel(ctx)
	r.cancelMain = cancelMain
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	r.startRTOClock(timerCtx)

	if r.needsPrechecks() && workflow.GetVersion(ctx, versionPrechecks, workflow.DefaultVersion, 1) == 1 {
		r.prechecks(mainCtx)
	}
	layers := r.rb().Spec.Layers.Ordered()
	if r.req.PrecheckOnly || r.req.DryRun {
		layers = nil // the checks (and a dry run's questions) are the whole run
	}
	if r.req.DryRun && !r.aborted && !(r.authority && r.rb().IsPlan()) { // a plan's members ask their own steps
		r.dryRun(mainCtx)
	}
	if r.req.Mode == ModeFailback && !r.writtenFailbackInOrder(ctx) {
		slices.Reverse(layers) // traffic goes home first, then the DR side winds down
	}
	for _, l := range layers {
		if len(l.Steps) == 0 || r.req.Mode == ModeTeardown {
			continue
		}
		if r.aborted {
			break
		}
		r.layer = l.Name
		r.publish(ctx)
		r.runLayer(mainCtx, l.Name)
	}
	if r.rb().IsPlan() {
		r.layer = runbooks.MembersLayer
		r.publish(ctx)
		r.runLayer(mainCtx, runbooks.MembersLayer)
	}
	r.recoveredAt = workflow.Now(ctx)
	if r.truthful {
		cancelTimer() // the RTO measures recovery, not cleanup
	}
	if r.drilling() && len(r.rb().TeardownSteps()) > 0 && !r.req.PrecheckOnly && !r.req.DryRun {
		r.layer = runbooks.TeardownLayer
		r.state = RunTearingDown
		r.publish(ctx)
		// Teardown runs even after an abort, on a context the abort did not cancel.
		tctx, _ := workflow.NewDisconnectedContext(ctx)
		r.runLayer(tctx, runbooks.TeardownLayer)
	}
	cancelTimer()
	r.finish(ctx)
	r.awaitNotifications(ctx)
	if r.signedDecisions && workflow.GetVersion(ctx, versionClientIdentities, workflow.DefaultVersion, 1) == 1 {
		r.identifyAtEnd(ctx)
	}
	ev := r.evidence(ctx)
	r.store(ctx, &ev)
	// Let update handlers that are mid-flight reply before the run closes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	if req.FailIfUnsuccessful && ev.Outcome != RunSucceeded &&
		workflow.GetVersion(ctx, versionFailIfUnsuccessful, workflow.DefaultVersion, 1) == 1 {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s of %s %s: %s", req.Mode, ev.Runbook.Name, ev.Outcome, firstLine(ev.OutcomeReason, ev.FailedChecks)),
			ErrUnsuccessful, nil, &ev)
	}
	return &ev, nil
}

// versionTruthfulEndings guards how runs end off the happy path: a Temporal
// cancellation is an abort; an abort waits for running activities to finish
// cancelling; needs means "after a success" (blocked otherwise); the RTO
// clock and its notifications stop when the main layers end, before teardown.
const versionTruthfulEndings = "truthful-endings"

// watchCancellation turns a cancellation of the workflow (root) into an
// abort of the run, which lives on ctx, a context the cancellation does not
// reach.
func (r *run) watchCancellation(root, ctx workflow.Context) {
	workflow.Go(root, func(c workflow.Context) {
		c.Done().Receive(c, nil)
		if r.finished {
			return
		}
		r.cancelled = !r.aborted
		r.abort(ctx, actor{by: "temporal"}, "cancellation requested through Temporal (the UI's Request Cancellation, temporal workflow cancel, or a parent workflow)")
	})
}

// versionFailIfUnsuccessful guards the failed ending of Request.FailIfUnsuccessful.
const versionFailIfUnsuccessful = "fail-if-unsuccessful"

// firstLine is the reason a run did not succeed, for the failure message.
func firstLine(reason string, failed []string) string {
	switch {
	case reason != "":
		return reason
	case len(failed) > 0:
		return failed[0]
	}
	return "see the evidence"
}

// resolve asks the worker for the runbook (catalog or inline) and records it.
func (r *run) resolve(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	in := runbooks.ResolveInput{Runbook: r.req.Runbook, Inline: r.req.InlineRunbook, Plan: r.req.Plan, Mode: r.req.Mode, FailbackOf: r.req.FailbackOf, TeardownOf: r.req.TeardownOf,
		InlinePlan: r.req.InlinePlan, PinnedMembers: r.req.PinnedMembers, ReenactmentOf: r.req.ReenactmentOf}
	if err := workflow.ExecuteActivity(actx, ResolveActivity, in).Get(ctx, &r.resolved); err != nil {
		r.unanswered = !answered(err)
		return temporal.NewNonRetryableApplicationError("cannot start: "+causeMessage(err), "RunbookRefused", nil)
	}
	if err := r.resolved.Parse(); err != nil {
		return temporal.NewNonRetryableApplicationError("cannot start: the resolved runbook text does not parse: "+err.Error(), "RunbookRefused", nil)
	}
	return nil
}

// setup builds the step table and publishes the run's identity.
func (r *run) setup(ctx workflow.Context) {
	rb := r.rb()
	add := func(ls runbooks.LayeredStep) {
		s := &step{spec: ls.Step, layer: ls.Layer, state: StatePending, hints: r.resolved.Actions[ls.Step.Action]}
		r.steps[s.spec.ID] = s
		r.order = append(r.order, s)
	}
	if r.req.Mode != ModeTeardown {
		for _, ls := range rb.AllSteps() {
			add(ls)
		}
	}
	if r.drilling() {
		for _, ls := range rb.TeardownSteps() {
			add(ls)
		}
	}
	if rb.IsPlan() {
		r.receiveMemberProgress(ctx)
	}
	r.ready = true
	r.state = RunRunning
	_ = workflow.UpsertTypedSearchAttributes(ctx, SARunbook.ValueSet(rb.Metadata.Name), SAMode.ValueSet(r.req.ModeLabel()))
	r.publish(ctx)
}

// startRTOClock marks the run breached when declaredAt+RTO passes.
func (r *run) startRTOClock(ctx workflow.Context) {
	rto := r.rb().Spec.Objectives.RTO.D()
	if rto <= 0 {
		return
	}
	r.rtoMilestones(ctx, rto)
	workflow.Go(ctx, func(ctx workflow.Context) {
		wait := r.declaredAt.Add(rto).Sub(workflow.Now(ctx))
		if wait > 0 {
			var opts workflow.TimerOptions
			if r.markers { // the UI's timeline names the bar
				opts.Summary = fmt.Sprintf("RTO %s: deadline %s", r.rb().Spec.Objectives.RTO, r.declaredAt.Add(rto).UTC().Format("15:04:05 UTC"))
			}
			if err := workflow.NewTimerWithOptions(ctx, wait, opts).Get(ctx, nil); err != nil {
				return // cancelled: the run ended first
			}
		}
		r.breached = true
		text := fmt.Sprintf("RTO of %s passed at %s and the run has not finished",
			r.rb().Spec.Objectives.RTO, r.declaredAt.Add(rto).UTC().Format(time.RFC3339))
		r.event(ctx, "rto-breached", "", "", text)
		r.publish(ctx)
		r.notify(ctx, NotifyRTOBreached, fmt.Sprintf("%s; state %s, layer %s", text, r.liveState(), r.layer))
	})
}

// runLayer runs one layer's steps and returns when every one of them has
// ended: layers are barriers.
func (r *run) runLayer(ctx workflow.Context, layer string) {
	var steps []*step
	for _, s := range r.order {
		if s.layer == layer {
			steps = append(steps, s)
		}
	}
	for _, s := range steps {
		s.state = StateWaiting
	}
	if workflow.GetVersion(ctx, versionLayerMultiplex, workflow.DefaultVersion, 1) == 1 {
		r.multiplexLayer(ctx, steps)
		return
	}
	wg := workflow.NewWaitGroup(ctx)
	for _, s := range steps {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			r.runStep(ctx, s)
			r.stepEnded(ctx, s)
		})
	}
	wg.Wait(ctx)
}

// versionLayerMultiplex guards one coroutine per layer: it starts the
// layer's steps as their needs end and collects their activities, so a
// workflow task wakes one coroutine instead of one per open step (a
// 1,000-step history replays in a fraction of the time). A step that waits
// for a person, runs a plan member, or failed, goes on in a coroutine of
// its own, as every step did before.
const versionLayerMultiplex = "layer-multiplex"

// multiplexLayer runs steps (one layer's) from this one coroutine: each step
// is decided once its needs have ended; one that needs no person starts its
// activity here, and this coroutine records the result when it is ready.
// Steps that wait for people or fail continue in a coroutine of their own.
func (r *run) multiplexLayer(ctx workflow.Context, steps []*step) {
	type flight struct {
		s *step
		f workflow.Future
	}
	// Waits here outlive an abort's cancellation of ctx: the activities it
	// cancels end, and their steps are recorded, before the layer returns.
	wctx, _ := workflow.NewDisconnectedContext(ctx)
	var inflight []flight
	waiting := steps
	spawned := 0
	own := func(s *step, run func(ctx workflow.Context)) {
		spawned++
		workflow.Go(ctx, func(ctx workflow.Context) {
			run(ctx)
			r.stepEnded(ctx, s)
			spawned--
		})
	}
	for {
		var still []*step
		for _, s := range waiting {
			switch {
			case !r.mayDecide(s):
				still = append(still, s)
			case !r.startStep(ctx, s):
				r.stepEnded(ctx, s)
			case r.needsPerson(s) || s.spec.Action == runbooks.ActionPlanMember:
				own(s, func(ctx workflow.Context) { r.stepLoop(ctx, s) })
			default:
				f, err := r.beginExecute(ctx, s)
				if err != nil {
					own(s, func(ctx workflow.Context) { r.continueAfter(ctx, s, err) })
					continue
				}
				inflight = append(inflight, flight{s, f})
			}
		}
		waiting = still
		var flying []flight
		for _, fl := range inflight {
			if !fl.f.IsReady() {
				flying = append(flying, fl)
				continue
			}
			s := fl.s
			if err := r.endExecute(ctx, s, fl.f); err != nil {
				own(s, func(ctx workflow.Context) { r.continueAfter(ctx, s, err) })
				continue
			}
			s.state = StateSucceeded
			r.stepEnded(ctx, s)
		}
		inflight = flying
		if len(waiting) == 0 && len(inflight) == 0 {
			break
		}
		_ = workflow.Await(wctx, func() bool {
			for _, fl := range inflight {
				if fl.f.IsReady() {
					return true
				}
			}
			for _, s := range waiting {
				if r.mayDecide(s) {
					return true
				}
			}
			return false
		})
	}
	_ = workflow.Await(wctx, func() bool { return spawned == 0 })
}

// continueAfter takes a step whose execution failed with err through its
// failure policy, and on through the step loop when an operator retries it.
func (r *run) continueAfter(ctx workflow.Context, s *step, err error) {
	if r.afterExecute(ctx, s, err) {
		r.stepLoop(ctx, s)
	}
}

// stepEnded reports a step that reached its end (metrics, status, UI).
func (r *run) stepEnded(ctx workflow.Context, s *step) {
	r.stepMetric(ctx, s)
	r.publish(ctx)
}

// finish fixes the run's final state.
func (r *run) finish(ctx workflow.Context) {
	r.endedAt = workflow.Now(ctx)
	r.finished = true
	switch {
	case r.aborted:
		r.state = RunAborted
	case r.anyFailed() || len(r.blockingChecks()) > 0 || (r.dry != nil && len(r.dry.Errors) > 0):
		r.state = RunFailed
	default:
		r.state = RunSucceeded
	}
	r.publish(ctx)
	took := r.endedAt.Sub(r.declaredAt)
	text := fmt.Sprintf("%s in %s against an RTO of %s", r.state, runbooks.Duration(took.Round(time.Second)), r.rb().Spec.Objectives.RTO)
	if r.breached {
		text += " (RTO breached)"
	}
	if r.aborted {
		text += fmt.Sprintf("; aborted by %s: %s", r.abortedBy.by, r.abortReason)
	}
	r.notify(ctx, NotifyRunFinished, text+"; evidence: lifeboat evidence "+r.workflowID)
}

func (r *run) anyFailed() bool {
	for _, s := range r.order {
		if s.spec.Action == runbooks.ActionPlanMember && s.spec.OnFailure == runbooks.OnFailureContinue {
			continue // an optional member: recorded, the plan's outcome does not depend on it
		}
		if s.state == StateFailed || s.state == StateRejected {
			return true
		}
		// A step or member that never ran because what it needs did not
		// succeed is not a success either.
		if r.authority && s.state == StateBlocked && s.layer != runbooks.TeardownLayer {
			return true
		}
	}
	return false
}

// abort ends the run: waiting steps end, running activities are cancelled.
func (r *run) abort(ctx workflow.Context, by actor, reason string) {
	if r.aborted {
		return
	}
	r.aborted, r.abortedBy, r.abortReason = true, by, reason
	r.actorEvent(ctx, "abort", "", by, reason)
	if r.cancelMain != nil {
		r.cancelMain()
	}
	r.publish(ctx)
}

// store writes the evidence to the worker's sink; a sink failure is recorded
// in the evidence itself, which is also the workflow's result.
func (r *run) store(ctx workflow.Context, ev *record.Evidence) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	in := r.stepInput(ctx, "", map[string]any{"evidence": ev})
	if err := workflow.ExecuteActivity(actx, StoreActivity, in).Get(ctx, nil); err != nil {
		ev.Events = append(ev.Events, record.EventRecord{At: workflow.Now(ctx), Kind: "evidence-sink-failed",
			Text: "evidence.store failed: " + causeMessage(err) + "; rebuild with lifeboat evidence " + ev.WorkflowID})
	}
}

// stepInput is the input of an action activity.
func (r *run) stepInput(ctx workflow.Context, stepID string, args map[string]any) runbooks.StepInput {
	info := workflow.GetInfo(ctx)
	in := runbooks.StepInput{
		WorkflowID: info.WorkflowExecution.ID, RunID: r.runKey(ctx),
		Runbook: r.rb().Metadata.Name, Mode: r.req.Mode, StepID: stepID, Args: args,
		Targets: r.rb().Spec.Targets, RPO: r.rb().Spec.Objectives.RPO,
	}
	if !r.declaredAt.IsZero() {
		declared := r.declaredAt
		in.DeclaredAt = &declared
	}
	if d := r.rb().Spec.Drill; r.drilling() && d != nil {
		in.Mode = ModeDrill // the activities keep a teardown inside the drill too
		in.NamespaceMappings = d.NamespaceMappings
		in.DrillOverridden = slices.Sorted(maps.Keys(d.With[stepID]))
		if r.authority {
			in.DrillRun = cmp.Or(r.req.TeardownOf, r.workflowID)
		}
	}
	return in
}
