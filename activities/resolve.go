package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/failback"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// Resolver resolves a runbook for a run: from the catalog directories (read
// afresh each time, so a merged fix is picked up without a worker restart) or
// from inline text; it validates it and refuses, before anything runs, a
// non-tabletop run that names an action this build cannot run.
type Resolver struct {
	Dirs     []string
	Registry *Registry
	// Notify is recorded in every resolved run (nil: the workflow sends no
	// notifications of its own).
	Notify *runbooks.NotifySettings
	// Signers reads the allowed signers in force (the worker's
	// allowed_signers file, read afresh for every run); nil: none.
	Signers func() ([]proof.AllowedSigner, error)
	// SignaturesRequired makes every run refuse unsigned operator actions.
	SignaturesRequired bool
	// Secrets says which environment variables runbooks may name; a runbook
	// naming another is refused before anything runs (nil: not checked here;
	// the action refuses it).
	Secrets *secrets.Store
	// Records reads a past run's record from Temporal — the runbook text it
	// resolved and its evidence — for a failback and a re-enactment (nil:
	// this worker runs neither).
	Records func(ctx context.Context, workflowID string) (runbooks.Resolved, record.Evidence, error)
	// Drills reads a past run's resolved runbook and its mode from
	// Temporal, for a teardown (nil: this worker runs no teardowns).
	Drills func(ctx context.Context, workflowID string) (runbooks.Resolved, string, error)
	// StartIdentity reads the client identity Temporal recorded with a
	// run's start (nil: the run reads it at its end with the others).
	StartIdentity func(ctx context.Context, workflowID, runID string) (string, error)
}

// Resolve is the lifeboat.resolveRunbook activity: the runbook the run
// will follow and, when it can be read, the client identity of its start.
func (r *Resolver) Resolve(ctx context.Context, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	res, err := r.resolve(ctx, in)
	if err == nil && r.StartIdentity != nil && activity.IsActivity(ctx) {
		run := activity.GetInfo(ctx).WorkflowExecution
		res.StartClient, _ = r.StartIdentity(ctx, run.ID, run.RunID) // best effort: "" makes the run read it at its end
	}
	return res, err
}

func (r *Resolver) resolve(ctx context.Context, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	if in.Plan != "" || in.InlinePlan != "" {
		return r.resolvePlan(ctx, in)
	}
	if in.Mode == "failback" {
		return r.resolveFailback(ctx, in)
	}
	if in.Mode == "teardown" {
		return r.resolveTeardown(ctx, in)
	}
	var rb *runbooks.Runbook
	var src []byte
	if in.Inline != "" {
		src = []byte(in.Inline)
		parsed, err := runbooks.Parse(src, "inline runbook")
		if err != nil {
			return runbooks.Resolved{}, refuse("RunbookInvalid", "the inline runbook does not parse:\n"+err.Error())
		}
		rb = parsed
	} else {
		cat, err := runbooks.LoadCatalog(r.Dirs...)
		if cat == nil {
			return runbooks.Resolved{}, err // the directory itself is unreadable: retryable
		}
		entry, getErr := cat.Get(in.Runbook)
		if getErr != nil {
			msg := getErr.Error()
			var ps runbooks.Problems
			if errors.As(err, &ps) {
				msg += "\n(some catalog files do not parse and were left out:\n" + ps.Error() + ")"
			}
			return runbooks.Resolved{}, refuse("RunbookNotFound", msg)
		}
		rb, src = entry.Runbook, entry.Source
	}
	return r.admit(ctx, rb, src, in)
}

// admit is the checks every resolved runbook passes before anything runs,
// and the Resolved that records it.
func (r *Resolver) admit(ctx context.Context, rb *runbooks.Runbook, src []byte, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	if errs := runbooks.Validate(rb, r.Registry).Errors(); len(errs) > 0 {
		return runbooks.Resolved{}, refuse("RunbookInvalid", fmt.Sprintf("runbook %s is invalid (lifeboat validate shows the same):\n%s", rb.Metadata.Name, errs.Error()))
	}
	if in.Inline != "" {
		cat, err := runbooks.LoadCatalog(r.Dirs...)
		if cat == nil && len(r.Dirs) > 0 {
			return runbooks.Resolved{}, fmt.Errorf("%w: %v", errCatalogUnreadable, err)
		}
		if err := checkInline(rb, src, in, cat); err != nil {
			return runbooks.Resolved{}, err
		}
		if err := r.checkReenactment(ctx, rb.Metadata.Name, src, in.ReenactmentOf); err != nil {
			return runbooks.Resolved{}, err
		}
	}
	if in.Mode == "teardown" && len(rb.TeardownSteps()) == 0 {
		return runbooks.Resolved{}, refuse("NoTeardown", fmt.Sprintf("runbook %s has no spec.drill.teardown: there is nothing to clean up", rb.Metadata.Name))
	}
	if in.Mode == "drill" || in.Mode == "teardown" {
		if errs := runbooks.ValidateDrill(rb, r.Registry).Errors(); len(errs) > 0 {
			return runbooks.Resolved{}, refuse("DrillUnsafe", fmt.Sprintf("runbook %s cannot run as a drill: a step could change something outside the drill. Nothing was executed. Fix it in spec.drill:\n%s", rb.Metadata.Name, errs.Error()))
		}
	}
	if err := r.checkSecretRefs(rb); err != nil {
		return runbooks.Resolved{}, err
	}
	steps := rb.AllSteps()
	switch in.Mode {
	case "drill":
		steps = append(steps, rb.TeardownSteps()...)
	case "teardown":
		steps = rb.TeardownSteps()
	}
	hints := map[string]runbooks.ActionHints{}
	var missing []string
	for _, s := range steps {
		spec, _ := r.Registry.Action(s.Step.Action)
		hints[s.Step.Action] = runbooks.ActionHints{Human: spec.Human, Heartbeats: spec.Heartbeats, Precheck: r.Registry.HasPrecheck(s.Step.Action)}
		if !r.Registry.Implemented(s.Step.Action) {
			missing = append(missing, fmt.Sprintf("%s (%s, step %s): %s", s.Step.Action, s.Path(), s.Step.ID, r.Registry.WhyNotImplemented(s.Step.Action)))
		}
	}
	if len(missing) > 0 && in.Mode != "tabletop" {
		return runbooks.Resolved{}, refuse("ActionNotImplemented", fmt.Sprintf(
			"runbook %s cannot run on this worker:\n  %s\nNothing was executed. Configure the worker as each line says, or run it as a tabletop (lifeboat tabletop %s).",
			rb.Metadata.Name, strings.Join(missing, "\n  "), rb.Metadata.Name))
	}
	out := runbooks.Resolved{Hash: runbooks.HashOf(src), Source: string(src), Actions: hints, Notify: r.Notify,
		SignaturesRequired: r.SignaturesRequired}
	if err := r.addSigners(&out); err != nil {
		return runbooks.Resolved{}, err
	}
	if err := separationNeedsSigners(rb, in.Mode, out.Signers); err != nil {
		return runbooks.Resolved{}, err
	}
	// The text only, once: the workflow parses it (Resolved.Parse).
	return out, nil
}

// separationNeedsSigners refuses, before anything runs, a run with a gate
// that demands separation of duties on a worker that knows no keys: only
// signed approvals pass such a gate, and none could be verified. Better at
// the start than at the gate, mid-incident.
func separationNeedsSigners(rb *runbooks.Runbook, mode string, signers []proof.AllowedSigner) error {
	if len(signers) > 0 || mode == "tabletop" {
		return nil
	}
	for _, ls := range rb.AllSteps() {
		if a := ls.Step.Approval; a != nil && a.Separate {
			return refuse("SignersMissing", fmt.Sprintf("step %s of runbook %s demands separation of duties, which only signed approvals can prove, and this worker has no allowed signers. Nothing was executed. Set signatures.allowedSigners (LIFEBOAT_ALLOWED_SIGNERS) in the worker config to the approvers' SSH keys",
				ls.Step.ID, rb.Metadata.Name))
		}
	}
	return nil
}

// checkSecretRefs refuses environment variables the worker does not let
// runbooks read (urlEnv, headersEnv): CLOUDFLARE_API_TOKEN as a webhook URL
// would put the token in an error message.
func (r *Resolver) checkSecretRefs(rb *runbooks.Runbook) error {
	if r.Secrets == nil {
		return nil
	}
	var bad []string
	for _, ls := range append(rb.AllSteps(), rb.TeardownSteps()...) {
		var names []string
		if v, ok := ls.Step.With["urlEnv"].(string); ok {
			names = append(names, v)
		}
		if m, ok := ls.Step.With["headersEnv"].(map[string]any); ok {
			for _, v := range m {
				if s, ok := v.(string); ok {
					names = append(names, s)
				}
			}
		}
		for _, n := range names {
			if !r.Secrets.Allowed(n) {
				bad = append(bad, fmt.Sprintf("%s (step %s)", n, ls.Step.ID))
			}
		}
	}
	if len(bad) > 0 {
		return refuse("SecretNotAllowed", fmt.Sprintf("runbook %s names environment variables the worker does not let runbooks read: %s. Nothing was executed. Add them to secrets.env in the worker config if they are meant for runbooks",
			rb.Metadata.Name, strings.Join(bad, ", ")))
	}
	return nil
}

func refuse(kind, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, kind, nil)
}

// refuseUnlessUnanswered is refuse for a run whose past record was to be
// read, unless the read got no answer (readErr: Temporal unavailable,
// timed out, overloaded): then the error is retryable, so the activity
// retries and a run that never gets an answer fails as an outage, never
// closes as a refusal of its request.
func refuseUnlessUnanswered(kind, msg string, readErr error) error {
	if unanswered(readErr) {
		return temporal.NewApplicationError(msg, kind+"Unanswered")
	}
	return refuse(kind, msg)
}

// unanswered tells whether err is Temporal not answering rather than an
// answer about the run (no such run, not a lifeboat run, not a drill).
func unanswered(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	var internal *serviceerror.Internal
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) || errors.As(err, &internal) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// resolvePlan resolves a recovery plan: valid against the catalog, and every
// member resolvable for the plan's mode (drill-safe in a drill, actions
// implemented, signers where a gate needs them), so a plan that could not
// finish is refused before any member starts.
func (r *Resolver) resolvePlan(ctx context.Context, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	cat, err := runbooks.LoadCatalog(r.Dirs...)
	if cat == nil {
		return runbooks.Resolved{}, err // the directory itself is unreadable: retryable
	}
	var entry runbooks.PlanEntry
	if in.InlinePlan != "" {
		// A re-enactment: the plan's and the members' texts as they ran then.
		p, err := runbooks.ParsePlan([]byte(in.InlinePlan), "inline plan")
		if err != nil {
			return runbooks.Resolved{}, refuse("RunbookInvalid", "the inline plan does not parse:\n"+err.Error())
		}
		if in.ReenactmentOf == "" {
			return runbooks.Resolved{}, refuse("InlineRefused", "an inline plan only re-enacts a past plan run: name it (\"reenactmentOf\": \"RUN\", as lifeboat reenact RUN does), or start the catalog's plan by name")
		}
		if err := r.checkReenactment(ctx, "", []byte(in.InlinePlan), in.ReenactmentOf); err != nil {
			return runbooks.Resolved{}, err
		}
		entry = runbooks.PlanEntry{Plan: p, Hash: runbooks.HashOf([]byte(in.InlinePlan)), Source: []byte(in.InlinePlan)}
		if cat, err = cat.WithPinned(in.PinnedMembers); err != nil {
			return runbooks.Resolved{}, refuse("RunbookInvalid", err.Error())
		}
	} else {
		var getErr error
		if entry, getErr = cat.Plan(in.Plan); getErr != nil {
			return runbooks.Resolved{}, refuse("RunbookNotFound", getErr.Error())
		}
	}
	plan := entry.Plan
	if errs := runbooks.ValidatePlan(plan, cat).Errors(); len(errs) > 0 {
		return runbooks.Resolved{}, refuse("RunbookInvalid", fmt.Sprintf("recovery plan %s is invalid (lifeboat validate shows the same):\n%s", plan.Metadata.Name, errs.Error()))
	}
	var members []string
	for _, m := range plan.Spec.Members {
		member := runbooks.ResolveInput{Runbook: m.Runbook, Mode: in.Mode}
		if text := in.PinnedMembers[m.Runbook]; text != "" {
			member = runbooks.ResolveInput{Inline: text, Mode: in.Mode, ReenactmentOf: in.ReenactmentOf}
		}
		if _, err := r.Resolve(ctx, member); err != nil {
			members = append(members, fmt.Sprintf("member %s: %s", m.Runbook, failure.Message(err)))
		}
	}
	if len(members) > 0 {
		return runbooks.Resolved{}, refuse("MemberRefused", fmt.Sprintf("recovery plan %s cannot run as a %s: some members would be refused. Nothing was executed.\n%s",
			plan.Metadata.Name, in.Mode, strings.Join(members, "\n")))
	}
	out := runbooks.Resolved{Hash: entry.Hash, Source: string(entry.Source), Actions: map[string]runbooks.ActionHints{},
		Notify: r.Notify, SignaturesRequired: r.SignaturesRequired, Members: cat.MemberRefs(plan)}
	if err := r.addSigners(&out); err != nil {
		return runbooks.Resolved{}, err
	}
	return out, nil
}

// addSigners records the allowed signers in force in a resolved run.
func (r *Resolver) addSigners(out *runbooks.Resolved) error {
	if r.Signers == nil {
		return nil
	}
	signers, err := r.Signers()
	if err != nil {
		// The worker's own file, not the request: an outage to fix and
		// retry (a run that never reads it fails), no refusal.
		return temporal.NewApplicationError("the worker's allowed signers cannot be read, so no decision could be proven: "+err.Error(), "SignersUnreadable")
	}
	out.Signers = signers
	return nil
}

// resolveFailback builds the failback of a finished failover from its own
// record in Temporal (the runbook text it ran and its evidence), never from
// what the client sent: a client names the failover, the worker reads it.
func (r *Resolver) resolveFailback(ctx context.Context, in runbooks.ResolveInput) (runbooks.Resolved, error) {
	if r.Records == nil {
		return runbooks.Resolved{}, refuse("FailbackUnavailable", "this worker cannot read past runs, so it runs no failbacks")
	}
	if in.FailbackOf == "" {
		return runbooks.Resolved{}, refuse("BadRequest", `a failback names the failover it undoes: "failbackOf": "RUN"`)
	}
	res, ev, err := r.Records(ctx, in.FailbackOf)
	if err != nil {
		return runbooks.Resolved{}, refuseUnlessUnanswered("FailoverUnreadable", fmt.Sprintf("failover %s cannot be failed back: %v", in.FailbackOf, err), err)
	}
	if in.Runbook != "" && ev.Runbook.Name != in.Runbook {
		return runbooks.Resolved{}, refuse("BadRequest", fmt.Sprintf("run %s ran runbook %s, not %s", in.FailbackOf, ev.Runbook.Name, in.Runbook))
	}
	if ev.Outcome == "in-progress" {
		return runbooks.Resolved{}, refuse("FailoverRunning", fmt.Sprintf("failover %s is still running: abort it or let it finish first", in.FailbackOf))
	}
	if err := res.Parse(); err != nil {
		return runbooks.Resolved{}, refuse("FailoverUnreadable", fmt.Sprintf("failover %s: its recorded runbook does not parse: %v", in.FailbackOf, err))
	}
	plan, err := failback.Build(res.Runbook, ev, r.Registry)
	if err != nil {
		return runbooks.Resolved{}, refuse("FailbackImpossible", err.Error())
	}
	src, err := yaml.Marshal(plan.Runbook)
	if err != nil {
		return runbooks.Resolved{}, err
	}
	rb, err := runbooks.Parse(src, "failback of "+in.FailbackOf)
	if err != nil {
		return runbooks.Resolved{}, fmt.Errorf("the generated failback does not parse: %w", err)
	}
	out, err := r.admit(ctx, rb, src, in)
	if err != nil {
		return out, err
	}
	out.Failback = &runbooks.FailbackInfo{Of: in.FailbackOf, OfEvidence: ev.ID, OfHash: ev.Runbook.Hash,
		NothingToUndo: plan.NothingToUndo, Manual: plan.Manual, Written: plan.Written}
	return out, nil
}
