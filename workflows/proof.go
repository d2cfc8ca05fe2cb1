package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// Signed is the proof an operator message (or a start Request) carries:
// when it was signed, and the armored SSH signature of its
// proof.Decision statement. `lifeboat sign` prints both, and the CLI
// fills them for --as NAME when it has NAME's key. Client is the sender's
// Temporal client identity as the sender says; it proves nothing and is
// recorded beside an unproven name.
type Signed struct {
	SignedAt  *time.Time `json:"signedAt,omitempty"`
	Signature string     `json:"signature,omitempty"`
	Client    string     `json:"client,omitempty"`
}

// SignatureWindow is how far a signature's time may be from the run's clock
// when it arrives: an older one is stale (and cannot be held back and
// replayed later), a later one is from a clock that is wrong.
const SignatureWindow = 10 * time.Minute

// versionSignedDecisions guards proven decisions: signatures are verified
// against the allowed signers the run recorded, separation of duties
// counts only proven approvals, and refusals of unsigned messages when the
// worker requires signatures.
const versionSignedDecisions = "signed-decisions"

// Signable is an operator message that a signature can prove: Approve,
// Reject, Ack, Retry, Skip, Abort (and Note, which is never signed).
type Signable interface {
	// decision is what the sender signs (without the run's ids and the time).
	decision() proof.Decision
	// Actor is who the message says sent it.
	Actor() string
	// Proof is the signature the message carries.
	Proof() Signed
}

func (m Approve) decision() proof.Decision {
	return proof.Decision{Decision: MsgApprove, Step: m.Step, Comment: m.Comment}
}
func (m Reject) decision() proof.Decision {
	return proof.Decision{Decision: MsgReject, Step: m.Step, Comment: m.Reason}
}
func (m Ack) decision() proof.Decision {
	return proof.Decision{Decision: MsgAck, Step: m.Step, Comment: m.Comment}
}
func (m Retry) decision() proof.Decision {
	return proof.Decision{Decision: MsgRetry, Step: m.Step}
}
func (m Skip) decision() proof.Decision {
	return proof.Decision{Decision: MsgSkip, Step: m.Step, Comment: m.Reason}
}
func (m Abort) decision() proof.Decision {
	return proof.Decision{Decision: MsgAbort, Comment: m.Reason}
}

// Note is not a decision: notes are never signed, and never refused for it.
func (m Note) decision() proof.Decision { return proof.Decision{} }

// Actor is who a decision message says acted: the principal its
// signature must prove.
func (m Approve) Actor() string { return m.By }
func (m Reject) Actor() string  { return m.By }
func (m Ack) Actor() string     { return m.By }
func (m Retry) Actor() string   { return m.By }
func (m Skip) Actor() string    { return m.By }
func (m Abort) Actor() string   { return m.By }
func (m Note) Actor() string    { return m.By }

func (m Approve) Proof() Signed { return m.Signed }
func (m Reject) Proof() Signed  { return m.Signed }
func (m Ack) Proof() Signed     { return m.Signed }
func (m Retry) Proof() Signed   { return m.Signed }
func (m Skip) Proof() Signed    { return m.Signed }
func (m Abort) Proof() Signed   { return m.Signed }
func (m Note) Proof() Signed    { return Signed{} }

// StartDecision is what a requester signs to start a run: the workflow id
// it will have, the mode and runbook, the reason, and the terms: every
// other field of the request that changes what the run does (StartTerms).
// (The run id does not exist yet; the workflow id takes its place, and the
// run refuses a signature that already started a run under that id.)
func StartDecision(workflowID string, req Request) proof.Decision {
	d := legacyStartDecision(workflowID, req)
	d.Terms = StartTerms(req)
	return d
}

// legacyStartDecision is what runs started before versionOneAuthority
// verified: no terms.
func legacyStartDecision(workflowID string, req Request) proof.Decision {
	d := proof.Decision{WorkflowID: workflowID, Decision: fmt.Sprintf("start %s %s", req.Mode, req.RunbookName()), Comment: req.Reason}
	if req.SignedAt != nil {
		d.At = *req.SignedAt
	}
	return d
}

// startTerms is the signed part of a Request beyond mode, runbook and
// reason, in a fixed field order; texts are named by their hash.
type startTerms struct {
	Runbook            string            `json:"runbook"`
	Plan               string            `json:"plan"`
	InlineRunbook      string            `json:"inlineRunbook"`
	InlinePlan         string            `json:"inlinePlan"`
	PinnedMembers      map[string]string `json:"pinnedMembers"`
	RequestedBy        string            `json:"requestedBy"`
	DeclaredAt         string            `json:"declaredAt"`
	DryRun             bool              `json:"dryRun"`
	PrecheckOnly       bool              `json:"precheckOnly"`
	FailbackOf         string            `json:"failbackOf"`
	TeardownOf         string            `json:"teardownOf"`
	FailIfUnsuccessful bool              `json:"failIfUnsuccessful"`
	// Fields added later are omitted when empty, so the terms of every
	// start signed before them stay what they were.
	ReenactmentOf string `json:"reenactmentOf,omitempty"`
}

// StartTerms is the canonical encoding (JSON, fixed order, map keys
// sorted) of every field of req that changes what its run does and is not
// already in the start's statement: which text runs (a name, or the hash of
// an inline text and of each pinned member), who asks, when the disaster
// was declared, whether it is a dry run or a pre-check only, the failover
// a failback undoes, and how it ends. Add a field here when Request gains
// one that changes what a run does.
func StartTerms(req Request) string {
	t := startTerms{Runbook: req.Runbook, Plan: req.Plan, InlineRunbook: hashOrEmpty(req.InlineRunbook), InlinePlan: hashOrEmpty(req.InlinePlan),
		RequestedBy: req.RequestedBy, DryRun: req.DryRun, PrecheckOnly: req.PrecheckOnly, FailbackOf: req.FailbackOf, TeardownOf: req.TeardownOf,
		FailIfUnsuccessful: req.FailIfUnsuccessful, ReenactmentOf: req.ReenactmentOf}
	if req.DeclaredAt != nil && !req.DeclaredAt.IsZero() {
		t.DeclaredAt = req.DeclaredAt.UTC().Format(time.RFC3339Nano)
	}
	for m, text := range req.PinnedMembers {
		if t.PinnedMembers == nil {
			t.PinnedMembers = map[string]string{}
		}
		t.PinnedMembers[m] = runbooks.HashOf([]byte(text))
	}
	b, _ := json.Marshal(t)
	return string(b)
}

func hashOrEmpty(text string) string {
	if text == "" {
		return ""
	}
	return runbooks.HashOf([]byte(text))
}

// startDecision is the start statement this run verifies: with its terms
// since versionOneAuthority.
func (r *run) startDecision(workflowID string, req Request) proof.Decision {
	if r.authority {
		return StartDecision(workflowID, req)
	}
	return legacyStartDecision(workflowID, req)
}

// ScheduleGrant is a schedule owner's signature over the runs the
// schedule will start (see proveRequester).
type ScheduleGrant struct {
	// Workflows is the workflow id prefix of the schedule's runs.
	Workflows string    `json:"workflows"`
	SignedAt  time.Time `json:"signedAt"`
	Signature string    `json:"signature"`
}

// GrantDecision is what a schedule's owner signs: "schedule MODE RUNBOOK"
// for the runs named Workflows-…, with the schedule's reason.
func GrantDecision(req Request) proof.Decision {
	d := proof.Decision{Decision: fmt.Sprintf("schedule %s %s", req.Mode, req.RunbookName()), Comment: req.Reason}
	if g := req.Grant; g != nil {
		d.WorkflowID, d.At = g.Workflows, g.SignedAt
	}
	return d
}

// MessageDecision is the statement an operator signs for message m to the
// run runID of workflowID, signed at at.
func MessageDecision(workflowID, runID string, m Signable, at time.Time) proof.Decision {
	d := m.decision()
	d.WorkflowID, d.RunID, d.At = workflowID, runID, at
	return d
}

// prove checks m's signature and returns its proof, or nil for an unsigned
// message the worker accepts as unproven. It refuses a malformed, forged,
// stale or replayed signature, one by another person or for another run,
// step, decision or comment, and (when the worker requires signatures) an
// unsigned decision. Runs older than versionSignedDecisions prove nothing.
func (r *run) prove(ctx workflow.Context, m Signable) (*proof.Proof, error) {
	d := m.decision()
	if !r.signedDecisions || d.Decision == "" {
		return nil, nil
	}
	return r.verify(workflow.Now(ctx), MessageDecision(r.workflowID, r.runKey(ctx), m, timeOf(m.Proof().SignedAt)), m.Actor(), m.Proof())
}

func (r *run) verify(now time.Time, d proof.Decision, by string, p Signed) (*proof.Proof, error) {
	if p.Signature == "" || (len(r.resolved.Signers) == 0 && !r.resolved.SignaturesRequired) {
		// Unsigned, or signed where the worker knows no keys (an engineer's
		// ssh-agent signs by default): nothing is proven either way.
		if r.resolved.SignaturesRequired {
			verb, _, _ := strings.Cut(d.Decision, " ")
			return nil, fmt.Errorf("unsigned: this worker accepts only signed decisions; sign it with the CLI (lifeboat %s … --as %s, with your SSH key) or paste the JSON that lifeboat sign %s prints",
				verb, orName(by), verb)
		}
		return nil, nil
	}
	if p.SignedAt == nil {
		return nil, fmt.Errorf("the signature has no signedAt: paste the whole JSON that lifeboat sign prints")
	}
	if age := now.Sub(*p.SignedAt); age > SignatureWindow || age < -SignatureWindow {
		return nil, fmt.Errorf("stale signature: signed at %s, %s from the run's clock (%s); sign again now",
			p.SignedAt.UTC().Format(time.RFC3339), age.Round(time.Second), now.UTC().Format(time.RFC3339))
	}
	if r.usedSignatures[p.Signature] {
		return nil, fmt.Errorf("replayed signature: this run has already accepted it; sign the new decision")
	}
	if err := proof.VerifyDecision(d, by, p.Signature, r.resolved.Signers); err != nil {
		return nil, err
	}
	return &proof.Proof{Statement: string(d.Statement()), Signature: p.Signature}, nil
}

// spend marks an accepted signature as used, so it cannot be replayed.
func (r *run) spend(p *proof.Proof) {
	if p == nil {
		return
	}
	if r.usedSignatures == nil {
		r.usedSignatures = map[string]bool{}
	}
	r.usedSignatures[p.Signature] = true
}

// proveRequester checks the start's signature. A bad one, or none when the
// worker requires signatures, refuses the run; an unsigned start is
// otherwise recorded as unproven.
//
// A drill or tabletop a schedule starts carries no fresh signature (nobody
// is there to sign at 3 AM) but the schedule's grant: its owner signed,
// when the schedule was made, "schedule MODE RUNBOOK" for the workflow ids
// the schedule gives its runs. A valid grant lets the run start where
// signatures are required; it proves the owner made the schedule, not that
// they asked for this very run, so the requester stays unproven for
// separation of duties. A failover never starts from a grant.
func (r *run) proveRequester(ctx workflow.Context) error {
	if g := r.req.Grant; g != nil && r.req.Signature == "" && r.req.Mode != ModeFailover {
		if !strings.HasPrefix(r.workflowID, g.Workflows+"-") {
			return fmt.Errorf("the schedule grant is for runs %s-…, not %s", g.Workflows, r.workflowID)
		}
		if err := proof.VerifyDecision(GrantDecision(r.req), r.req.RequestedBy, g.Signature, r.resolved.Signers); err != nil {
			return fmt.Errorf("the schedule grant is refused: %w", err)
		}
		r.req.Client = fmt.Sprintf("schedule %s, granted by %s (signed %s)", g.Workflows, r.req.RequestedBy, g.SignedAt.UTC().Format(time.RFC3339))
		return nil
	}
	if ps := r.req.PlanStart; ps != nil && r.req.Signature == "" {
		return r.provePlanMember(ctx, ps)
	}
	p, err := r.verify(workflow.Now(ctx), r.startDecision(r.workflowID, r.req), r.req.RequestedBy, r.req.Signed)
	if err != nil {
		return fmt.Errorf("the start's signature is refused: %w", err)
	}
	r.requestProof = p
	r.spend(p)
	return nil
}

// needed is how many approvals the step's gate needs. A gate that demands
// separation of duties, in a run whose requester nothing proves, needs two
// distinct proven approvers: nobody can approve their own run by leaving
// out who requested it.
func (r *run) needed(s *step) int {
	n := s.spec.Approval.Needed()
	if r.signedDecisions && s.spec.Approval.Separate && r.requestProof == nil && n < 2 {
		return 2
	}
	return n
}

// WithSigned returns m carrying the proof s.
func WithSigned(m Signable, s Signed) Signable {
	switch v := m.(type) {
	case Approve:
		v.Signed = s
		return v
	case Reject:
		v.Signed = s
		return v
	case Ack:
		v.Signed = s
		return v
	case Retry:
		v.Signed = s
		return v
	case Skip:
		v.Signed = s
		return v
	case Override:
		v.Signed = s
		return v
	case Abort:
		v.Signed = s
		return v
	}
	return m // a Note is never signed
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func orName(by string) string {
	if by == "" {
		return "NAME"
	}
	return by
}

// provePlanMember proves a plan member's requester with the plan's own
// start: only when that plan is this run's parent (the server records the
// parent; a client cannot set it) and the plan's start is proven the same way
// a run's is. A plan's start copied into a run of one's own proves nothing.
func (r *run) provePlanMember(ctx workflow.Context, ps *PlanStart) error {
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	if parent == nil || parent.ID != ps.WorkflowID || !strings.HasPrefix(r.workflowID, ps.WorkflowID+".") {
		return fmt.Errorf("the request carries the start of plan run %s, which is not this run's parent", ps.WorkflowID)
	}
	if ps.Request.RequestedBy != r.req.RequestedBy {
		return fmt.Errorf("the requester %q is not the plan's (%q)", r.req.RequestedBy, ps.Request.RequestedBy)
	}
	if ps.Request.Signature == "" && ps.Request.Grant == nil {
		if r.resolved.SignaturesRequired {
			return fmt.Errorf("the plan's start is unsigned and this worker requires signatures")
		}
		return nil // a typed name, as unproven as the plan's
	}
	plan := &run{req: ps.Request, workflowID: ps.WorkflowID, resolved: r.resolved}
	if ps.Request.Signature == "" { // a schedule's grant: no time window
		if err := plan.proveRequester(ctx); err != nil {
			return fmt.Errorf("the plan's start: %w", err)
		}
		r.req.Client = plan.req.Client
		return nil
	}
	// The plan checked the signature's age when it started; a member starts later.
	d := r.startDecision(ps.WorkflowID, ps.Request)
	if ps.Terms != "" { // the plan's terms, computed from its whole request
		d.Terms = ps.Terms
	}
	p, err := plan.verify(ps.StartedAt, d, ps.Request.RequestedBy, ps.Request.Signed)
	if err != nil {
		return fmt.Errorf("the plan's start: %w", err)
	}
	r.requestProof = p
	r.req.Client = ps.Request.Client
	return nil
}

// StepOf is the step a message is about ("" for the run).
func StepOf(m Signable) string { return m.decision().Step }
