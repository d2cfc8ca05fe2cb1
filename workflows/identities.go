package workflows

import (
	"cmp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
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
	if id := take("start", "", r.req.RequestedBy); id != "" && r.requestProof == nil && r.req.Grant == nil {
		r.req.Client = id
	}
	for _, s := range r.order {
		for i := range s.approvals {
			if a := &s.approvals[i]; a.Proof == nil {
				a.Client = cmp.Or(take(approvalMessage[a.Decision], s.spec.ID, a.By), a.Client)
			}
		}
	}
	label := func(e *runbooks.EventRecord, name string) {
		if e.Proof == nil && e.By != "" {
			e.Client = cmp.Or(take(name, e.Step, e.By), e.Client)
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
