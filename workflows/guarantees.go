package workflows

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
