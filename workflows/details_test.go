package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// currentDetails is the text the Temporal UI shows in Current Details.
func (h *harness) currentDetails() string {
	h.t.Helper()
	v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(h.t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(h.t, v.Get(&md))
	return md.GetCurrentDetails()
}

const gatedManual = `  layers:
    network:
      - id: check
        action: http.check
        with: {url: "http://a"}
      - id: call-dba
        action: manual.task
        with: {instructions: "phone the DBA on call and ask for the replica lag"}
    edge:
      - id: shift
        action: http.check
        with: {url: "http://b"}
        approval: {from: [ic]}
`

// The UI's Current Details pane is short: the action line comes first (the
// command, the signal, who may approve, a manual task's instructions), a
// refusal is a sentence and goes once the gate moves on, and the RTO shows
// as a deadline, not a "remaining" figure that goes stale.
func TestCurrentDetailsPutWhatToDoFirst(t *testing.T) {
	h := newHarness(t)
	var waitingAck, refused, moved, finished string
	h.at(time.Minute, func() { waitingAck = h.currentDetails() })
	h.at(2*time.Minute, func() { h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "call-dba", By: "bob"}) })
	h.at(3*time.Minute, func() {
		h.env.SignalWorkflow(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "mallory"})
	})
	h.at(4*time.Minute, func() { refused = h.currentDetails() })
	h.at(5*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "bob"}) })
	h.at(5*time.Minute+time.Second, func() { moved = h.currentDetails() })
	ev := h.run(book("60m", gatedManual), workflows.ModeFailover)
	finished = h.currentDetails()
	assert.Equal(t, "succeeded", ev.Outcome)

	assert.True(t, strings.HasPrefix(waitingAck, "**Waiting:** step call-dba waits for an acknowledgement (instructions: phone the DBA on call and ask for the replica lag)"), waitingAck)
	assert.Contains(t, waitingAck, "RTO 1h: deadline **03:00:00 UTC**")
	assert.NotContains(t, waitingAck, "remaining")

	assert.True(t, strings.HasPrefix(refused, "**Waiting:** step shift needs 1 signed approval(s) from ic (have 0); may approve: alice, bob, dan: `lifeboat approve"), refused)
	lines := strings.Split(refused, "\n\n")
	require.GreaterOrEqual(t, len(lines), 3, refused)
	assert.Contains(t, lines[0], "or signal `approve` with the JSON that `lifeboat sign approve default-test-workflow-id shift --as NAME` prints",
		"where only a signed approval counts, the UI hint says what to paste, not a JSON that would be recorded unproven")
	assert.Equal(t, "**test-book** v2 — failover — **awaiting-approval** — layer edge — RTO 1h: deadline **03:00:00 UTC**", lines[1],
		"the state and the deadline share the second line: the pane shows about four")
	assert.Regexp(t, `^\*\*Refused:\*\* an approve signal for step shift from mallory was refused at 02:03:00 UTC: mallory is not in the approver groups of step shift \(ic: alice, bob, dan\)\.$`, lines[2])
	assert.NotContains(t, lines[2], "{", "a refusal is a sentence, not a Go struct")

	assert.NotContains(t, moved, "Refused", "the refusal goes once the gate has moved on")
	assert.True(t, strings.HasPrefix(finished, "**test-book** v2 — failover — **succeeded**"), finished)
	assert.Regexp(t, `RTO 1h: finished in 5m, 55m before the deadline 03:00:00 UTC$`, finished)
}
