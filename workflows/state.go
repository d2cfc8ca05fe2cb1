package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// Step states, as shown in status, search attributes and evidence.
const (
	StatePending          = "pending"           // its layer has not started
	StateWaiting          = "waiting"           // waiting for the steps it needs
	StateAwaitingApproval = "awaiting-approval" // approval gate open
	StateAwaitingAck      = "awaiting-ack"      // a person must acknowledge
	StateRunning          = "running"
	StatePaused           = "paused" // failed or rejected; an operator must retry, skip or abort
	StateSucceeded        = "succeeded"
	StateFailed           = "failed"
	StateSkipped          = "skipped"
	StateRejected         = "rejected"
	StateAborted          = "aborted" // was running or waiting when the run was aborted
	StateNotRun           = "not-run"
	StateBlocked          = "blocked" // a step it needs failed, was rejected or did not run
)

// Run states (LifeboatState) beyond the step states above.
const (
	RunResolving   = "resolving"
	RunRunning     = "running"
	RunTearingDown = "tearing-down"
	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunAborted     = "aborted"
)

// OutcomeCancelled is the evidence outcome of a run cancelled through
// Temporal (the UI's Request Cancellation, temporal workflow cancel): an
// abort, told apart from one an operator asked for. LifeboatState says aborted.
const OutcomeCancelled = RunAborted + " (cancelled)"

func terminal(state string) bool {
	switch state {
	case StateSucceeded, StateFailed, StateSkipped, StateRejected, StateAborted, StateNotRun, StateBlocked:
		return true
	}
	return false
}

// step is the workflow's live state of one step.
type step struct {
	spec  runbooks.Step
	layer string
	hints runbooks.ActionHints

	state    string
	started  time.Time
	ended    time.Time
	attempts int
	err      string
	summary  string
	outputs  map[string]any
	recovery *runbooks.StepResult // the result when the step reports a recovery point

	approvals    []record.ApprovalRecord // every decision, across reopened gates
	gateFrom     int                     // approvals[gateFrom:] belong to the open gate
	waitingSince time.Time               // when the current human wait began
	approvalWait time.Duration
	gatePassed   bool
	rejected     bool
	acked        bool

	// decision is an operator's pending retry/skip for a paused step, or a skip
	// requested before the step started.
	decision   string
	skipper    actor
	skipReason string
	// retries counts the operator's retries of the step.
	retries int
	// member is a plan member's run, as it last reported (plans only).
	member *MemberProgress
	// inputs are the earlier steps' outputs its arguments used, by reference.
	inputs map[string]any
}

// run is the whole workflow's state. Only the workflow goroutines touch it.
type run struct {
	req        Request
	workflowID string
	resolved   runbooks.Resolved
	ready      bool

	steps map[string]*step
	order []*step // main layers in order, then teardown

	startedAt   time.Time
	declaredAt  time.Time
	layer       string
	state       string
	aborted     bool
	abortReason string
	abortedBy   actor
	breached    bool
	finished    bool
	endedAt     time.Time
	// unanswered is true when the start failed because the worker did not
	// answer (an activity timed out or kept failing), not because it
	// refused the request (see refuse).
	unanswered bool
	// cancelled is true when the abort came from a Temporal cancellation.
	cancelled bool
	// recoveredAt is when the last step of the main layers ended: the end of
	// the actual RTO (the teardown is timed on its own). Zero before then.
	recoveredAt time.Time
	// truthful is true for runs started since versionTruthfulEndings.
	truthful bool
	// signedDecisions is true for runs started since versionSignedDecisions.
	signedDecisions bool
	// authority is true for runs started since versionOneAuthority.
	authority bool
	// markers is true for runs started since versionWaitMarker.
	markers bool
	// requestProof proves the requester (a signed start); nil: unproven.
	requestProof *proof.Proof
	// usedSignatures are the signatures this run accepted: a replay is refused.
	usedSignatures map[string]bool

	notes  []record.NoteRecord
	events []record.EventRecord
	// refusals are the refused signals: counted, the last few kept.
	refusals refusals
	// refused is the last refused signal as a sentence, shown in the current
	// details and the status while refusedStep (the step it was for; "" for
	// the run) still waits; an accepted message clears it.
	refused, refusedStep string
	// notifier is nil when the run sends no notifications.
	notifier *notifier
	// the state last reported in MetricRunState; metricsDone once dropped
	metricState string
	metricsDone bool

	cancelMain workflow.CancelFunc
	// lastReport is the progress last sent to the parent plan (members only).
	lastReport *MemberProgress
	// checks are phase 0's pre-flight checks, in the order they ran.
	checks []*check
	// dry is what a dry run found (Request.DryRun).
	dry *runbooks.DryRun

	// last values pushed to search attributes, to upsert only on change
	saState, saLayer string
	saBreached       bool
}

// drilling is true when the drill's settings apply: a drill, or the
// teardown of one.
func (r *run) drilling() bool { return r.req.Mode == ModeDrill || r.req.Mode == ModeTeardown }

// rb is the resolved runbook (an empty one before it is resolved).
func (r *run) rb() *runbooks.Runbook {
	if r.resolved.Runbook == nil {
		return &runbooks.Runbook{}
	}
	return r.resolved.Runbook
}

func (r *run) event(ctx workflow.Context, kind, stepID, by, text string) {
	r.actorEvent(ctx, kind, stepID, actor{by: by}, text)
}

// actor is who did something: a name, what proves it (nil: nothing), and
// the Temporal client identity the sender gave.
type actor struct {
	by     string
	proof  *proof.Proof
	client string
}

func signer(by string, p *proof.Proof, s Signed) actor {
	return actor{by: by, proof: p, client: s.Client}
}

func (r *run) actorEvent(ctx workflow.Context, kind, stepID string, a actor, text string) {
	r.events = append(r.events, record.EventRecord{At: workflow.Now(ctx), Kind: kind, Step: stepID, By: a.by, Text: text,
		Proof: a.proof, Client: a.client})
}

// approvers returns the distinct people of the step's approval groups.
func (r *run) approvers(s *step) map[string]bool {
	people := map[string]bool{}
	if s.spec.Approval == nil {
		return people
	}
	for _, g := range s.spec.Approval.From {
		for _, p := range r.rb().Spec.Approvers[g] {
			people[p] = true
		}
	}
	return people
}
