package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Issue 24, scenario 4: the requester, refused as approver at a separate
// gate, skipped it with her own signature and the failover ran. Skipping a
// gate is the gate's decision: its approvers, its quorum, its separation.
func TestTheRequesterCannotSkipASeparateGate(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "alice"}), "separation of duties")
		h.refused(workflows.MsgSkip, signed(h, workflows.Skip{Step: "shift", By: "alice", Reason: "I know what I am doing"}), "separation of duties")
		h.env.SignalWorkflow(workflows.MsgSkip, signed(h, workflows.Skip{Step: "shift", By: "alice", Reason: "through the UI then"}))
		h.refused(workflows.MsgSkip, signed(h, workflows.Skip{Step: "other", By: "carol", Reason: "not in ic"}), "not in the approver groups of step other")
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StateAwaitingApproval, st.State, "the gate still waits")
		h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "stop"})
	})
	req := signedStart(h, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	assert.Equal(t, 0, h.rec.count("shift"), "the DNS switch never ran")
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "shift").State)
	assert.Equal(t, 1, ev.RefusedSignals)
}

// A skip of a gate needs the gate's quorum of distinct proven approvers,
// as an approval does.
func TestSkippingAGateTakesTheGatesQuorum(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: "shift", By: "bob", Reason: "edge is fine"})
		h.refused(workflows.MsgSkip, workflows.Skip{Step: "shift", By: "bob", Reason: "again"}, "already asked to skip")
		h.mustUpdate(workflows.MsgSkip, unsigned{workflows.Skip{Step: "shift", By: "dan", Reason: "unsigned"}})
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State, "one proven skip of two")
		h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: "shift", By: "dan", Reason: "agreed"})
	})
	ev := h.run(book("60m", twoPersonGate), workflows.ModeFailover)
	assert.Equal(t, workflows.StateSkipped, stepOf(t, ev, "shift").State)
	assert.Equal(t, 0, h.rec.count("shift"))
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
}

// twoPersonGate is a DNS switch behind a gate of two distinct approvers.
const twoPersonGate = `  layers:
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic], min: 2}
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
`

// Issue 24, scenario 4: ack (any name) and abort checked no group.
func TestAckAndAbortComeFromTheRunsPeople(t *testing.T) {
	h := newHarness(t)
	task := `  layers:
    workloads:
      - id: warm-caches
        action: manual.task
        with: {instructions: "warm the caches"}
`
	h.at(time.Minute, func() {
		h.refused(workflows.MsgAck, workflows.Ack{Step: "warm-caches", By: "eve"}, "eve may not ack step warm-caches")
		h.refused(workflows.MsgAbort, workflows.Abort{By: "eve", Reason: "bored"}, "eve may not abort this run")
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "warm-caches", By: "carol"})
	})
	ev := h.run(book("60m", task), workflows.ModeFailover)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	require.Len(t, stepOf(t, ev, "warm-caches").Approvals, 1)
	assert.Equal(t, "carol", stepOf(t, ev, "warm-caches").Approvals[0].By)
}

// Issue 24, scenario 7: without signatures.required, one client approving
// as "bob" then as "dan" met a min: 2 gate in front of a DNS switch. Where
// the worker has allowed signers, unproven approvals are recorded and
// never counted.
func TestUnprovenNamesNeverMeetAQuorum(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "shift", By: "bob"}})
		h.mustUpdate(workflows.MsgApprove, unsigned{workflows.Approve{Step: "shift", By: "dan"}})
		h.env.SignalWorkflow(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "alice"})
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StateAwaitingApproval, st.State)
		require.Len(t, st.Pending, 1)
		assert.Empty(t, st.Pending[0].Have, "three unproven names, none counted")
		assert.Equal(t, 0, h.rec.count("shift"))
		h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "no proven approvers"})
	})
	ev := h.run(book("60m", twoPersonGate), workflows.ModeFailover)
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	assert.Len(t, stepOf(t, ev, "shift").Approvals, 3, "each unproven approval is recorded")
	assert.Contains(t, ev.Markdown(), "recorded, not counted")
}
