package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// PrecheckActivity runs one step's pre-flight checks (activities.Registry.Precheck).
const PrecheckActivity = "lifeboat.precheck"

// PrechecksActivity runs every step's pre-flight checks in one activity
// (activities.Registry.Prechecks).
const PrechecksActivity = "lifeboat.prechecks"

// versionBatchedPrechecks guards phase 0 as one lifeboat.prechecks activity
// for all the steps instead of one lifeboat.precheck per step: on a busy
// Temporal server each activity is work (a 10-step drill ran 23 activities
// against a bare workflow's 10).
const versionBatchedPrechecks = "batched-prechecks"

// MsgOverride lets a run go on past a failed pre-flight check, with a reason.
const MsgOverride = "override"

// StatePrecheckFailed is the run's state while a failed pre-flight check
// waits for an override or an abort.
const StatePrecheckFailed = "precheck-failed"

// PrechecksLayer is the pseudo-layer of phase 0, shown while checks run.
const PrechecksLayer = "prechecks"

// versionPrechecks guards phase 0 (only runs whose actions declare
// pre-checks call it: older histories have no such hint).
const versionPrechecks = "prechecks"

// Override is an operator's decision to run despite a failed pre-flight check.
type Override struct {
	Check  string `json:"check"`
	By     string `json:"by"`
	Reason string `json:"reason"`
	Signed
}

func (m Override) decision() proof.Decision {
	return proof.Decision{Decision: MsgOverride, Step: m.Check, Comment: m.Reason}
}

// Actor is who the message says sent it.
func (m Override) Actor() string { return m.By }

// Proof is the signature the message carries.
func (m Override) Proof() Signed { return m.Signed }

// check is one pre-flight check of the run.
type check struct {
	id       string
	result   runbooks.CheckResult
	override *record.EventRecord
}

func (c *check) blocking() bool { return !c.result.OK && !c.result.Advisory && c.override == nil }

// needsPrechecks is true for a run that changes things (failover, drill,
// failback; not a plan, whose members check themselves) and has a step
// whose action declares a pre-check.
func (r *run) needsPrechecks() bool {
	switch r.req.Mode {
	case ModeFailover, ModeDrill, ModeFailback:
	default:
		return false
	}
	if r.rb().IsPlan() {
		return false
	}
	for _, s := range r.order {
		if s.hints.Precheck && s.layer != runbooks.TeardownLayer {
			return true
		}
	}
	return false
}

// prechecks is phase 0: every step's pre-flight checks, in parallel, before
// anything changes. A failed check stops the run until an operator
// overrides it with a reason (lifeboat override) or aborts; a run that only
// checks (Request.PrecheckOnly) ends here either way.
func (r *run) prechecks(ctx workflow.Context) {
	r.layer = PrechecksLayer
	r.publish(ctx)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	checks := func(s *step) bool { return s.hints.Precheck }
	notRun := func(s *step, why string) []runbooks.CheckResult {
		return []runbooks.CheckResult{{Step: s.spec.ID, Action: s.spec.Action, Name: "checks ran",
			Message: why, Fix: "see the worker's log; run lifeboat precheck again"}}
	}
	add := func(s *step, results []runbooks.CheckResult) {
		for i, res := range results {
			r.checks = append(r.checks, &check{id: runbooks.CheckID(s.spec.ID, i+1), result: res})
		}
	}
	if workflow.GetVersion(ctx, versionBatchedPrechecks, workflow.DefaultVersion, 1) == 1 {
		steps, ins := r.stepInputs(ctx, checks)
		var answers []runbooks.PrecheckAnswer
		var err error
		if len(ins) > 0 { // a drill may skip every step that has checks
			err = workflow.ExecuteActivity(actx, PrechecksActivity, ins).Get(ctx, &answers)
		}
		for i, s := range steps {
			switch {
			case err != nil:
				add(s, notRun(s, causeMessage(err)))
			case i >= len(answers):
				add(s, notRun(s, "the worker returned no answer for this step"))
			case answers[i].Error != "":
				add(s, notRun(s, answers[i].Error))
			default:
				add(s, answers[i].Results)
			}
		}
	} else {
		for _, p := range r.askSteps(ctx, actx, PrecheckActivity, checks) {
			var results []runbooks.CheckResult
			if err := p.answer.Get(ctx, &results); err != nil {
				results = notRun(p.s, causeMessage(err))
			}
			add(p.s, results)
		}
	}
	failed := r.blockingChecks()
	if len(failed) == 0 || r.req.PrecheckOnly || r.req.DryRun {
		r.layer = ""
		return
	}
	var names []string
	for _, c := range failed {
		names = append(names, c.id+" ("+c.result.Name+")")
	}
	text := fmt.Sprintf("%d pre-flight check(s) failed; nothing has changed: %s — override each with a reason, or abort", len(failed), strings.Join(names, ", "))
	r.event(ctx, "precheck-failed", "", "", capText(text))
	r.publish(ctx)
	r.notify(ctx, NotifyStepPaused, text+": lifeboat status "+r.workflowID)
	_ = workflow.Await(ctx, func() bool { return r.aborted || len(r.blockingChecks()) == 0 })
	r.layer = ""
}

// question is one step's pending answer to a phase-0 activity.
type question struct {
	s      *step
	answer workflow.Future
}

// askSteps starts activity for every step of the main layers that asks
// wants (a drill's skipped steps left out), with the step's input as it
// would run — its arguments as written, drill mappings applied — all at once.
func (r *run) askSteps(ctx, actx workflow.Context, activity string, asks func(*step) bool) []question {
	steps, ins := r.stepInputs(ctx, asks)
	out := make([]question, len(steps))
	for i, s := range steps {
		out[i] = question{s, workflow.ExecuteActivity(actx, activity, ins[i])}
	}
	return out
}

// stepInputs are the steps of the main layers that asks wants (a drill's
// skipped steps left out) and each one's input as it would run: its
// arguments as written, drill mappings applied.
func (r *run) stepInputs(ctx workflow.Context, asks func(*step) bool) ([]*step, []runbooks.PrecheckInput) {
	var steps []*step
	var ins []runbooks.PrecheckInput
	for _, s := range r.order {
		if !asks(s) || s.layer == runbooks.TeardownLayer || (r.req.Mode == ModeDrill && r.drillSkips(s.spec.ID)) {
			continue
		}
		steps = append(steps, s)
		ins = append(ins, runbooks.PrecheckInput{StepInput: r.stepInput(ctx, s.spec.ID, r.mapArgs(s, r.specArgs(s))), Action: s.spec.Action})
	}
	return steps, ins
}

func (r *run) blockingChecks() []*check {
	var out []*check
	for _, c := range r.checks {
		if c.blocking() {
			out = append(out, c)
		}
	}
	return out
}

// checkPending is what a failed check waits for, with the exact commands.
func (r *run) checkPending(c *check) Pending {
	p := Pending{Step: c.id, Kind: "precheck", Since: r.startedAt,
		Command: fmt.Sprintf("lifeboat override %s %s --reason TEXT --as NAME, or lifeboat abort %s", r.workflowID, c.id, r.workflowID),
		Signal:  fmt.Sprintf(`%s {"check": %q, "by": "NAME", "reason": "…"}`, MsgOverride, c.id)}
	msg := fmt.Sprintf("pre-flight check %s failed: %s — %s", c.id, c.result.Name, c.result.Message)
	if c.result.Fix != "" {
		msg += "; fix: " + c.result.Fix
	}
	p.Message = msg + ": " + p.Command
	return p
}

func (r *run) checkOverride(m Override, p *proof.Proof) error {
	if err := r.checkReady(); err != nil {
		return err
	}
	c := r.findCheck(m.Check)
	switch {
	case c == nil:
		var ids []string
		for _, x := range r.blockingChecks() {
			ids = append(ids, x.id)
		}
		return fmt.Errorf("no failed pre-flight check %q in this run (waiting: %s)", m.Check, runbooks.OrDash(strings.Join(ids, ", ")))
	case c.result.OK:
		return fmt.Errorf("check %s passed: there is nothing to override", m.Check)
	case c.override != nil:
		return fmt.Errorf("check %s is already overridden by %s", m.Check, c.override.By)
	case strings.TrimSpace(m.Reason) == "":
		return fmt.Errorf("give a reason for overriding check %s: the evidence records it", m.Check)
	}
	_, err := r.authorize(MsgOverride, nil, m.By, p)
	return err
}

func (r *run) applyOverride(ctx workflow.Context, m Override, p *proof.Proof) Reply {
	c := r.findCheck(m.Check)
	r.actorEvent(ctx, MsgOverride, m.Check, signer(m.By, p, m.Signed),
		capText(fmt.Sprintf("check %s (%s) overridden: %s", m.Check, c.result.Name, m.Reason)))
	ev := r.events[len(r.events)-1]
	c.override = &ev
	left := len(r.blockingChecks())
	msg := fmt.Sprintf("check %s overridden; %d failed check(s) left", m.Check, left)
	if left == 0 {
		msg = fmt.Sprintf("check %s overridden; the run goes on", m.Check)
	}
	return Reply{Step: m.Check, State: "overridden", Message: msg}
}

// findCheck is the check with id, or nil.
func (r *run) findCheck(id string) *check {
	for _, c := range r.checks {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (r *run) isApprover(who string) bool {
	for _, people := range r.rb().Spec.Approvers {
		for _, p := range people {
			if p == who {
				return true
			}
		}
	}
	return false
}

// checkRecords are the evidence's pre-flight checks.
func (r *run) checkRecords() []record.PrecheckRecord {
	out := make([]record.PrecheckRecord, 0, len(r.checks))
	for _, c := range r.checks {
		rec := record.PrecheckRecord{ID: c.id, CheckResult: c.result}
		if o := c.override; o != nil {
			ov := *o
			rec.Override = &ov
		}
		out = append(out, rec)
	}
	return out
}
