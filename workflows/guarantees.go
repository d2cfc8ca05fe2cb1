package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// versionOneAuthority guards the guarantees of issue 24 for runs started
// since: one policy table decides who may send each message (policy.go); a
// gate's quorum counts only proven decisions where the worker has allowed
// signers; a start's signature covers the whole request; a recovery plan's
// mode, dry run, pre-check-only flag and declaration reach its members; a
// required step or member that did not succeed (blocked included) fails the
// run; and identities that must survive a Temporal reset use the first
// execution's run id. Older histories replay on the paths they took.
const versionOneAuthority = "one-authority"

// changesNothing is true for a run that only checks: a dry run or a
// pre-check-only run (of a runbook or of a whole plan).
func (r *run) changesNothing() bool { return r.req.DryRun || r.req.PrecheckOnly }

// runKey is the run id everything that must survive a Temporal reset is
// bound to: signatures, the names of objects steps create (Velero
// Restores, Cloudflare tags), evidence ids and files. A reset starts a new
// run id but keeps the first execution's (FirstRunID, recorded in history);
// runs older than versionOneAuthority used the current run id.
func (r *run) runKey(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	if r.authority && info.FirstRunID != "" {
		return info.FirstRunID
	}
	return info.WorkflowExecution.RunID
}

// StartRunsActivity lists the other chains of runs under a workflow id
// (starter.Starter.OtherChains): a signed start that already started one
// is spent.
const StartRunsActivity = "lifeboat.startRuns"

// DeclaredAtSkew is how far in the future a declaredAt may lie (clocks differ).
const DeclaredAtSkew = time.Minute

// checkStart refuses what a start may not ask, once the runbook is known
// (versionOneAuthority): a declaredAt in the future or older than the
// runbook's MTD (it would shrink or fake the reported RTO), and a signed
// start that already started a run (copied from history under the same
// workflow id with AllowDuplicate or TerminateIfRunning). A plan's member
// carries the plan's declaration and is proven by its parent.
func (r *run) checkStart(ctx workflow.Context) error {
	if !r.authority {
		return nil
	}
	if ps := r.req.PlanStart; ps != nil {
		// A member's start is its plan's, checked by the plan: only a run
		// the plan itself started may carry it, and never with a signature
		// of its own (a copied start with a planStart added would skip the
		// checks below).
		parent := workflow.GetInfo(ctx).ParentWorkflowExecution
		if parent == nil || parent.ID != ps.WorkflowID || r.req.Signature != "" || r.req.Grant != nil {
			return fmt.Errorf("planStart is what a recovery plan gives the member runs it starts; this run was not started by plan run %q (or carries a start of its own as well): start a runbook without planStart", ps.WorkflowID)
		}
		return nil
	}
	if d := r.req.DeclaredAt; d != nil && !d.IsZero() {
		if d.After(r.startedAt.Add(DeclaredAtSkew)) {
			return fmt.Errorf("declaredAt %s is in the future (the run started at %s): give the time the disaster was declared",
				d.UTC().Format(time.RFC3339), r.startedAt.UTC().Format(time.RFC3339))
		}
		if mtd := r.rb().Spec.Objectives.MTD.D(); mtd > 0 && r.startedAt.Sub(*d) > mtd {
			return fmt.Errorf("declaredAt %s is more than the runbook's MTD (%s) before the start: a run cannot declare a disaster older than the longest tolerable downtime",
				d.UTC().Format(time.RFC3339), r.rb().Spec.Objectives.MTD)
		}
	}
	if r.requestProof == nil {
		return nil
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var others []string
	if err := workflow.ExecuteActivity(actx, StartRunsActivity, r.workflowID, r.runKey(ctx)).Get(ctx, &others); err != nil {
		r.unanswered = true // visibility did not answer: no refusal of the start
		return fmt.Errorf("cannot check that this signed start was not used before: %s", causeMessage(err))
	}
	if len(others) > 0 {
		return fmt.Errorf("the start's signature is spent: it already started run %s of %s; a signature starts one run: sign a new start (lifeboat %s … --as %s)",
			strings.Join(others, ", "), r.workflowID, r.req.Mode, orName(r.req.RequestedBy))
	}
	return nil
}

// versionWrittenFailbackOrder runs a failback written in the runbook
// (spec.failback) in restore order — data home before traffic — instead of
// reversed. Runs recorded before it never call GetVersion: a written
// failback was not marked as one (FailbackInfo.Written) then.
const versionWrittenFailbackOrder = "written-failback-order"

// writtenFailbackInOrder is true for a failback of spec.failback, which
// runs in restore order; a generated undo runs in reverse.
func (r *run) writtenFailbackInOrder(ctx workflow.Context) bool {
	fb := r.resolved.Failback
	return fb != nil && fb.Written && workflow.GetVersion(ctx, versionWrittenFailbackOrder, workflow.DefaultVersion, 1) == 1
}
