package workflows

import (
	"cmp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// IdentitiesActivity reads, from the run's own history, the Temporal client
// identity the server recorded for the start and each operator message.
const IdentitiesActivity = "lifeboat.identities"

// MessageIdentity is one start, signal or accepted update of a run's
// history: its name ("start", "approve", …), the step and sender it names,
// and the client identity the server recorded with it.
type MessageIdentity struct {
	Name     string `json:"name"`
	Step     string `json:"step,omitempty"`
	By       string `json:"by,omitempty"`
	Identity string `json:"identity"`
}

// versionClientIdentities guards the identities read back from history
// for unproven actions before the evidence is assembled.
const versionClientIdentities = "client-identities"

// identify puts, beside every unproven name in the evidence, the client
// identity Temporal recorded with the message (the UI's user when the UI
// sent it), instead of what the sender said. A failure to read them is
// recorded and changes nothing else.
func (r *run) identify(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	info := workflow.GetInfo(ctx).WorkflowExecution
	var ids []MessageIdentity
	if err := workflow.ExecuteActivity(actx, IdentitiesActivity, info.ID, info.RunID).Get(ctx, &ids); err != nil {
		r.event(ctx, "identities-unavailable", "", "", "the Temporal client identities of unproven actions could not be read from history: "+causeMessage(err))
		return
	}
	used := make([]bool, len(ids))
	take := func(name, step, by string) string {
		for i, id := range ids {
			if !used[i] && id.Name == name && id.Step == step && id.By == by && id.Identity != "" {
				used[i] = true
				return id.Identity
			}
		}
		return ""
	}
	if id := take("start", "", r.req.RequestedBy); id != "" {
		r.identifyStart(id)
	}
	r.eachUnproven(func(name, step, by string, set func(string)) { set(take(name, step, by)) })
}

// versionIdentitiesWhenNeeded reads the client identities at the end only
// when an operator action the run recorded is unproven: the start's
// identity comes with the resolved runbook (the resolve activity reads the
// start event), so a run whose every message was signed (or that had none)
// ends without reading its whole history again.
const versionIdentitiesWhenNeeded = "identities-when-needed"

// identifyAtEnd records the client identities of unproven actions.
func (r *run) identifyAtEnd(ctx workflow.Context) {
	if workflow.GetVersion(ctx, versionIdentitiesWhenNeeded, workflow.DefaultVersion, 1) == 1 && r.resolved.StartClient != "" {
		unproven := false
		r.eachUnproven(func(string, string, string, func(string)) { unproven = true })
		if !unproven {
			r.identifyStart(r.resolved.StartClient)
			return
		}
	}
	r.identify(ctx)
}

// identifyStart records the start's client identity when the start itself
// proves no one (unsigned, no grant).
func (r *run) identifyStart(id string) {
	if r.requestProof == nil && r.req.Grant == nil {
		r.req.Client = id
	}
}

// eachUnproven calls f for every operator action the run records without
// a signature: the message's name, its step and sender, and how to record
// the client identity beside it.
func (r *run) eachUnproven(f func(name, step, by string, set func(string))) {
	for _, s := range r.order {
		for i := range s.approvals {
			if a := &s.approvals[i]; a.Proof == nil {
				f(approvalMessage[a.Decision], s.spec.ID, a.By, func(id string) { a.Client = cmp.Or(id, a.Client) })
			}
		}
	}
	label := func(e *record.EventRecord, name string) {
		if e.Proof == nil && e.By != "" {
			f(name, e.Step, e.By, func(id string) { e.Client = cmp.Or(id, e.Client) })
		}
	}
	for i := range r.events {
		if e := &r.events[i]; e.Kind == MsgRetry || e.Kind == MsgSkip || e.Kind == MsgAbort {
			label(e, e.Kind)
		}
	}
	for i := range r.refusals.events {
		e := &r.refusals.events[i]
		name, _, _ := strings.Cut(e.Text, ":")
		label(e, name)
	}
}

// approvalMessage is the message behind each decision an approval records.
var approvalMessage = map[string]string{"approved": MsgApprove, "rejected": MsgReject, "acknowledged": MsgAck, DecisionSkip: MsgSkip}
