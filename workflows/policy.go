package workflows

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// Principal is a group of people a Policy row lets send a message.
type Principal string

// The principals of the Policy table.
const (
	// GateApprovers are the people of the step's approval.from groups.
	GateApprovers Principal = "gate approvers"
	// RunbookApprovers are the people of every group of the runbook's (or
	// plan's) spec.approvers; a runbook that declares none lets anyone.
	RunbookApprovers Principal = "runbook approvers"
	// Requester is who started the run.
	Requester Principal = "requester"
	// Anyone is anyone at all (notes).
	Anyone Principal = "anyone"
)

// What a message decides about, as the Policy table tells them apart.
const (
	AboutGate  = "gate"  // a step whose approval gate has not passed
	AboutStep  = "step"  // a step with no gate, or whose gate passed (and every teardown step)
	AboutTask  = "task"  // a step awaiting its acknowledgement (manual.task, any step of a tabletop)
	AboutCheck = "check" // a failed pre-flight check
	AboutRun   = "run"   // the whole run
)

// Rule is one row of Policy: who may send Message about a thing of kind
// About, and how it counts.
type Rule struct {
	Message string
	About   string
	From    []Principal
	// Quorum: the decision takes effect once the gate's min distinct
	// senders made it (its quorum); one sender is enough otherwise.
	Quorum bool
	// Separate: where the gate demands separation of duties, the requester
	// may not send it.
	Separate bool
	// Signed: where the worker has allowed signers, only a proven message
	// counts: an unproven one is recorded without counting (Quorum rows)
	// or refused (a rejection). Rows without it take an unproven name (in
	// the principals' groups) and record it as unproven; where the worker
	// requires signatures every unsigned decision is refused (prove).
	Signed bool
}

// Policy is the one authority on who may decide what in a run: every
// update, signal, plan forward (the member checks it as its own) and UI
// path reaches authorize, which reads only this table. Starts (failover,
// drill, tabletop, teardown, failback, plans) are proven by the start's
// signature (proveRequester): anyone the worker's allowed signers know may
// start a run, and where signatures are required only a signed start runs.
var Policy = []Rule{
	{Message: MsgApprove, About: AboutGate, From: []Principal{GateApprovers}, Quorum: true, Separate: true, Signed: true},
	{Message: MsgReject, About: AboutGate, From: []Principal{GateApprovers}, Separate: true, Signed: true},
	// Skipping a step whose gate has not passed is the gate's decision.
	{Message: MsgSkip, About: AboutGate, From: []Principal{GateApprovers}, Quorum: true, Separate: true, Signed: true},
	{Message: MsgSkip, About: AboutStep, From: []Principal{RunbookApprovers, Requester}},
	{Message: MsgSkip, About: AboutTask, From: []Principal{RunbookApprovers, Requester}},
	// A retry of a rejected step reopens its gate: the approvers decide again.
	{Message: MsgRetry, About: AboutGate, From: []Principal{RunbookApprovers, Requester}},
	{Message: MsgRetry, About: AboutStep, From: []Principal{RunbookApprovers, Requester}},
	{Message: MsgAck, About: AboutTask, From: []Principal{RunbookApprovers, Requester}},
	{Message: MsgOverride, About: AboutCheck, From: []Principal{RunbookApprovers}},
	{Message: MsgAbort, About: AboutRun, From: []Principal{RunbookApprovers, Requester}},
	{Message: MsgNote, About: AboutRun, From: []Principal{Anyone}},
}

// rule is the Policy row for msg about kind, or nil: no one may send it.
func rule(msg, about string) *Rule {
	for i := range Policy {
		if Policy[i].Message == msg && Policy[i].About == about {
			return &Policy[i]
		}
	}
	return nil
}

// about is the kind of thing msg decides about step s (nil: the run).
func (r *run) about(msg string, s *step) string {
	switch {
	case msg == MsgOverride:
		return AboutCheck
	case s == nil:
		return AboutRun
	case s.state == StateAwaitingAck:
		return AboutTask
	case s.spec.Approval != nil && !s.gatePassed && s.layer != runbooks.TeardownLayer:
		return AboutGate
	}
	return AboutStep
}

// provenOnly is true where a decision counts only when a signature proves
// its sender: runs since versionOneAuthority on a worker with allowed signers.
func (r *run) provenOnly() bool { return r.authority && len(r.resolved.Signers) > 0 }

// authorize is the choke point: it applies msg's Policy row to sender by
// (proven by p, nil: unproven) about step s (nil: the run). It returns
// whether the message counts (false: recorded only), or why it is refused.
// Runs older than versionOneAuthority keep the checks they ran with.
func (r *run) authorize(msg string, s *step, by string, p *proof.Proof) (bool, error) {
	if !r.authority {
		return true, r.legacyAuthorize(msg, s, by, p)
	}
	about := r.about(msg, s)
	row := rule(msg, about)
	if row == nil {
		return false, fmt.Errorf("no one may send %s for %s now (it is %s)", msg, what(s), about)
	}
	if !slices.Contains(row.From, Anyone) && strings.TrimSpace(by) == "" {
		return false, fmt.Errorf("say who you are: %s needs --as NAME", msg)
	}
	if !r.mayBe(row, s, by) {
		if slices.Equal(row.From, []Principal{GateApprovers}) {
			return false, fmt.Errorf("%s is not in the approver groups of step %s (%s)", by, s.spec.ID, r.whoIs(row, s))
		}
		return false, fmt.Errorf("%s may not %s %s: only %s may %s it (%s)", by, msg, what(s), joinPrincipals(row.From), msg, r.whoIs(row, s))
	}
	separate := row.Separate && s != nil && s.spec.Approval != nil && s.spec.Approval.Separate
	if separate && by == r.req.RequestedBy {
		return false, fmt.Errorf("%s requested this run and step %s requires separation of duties: another approver must %s", by, s.spec.ID, msg)
	}
	if row.Signed && r.provenOnly() && p == nil {
		if row.Quorum {
			return false, nil // recorded, never counted
		}
		return false, fmt.Errorf("unproven: this worker has allowed signers, so only a signed %s counts; sign it with the CLI (lifeboat %s … --as %s, with your SSH key) or paste the JSON that lifeboat sign %s prints",
			msg, msg, orName(by), msg)
	}
	return true, nil
}

// mayBe is true when by is one of row's principals for step s.
func (r *run) mayBe(row *Rule, s *step, by string) bool {
	for _, who := range row.From {
		switch who {
		case Anyone:
			return true
		case Requester:
			if by == r.req.RequestedBy {
				return true
			}
		case GateApprovers:
			if s != nil && r.approvers(s)[by] {
				return true
			}
		case RunbookApprovers:
			if len(r.rb().Spec.Approvers) == 0 || r.isApprover(by) {
				return true
			}
		}
	}
	return false
}

// whoIs names the people row's principals are, for a refusal.
func (r *run) whoIs(row *Rule, s *step) string {
	var people []string
	for _, who := range row.From {
		switch who {
		case Requester:
			people = append(people, orSomeone(r.req.RequestedBy)+" (requester)")
		case GateApprovers:
			if s != nil && s.spec.Approval != nil {
				people = append(people, strings.Join(s.spec.Approval.From, ", ")+": "+strings.Join(sortedSet(r.approvers(s)), ", "))
			}
		case RunbookApprovers:
			var all []string
			for _, g := range r.rb().Spec.Approvers {
				all = append(all, g...)
			}
			slices.Sort(all)
			people = append(people, strings.Join(slices.Compact(all), ", "))
		}
	}
	return strings.Join(people, "; ")
}

// joinPrincipals says who ps are, as a refusal names them.
func joinPrincipals(ps []Principal) string {
	names := map[Principal]string{GateApprovers: "an approver of the gate", RunbookApprovers: "an approver", Requester: "the requester", Anyone: "anyone"}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = names[p]
	}
	return strings.Join(out, " or ")
}

func what(s *step) string {
	if s == nil {
		return "this run"
	}
	return "step " + s.spec.ID
}

// legacyAuthorize is what runs started before versionOneAuthority checked:
// the gate's approvers and separation for approve and reject, an approver
// for an override, nothing else.
func (r *run) legacyAuthorize(msg string, s *step, by string, p *proof.Proof) error {
	switch msg {
	case MsgApprove, MsgReject:
		people := r.approvers(s)
		if strings.TrimSpace(by) == "" {
			return fmt.Errorf("say who you are: %s needs --as NAME", msg)
		}
		if !people[by] {
			return fmt.Errorf("%s is not in the approver groups of step %s (%s: %s)", by, s.spec.ID,
				strings.Join(s.spec.Approval.From, ", "), strings.Join(sortedSet(people), ", "))
		}
		if s.spec.Approval.Separate && by == r.req.RequestedBy {
			return fmt.Errorf("%s requested this run and step %s requires separation of duties: another approver must %s", by, s.spec.ID, msg)
		}
		if r.signedDecisions && s.spec.Approval.Separate && p == nil {
			return fmt.Errorf("step %s requires separation of duties, so only a signed decision counts; paste the JSON of: lifeboat sign %s %s %s --as %s",
				s.spec.ID, msg, r.workflowID, s.spec.ID, orName(by))
		}
	case MsgAck:
		if strings.TrimSpace(by) == "" {
			return fmt.Errorf("say who you are: ack needs --as NAME")
		}
	case MsgOverride:
		if len(r.rb().Spec.Approvers) > 0 && !r.isApprover(by) {
			return fmt.Errorf("%s is not in any approver group of runbook %s: only an approver may override a failed check", orSomeone(by), r.rb().Metadata.Name)
		}
	}
	return nil
}
