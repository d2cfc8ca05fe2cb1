package workflows

import "go.temporal.io/sdk/workflow"

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
