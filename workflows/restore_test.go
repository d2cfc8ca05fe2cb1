package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// book wraps layers (and optional extra spec keys) into a whole runbook.
func book(rto, body string) string {
	return `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: test-book, version: 2, owner: sre, description: Case Intake API}
spec:
  scope: region
  disaster: region-failure
  objectives: {rto: ` + rto + `, rpo: 15m, mtd: 4h}
  approvers:
    ic: [alice, bob, dan]
    dba: [carol]
  targets:
    dr: {kubeContext: dr}
` + body
}

const twoLayers = `  layers:
    network:
      - id: net-a
        action: http.check
        with: {url: "http://a"}
      - id: net-b
        action: http.check
        with: {url: "http://b"}
    identity:
      - id: id-a
        action: http.check
        with: {url: "http://c"}
      - id: id-b
        action: http.check
        needs: [id-a]
        with: {url: "http://d"}
`

func TestLayersAreBarriersAndStepsWithoutNeedsRunInParallel(t *testing.T) {
	h := newHarness(t)
	h.rec.parallel("net-a", "net-b") // completes only if both run at once
	ev := h.run(book("60m", twoLayers), workflows.ModeFailover)

	assert.Equal(t, "succeeded", ev.Outcome)
	for _, id := range []string{"net-a", "net-b", "id-a", "id-b"} {
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, id).State, id)
	}
	lastNet := max(h.rec.index("end:net-a"), h.rec.index("end:net-b"))
	assert.Greater(t, h.rec.index("start:id-a"), lastNet, "identity started before network ended")
	assert.Greater(t, h.rec.index("start:id-b"), h.rec.index("end:id-a"), "needs not honoured")
	// parallel steps were started in the same instant of workflow time
	assert.Equal(t, *stepOf(t, ev, "net-a").Started, *stepOf(t, ev, "net-b").Started)
}

func TestRetryableFailureIsRetriedAndAttemptsRecorded(t *testing.T) {
	h := newHarness(t)
	h.rec.script["flaky"] = fails(2)
	ev := h.run(book("60m", `  layers:
    network:
      - id: flaky
        action: http.check
        retry: {attempts: 3, backoff: 1s}
        with: {url: "http://a"}
`), workflows.ModeFailover)
	s := stepOf(t, ev, "flaky")
	assert.Equal(t, workflows.StateSucceeded, s.State)
	assert.Equal(t, 3, s.Attempts)
	assert.Equal(t, 3, h.rec.count("flaky"))
}

const pausing = `  layers:
    network:
      - id: broken
        action: http.check
        retry: {attempts: 2, backoff: 1s}
        with: {url: "http://a"}
    identity:
      - id: after
        action: http.check
        with: {url: "http://b"}
`

func TestFailedStepPausesThenRetrySucceeds(t *testing.T) {
	h := newHarness(t)
	h.rec.script["broken"] = fails(2) // both attempts fail; the operator's retry succeeds
	h.at(time.Minute, func() {
		st := h.status()
		require.Equal(t, workflows.StatePaused, st.State)
		require.Len(t, st.Pending, 1)
		assert.Contains(t, st.Pending[0].Message, "lifeboat retry|skip")
		h.refused(workflows.MsgRetry, workflows.Retry{Step: "after"}, "not paused")
		h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "broken", By: "bob"})
	})
	ev := h.run(book("60m", pausing), workflows.ModeFailover)
	s := stepOf(t, ev, "broken")
	assert.Equal(t, workflows.StateSucceeded, s.State)
	assert.Equal(t, 3, s.Attempts)
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "after").State)
	assert.Equal(t, "succeeded", ev.Outcome)
}

func TestFailedStepPausesThenSkip(t *testing.T) {
	h := newHarness(t)
	h.rec.script["broken"] = nonRetryable("403: token lacks DNS edit rights")
	h.at(time.Minute, func() {
		h.refused(workflows.MsgSkip, workflows.Skip{Step: "broken"}, "reason")
		h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: "broken", By: "bob", Reason: "done by hand"})
	})
	ev := h.run(book("60m", pausing), workflows.ModeFailover)
	s := stepOf(t, ev, "broken")
	assert.Equal(t, workflows.StateSkipped, s.State)
	assert.Equal(t, 1, s.Attempts, "non-retryable error is not retried")
	assert.Equal(t, "bob", s.SkippedBy)
	assert.Contains(t, s.Error, "403")
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "after").State)
	assert.Equal(t, []string{"network/broken: done by hand (by bob)"}, ev.Skipped)
}

func TestFailedStepPausesThenAbort(t *testing.T) {
	h := newHarness(t)
	h.rec.script["broken"] = nonRetryable("bad config")
	h.at(time.Minute, func() {
		h.refused(workflows.MsgAbort, workflows.Abort{By: "bob"}, "reason")
		h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "wrong region"})
		h.refused(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "again"}, "aborted")
	})
	ev := h.run(book("60m", pausing), workflows.ModeFailover)
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Contains(t, ev.OutcomeReason, "wrong region")
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "broken").State)
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "after").State)
	assert.Equal(t, 0, h.rec.count("after"))
	assert.Contains(t, ev.Invariant, "Not established")
}

func TestOnFailureContinueAndAbort(t *testing.T) {
	h := newHarness(t)
	h.rec.script["soft"] = nonRetryable("soft check failed")
	h.rec.script["hard"] = nonRetryable("hard check failed")
	ev := h.run(book("60m", `  layers:
    network:
      - id: soft
        action: http.check
        onFailure: continue
        with: {url: "http://a"}
    identity:
      - id: hard
        action: http.check
        onFailure: abort
        with: {url: "http://b"}
    edge:
      - id: never
        action: http.check
        with: {url: "http://c"}
`), workflows.ModeFailover)
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "soft").State)
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "hard").State)
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "never").State)
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Len(t, ev.FailedChecks, 2)
}

const gated = `  layers:
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic, dba], min: 2, separate: true}
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
`

func TestApprovalQuorumAndEveryValidatorRefusal(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		require.Equal(t, workflows.StateAwaitingApproval, h.status().State)
		assert.Equal(t, 0, h.rec.count("shift"), "gated step ran before approval")
		for _, c := range []struct {
			msg  any
			name string
			want string
		}{
			{workflows.Approve{Step: "nope", By: "bob"}, workflows.MsgApprove, `unknown step "nope"`},
			{workflows.Approve{Step: "shift", By: "mallory"}, workflows.MsgApprove, "mallory is not in the approver groups"},
			{workflows.Approve{Step: "shift", By: "alice"}, workflows.MsgApprove, "separation of duties"},
			{workflows.Approve{Step: "shift"}, workflows.MsgApprove, "--as"},
			{workflows.Ack{Step: "shift", By: "bob"}, workflows.MsgAck, "not awaiting an acknowledgement"},
			{signed(h, workflows.Reject{Step: "shift", By: "bob"}), workflows.MsgReject, "reason"},
			{workflows.Retry{Step: "shift"}, workflows.MsgRetry, "not paused"},
		} {
			h.refused(c.name, c.msg, c.want)
		}
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob", Comment: "go"}))
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}), "already approved")
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State, "one approval of two must not open the gate")
		assert.Equal(t, 0, h.rec.count("shift"))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	ev := h.run(book("60m", gated), workflows.ModeFailover)
	s := stepOf(t, ev, "shift")
	assert.Equal(t, workflows.StateSucceeded, s.State)
	require.Len(t, s.Approvals, 2)
	assert.Equal(t, "bob", s.Approvals[0].By)
	assert.Equal(t, "go", s.Approvals[0].Comment)
	assert.Equal(t, "carol", s.Approvals[1].By)
	assert.Equal(t, runbooks.Duration(2*time.Minute), s.ApprovalWait)
	assert.Equal(t, 1, h.rec.count("shift"))
	assert.Equal(t, start.Add(2*time.Minute), *s.Started, "the step started when the gate opened")
}

func TestRejectionPausesTheStepThenRetryReopensTheGate(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgReject, signed(h, workflows.Reject{Step: "shift", By: "bob", Reason: "primary is back"}))
	})
	h.at(2*time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StatePaused, st.State)
		require.Len(t, st.Pending, 1)
		assert.Equal(t, `retry {"step": "shift", "by": "NAME"}; or skip with the JSON that lifeboat sign skip default-test-workflow-id shift --as NAME prints`, st.Pending[0].Signal,
			"a rejected gate's skip counts only signed: the hint says what to paste")
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "dan"}), "not awaiting approval")
		h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "shift", By: "bob"})
	})
	h.at(3*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State)
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "dan"}))
	})
	ev := h.run(book("60m", gated), workflows.ModeFailover)
	s := stepOf(t, ev, "shift")
	assert.Equal(t, workflows.StateSucceeded, s.State)
	assert.Equal(t, 1, h.rec.count("shift"))
	kinds := []string{}
	for _, e := range ev.Events {
		kinds = append(kinds, e.Kind)
	}
	assert.Contains(t, kinds, "reject")
	assert.Contains(t, kinds, "retry")
}

func TestRejectionThenAbortEndsRejected(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgReject, signed(h, workflows.Reject{Step: "shift", By: "carol", Reason: "data not verified"}))
		h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "carol", Reason: "stand down"})
	})
	ev := h.run(book("60m", gated), workflows.ModeFailover)
	assert.Equal(t, workflows.StateRejected, stepOf(t, ev, "shift").State)
	assert.Equal(t, 0, h.rec.count("shift"))
	assert.Equal(t, "aborted", ev.Outcome)
}

func gateWithTimeout(policy string) string {
	return `  layers:
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic], timeout: 15m, onTimeout: ` + policy + `}
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
`
}

func TestApprovalTimeoutAbort(t *testing.T) {
	h := newHarness(t)
	ev := h.run(book("60m", gateWithTimeout("abort")), workflows.ModeFailover)
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Contains(t, ev.OutcomeReason, "no approval for step shift within 15m")
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "shift").State)
	assert.Equal(t, 0, h.rec.count("shift"))
	assert.Equal(t, runbooks.Duration(15*time.Minute), ev.RTOActual)
}

func TestApprovalTimeoutProceed(t *testing.T) {
	h := newHarness(t)
	ev := h.run(book("60m", gateWithTimeout("proceed")), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Equal(t, 1, h.rec.count("shift"))
	assert.Equal(t, "approval-timeout", ev.Events[0].Kind)
}

func TestApprovalTimeoutEscalateKeepsWaiting(t *testing.T) {
	h := newHarness(t)
	h.at(20*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State, "escalation must keep waiting")
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "dan"}))
	})
	ev := h.run(book("60m", gateWithTimeout("escalate")), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Equal(t, "approval-escalated", ev.Events[0].Kind)
	assert.Equal(t, runbooks.Duration(20*time.Minute), stepOf(t, ev, "shift").ApprovalWait)
}

func TestRefusedSignalBecomesANoteAndTheRunKeepsWaiting(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.env.SignalWorkflow(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "mallory"})
	})
	h.at(2*time.Minute, func() {
		assert.Equal(t, workflows.StateAwaitingApproval, h.status().State)
		h.env.SignalWorkflow(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		h.env.SignalWorkflow(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	ev := h.run(book("60m", gated), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
	require.NotEmpty(t, ev.Notes)
	assert.Contains(t, ev.Notes[0].Text, "mallory is not in the approver groups")
	assert.Len(t, stepOf(t, ev, "shift").Approvals, 2)
}

func TestRTOBreachIsFlagged(t *testing.T) {
	h := newHarness(t)
	h.at(45*time.Minute, func() {
		assert.True(t, h.status().RTOBreached)
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	ev := h.run(book("30m", gated), workflows.ModeFailover)
	assert.True(t, ev.RTOBreached)
	assert.Equal(t, runbooks.Duration(45*time.Minute), ev.RTOActual)
	assert.Contains(t, ev.Invariant, "RTO was breached")
	var breach bool
	for _, e := range ev.Events {
		breach = breach || e.Kind == "rto-breached"
	}
	assert.True(t, breach)
}

func TestTabletopAcknowledgesEveryStepAndExecutesNothing(t *testing.T) {
	h := newHarness(t, "none-implemented") // tabletop needs no implementation
	h.at(time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StateAwaitingAck, st.State)
		require.Len(t, st.Pending, 2)
		assert.Contains(t, st.Pending[0].Message, "lifeboat ack")
		h.refused(workflows.MsgAck, workflows.Ack{Step: "net-a"}, "--as")
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "net-a", By: "bob"})
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "net-b", By: "bob"})
	})
	h.at(3*time.Minute, func() {
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "id-a", By: "dan"})
		h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: "id-b", By: "dan", Reason: "not in this exercise"})
	})
	ev := h.run(book("60m", twoLayers), workflows.ModeTabletop)
	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Equal(t, "acknowledged (tabletop: nothing executed)", stepOf(t, ev, "net-a").Summary)
	assert.Equal(t, runbooks.Duration(time.Minute), stepOf(t, ev, "net-a").Duration)
	assert.Equal(t, runbooks.Duration(2*time.Minute), stepOf(t, ev, "id-a").Duration)
	assert.Equal(t, workflows.StateSkipped, stepOf(t, ev, "id-b").State)
	assert.Empty(t, h.rec.calls)
	assert.Contains(t, ev.Invariant, "tabletop")
}

func TestUnimplementedActionIsRefusedBeforeAnythingRuns(t *testing.T) {
	h := newHarness(t, "http.check")
	err := h.runErr(book("60m", `  layers:
    network:
      - id: probe
        action: http.check
        with: {url: "http://a"}
    storage:
      - id: restore
        action: velero.restore
        with: {target: dr, schedule: hourly}
`), workflows.ModeFailover)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "velero.restore (spec.layers.storage[0], step restore)")
	assert.Contains(t, err.Error(), "Nothing was executed")
	assert.Equal(t, 0, h.rec.count("probe"))
}

func TestBadRequestsFailFast(t *testing.T) {
	h := newHarness(t)
	err := h.runErr(book("60m", twoLayers), "")
	assert.ErrorContains(t, err, `"mode" is missing`)
	h = newHarness(t)
	err = h.runErr("apiVersion: lifeboat/v1\nkind: Runbook\nbogus: 1\n", workflows.ModeDrill)
	assert.ErrorContains(t, err, `unknown field "bogus"`)
}

const drillBook = `  layers:
    storage:
      - id: restore
        action: velero.restore
        rpoSource: true
        with: {target: dr, schedule: hourly, namespaces: [case-management]}
    workloads:
      - id: scale
        action: kube.scale
        with: {target: dr, namespace: case-management, replicas: {case-api: 2}}
      - id: journey
        action: http.check
        needs: [scale]
        with: {url: "http://case-api/health"}
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
  drill:
    namespaceMappings: {case-management: drill-case}
    skip: [shift]
    every: 30d
    teardown:
      - id: drop
        action: kube.deleteNamespace
        with: {target: dr, namespace: drill-case}
`

func TestDrillAppliesMappingsSkipsAndTearsDownAndMeasuresRPO(t *testing.T) {
	h := newHarness(t)
	backup := start.Add(-8 * time.Minute)
	h.rec.script["restore"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{Summary: "restored", RecoveryPoint: &backup, RecoveryPointName: "hourly-20260615015200"}, nil
	}
	ev := h.run(book("60m", drillBook), workflows.ModeDrill)

	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Equal(t, "drill-case", h.rec.args["scale"]["namespace"], "namespace mapping not applied")
	assert.Equal(t, workflows.StateSkipped, stepOf(t, ev, "shift").State)
	assert.Equal(t, "listed in spec.drill.skip", stepOf(t, ev, "shift").SkipReason)
	assert.Equal(t, 0, h.rec.count("shift"))
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop").State)
	assert.Equal(t, "teardown", stepOf(t, ev, "drop").Layer)

	// every evidence field
	assert.True(t, strings.HasPrefix(ev.ID, "DR-2026-06-15-test-book-"), ev.ID)
	assert.Equal(t, record.RunbookRef{Name: "test-book", Version: 2, Hash: runbooks.HashOf([]byte(book("60m", drillBook))),
		Owner: "sre", Description: "Case Intake API"}, ev.Runbook)
	assert.Equal(t, "drill", ev.Mode)
	assert.Equal(t, "L2", ev.Level, ev.LevelReason)
	assert.Contains(t, ev.LevelReason, "no terraform.apply before the restore")
	assert.Equal(t, "region", ev.Scope)
	assert.Equal(t, "region-failure", ev.Disaster)
	assert.Equal(t, "test", ev.Reason)
	assert.Equal(t, "alice", ev.RequestedBy)
	assert.Equal(t, start, ev.DeclaredAt)
	assert.Equal(t, runbooks.Duration(15*time.Minute), ev.RPOTarget)
	require.NotNil(t, ev.RPOActual)
	assert.Equal(t, runbooks.Duration(8*time.Minute), *ev.RPOActual)
	assert.Equal(t, "hourly-20260615015200", ev.RecoveryPointName)
	assert.Equal(t, runbooks.Duration(60*time.Minute), ev.RTOTarget)
	assert.False(t, ev.RTOBreached)
	require.NotNil(t, ev.NextDrill)
	assert.Equal(t, start.Add(30*24*time.Hour), *ev.NextDrill)
	assert.Contains(t, ev.Invariant, "Given a total loss of the region (region-failure), we can restore Case Intake API to RPO <= 15m within RTO <= 1h")
	assert.Contains(t, ev.Invariant, "validated by drill "+ev.ID)
	for _, s := range ev.Steps {
		if s.State == workflows.StateSucceeded {
			assert.Equal(t, 1, s.Attempts, s.ID)
			assert.NotNil(t, s.Started, s.ID)
		}
	}
	md := ev.Markdown()
	for _, want := range []string{"Actual RPO | 8m", "Actual RTO", "## Timeline", "storage/restore", "Recovery invariant", "Next drill | 2026-07-15"} {
		assert.Contains(t, md, want)
	}
}

func TestInvariantNamesTheDeclaredCapability(t *testing.T) {
	h := newHarness(t)
	backup := start.Add(-8 * time.Minute)
	h.rec.script["restore"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{Summary: "restored", RecoveryPoint: &backup}, nil
	}
	yaml := strings.Replace(book("60m", drillBook), "  scope: region\n", "  scope: region\n  capability: the Case Intake API and its case data\n", 1)
	ev := h.run(yaml, workflows.ModeDrill)
	assert.Contains(t, ev.Invariant, "we can restore the Case Intake API and its case data to RPO <= 15m")
}

func TestDrillTeardownRunsAfterAbort(t *testing.T) {
	h := newHarness(t)
	h.rec.script["scale"] = nonRetryable("quota exceeded")
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "quota"}) })
	ev := h.run(book("60m", drillBook), workflows.ModeDrill)
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "journey").State)
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop").State, "teardown must run after abort")
	assert.Equal(t, 1, h.rec.count("drop"))
}

func TestDrillTeardownRunsAfterAFailedStep(t *testing.T) {
	for _, policy := range []string{"continue", "abort"} {
		t.Run(policy, func(t *testing.T) {
			h := newHarness(t)
			h.rec.script["scale"] = nonRetryable("quota exceeded")
			h.rec.script["drop"] = nonRetryable("namespace drill-case is stuck terminating")
			yaml := strings.Replace(book("60m", drillBook), "        with: {target: dr, namespace: case-management, replicas: {case-api: 2}}\n",
				"        with: {target: dr, namespace: case-management, replicas: {case-api: 2}}\n        onFailure: "+policy+"\n", 1)
			ev := h.run(yaml, workflows.ModeDrill)
			assert.NotEqual(t, "succeeded", ev.Outcome)
			assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "scale").State)
			drop := stepOf(t, ev, "drop")
			assert.Equal(t, workflows.StateFailed, drop.State, "teardown must run after a failed step, and its own failure is recorded")
			assert.Equal(t, 1, h.rec.count("drop"), "a failed teardown step does not pause the run")
			assert.Contains(t, ev.Markdown(), "stuck terminating")
		})
	}
}

func TestStatusShowsRTOBudgetAndProjection(t *testing.T) {
	h := newHarness(t)
	h.at(10*time.Minute, func() {
		st := h.status()
		assert.Equal(t, "test-book", st.Runbook)
		assert.Equal(t, "edge", st.Layer)
		assert.Equal(t, runbooks.Duration(50*time.Minute), st.RTORemaining)
		assert.Equal(t, start.Add(60*time.Minute), st.Deadline)
		// the gated step's estimate is its default timeout
		assert.Equal(t, start.Add(10*time.Minute+runbooks.DefaultStepTimeout), st.ProjectedFinish)
		require.Len(t, st.Pending, 1)
		assert.Equal(t, 2, st.Pending[0].Need)
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	h.run(book("60m", gated), workflows.ModeFailover)
}

func TestValidationLevelIsDerivedFromWhatPassed(t *testing.T) {
	full := `  layers:
    network:
      - {id: net, action: terraform.apply, with: {dir: infra}}
    storage:
      - {id: restore, action: velero.restore, rpoSource: true, with: {target: dr, schedule: hourly, namespaces: [app]}}
    workloads:
      - {id: journey, action: http.check, with: {url: "http://x"}}
    edge:
      - {id: shift, action: cloudflare.dnsSwitch, with: {zone: example.com, record: a.example.com, to: b.example.com}}
  drill:
    namespaceMappings: {app: drill-app}
    skip: [shift]
    with: {net: {dir: infra-drill}}
`
	for _, c := range []struct {
		mode, level string
		fail        string
	}{
		{workflows.ModeDrill, "L4", ""},
		{workflows.ModeFailover, "L5", ""},
		{workflows.ModeFailover, "L3", "journey"},
		{workflows.ModeTabletop, "", ""},
	} {
		h := newHarness(t)
		backup := start.Add(-time.Minute)
		h.rec.script["restore"] = func(int) (runbooks.StepResult, error) { return runbooks.StepResult{RecoveryPoint: &backup}, nil }
		if c.fail != "" {
			h.rec.script[c.fail] = nonRetryable("journey broken")
			h.at(time.Minute, func() {
				h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: c.fail, By: "alice", Reason: "known issue"})
			})
		}
		if c.mode == workflows.ModeTabletop {
			h.at(time.Minute, func() {
				for _, id := range []string{"net", "restore", "journey", "shift"} {
					h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: id, By: "alice", Reason: "paper"})
				}
			})
		}
		ev := h.run(book("60m", full), c.mode)
		assert.Equal(t, c.level, ev.Level, "%s/%s: %s", c.mode, c.fail, ev.LevelReason)
	}
}

// A run may take its own backup first (velero.backup, rpoSource): the
// backup's completion is the run's recovery point.
func TestAnOnDemandBackupIsTheRecoveryPoint(t *testing.T) {
	h := newHarness(t, append([]string{activities.VeleroBackup}, fakeActions...)...)
	taken := start.Add(-20 * time.Second)
	h.rec.script["backup-now"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{Summary: "backup completed", RecoveryPoint: &taken, RecoveryPointName: "lifeboat-backup-backup-now-0123456789"}, nil
	}
	ev := h.run(book("60m", `  layers:
    storage:
      - {id: backup-now, action: velero.backup, rpoSource: true, with: {target: dr, schedule: hourly}}
      - {id: restore, action: velero.restore, needs: [backup-now], with: {target: dr, schedule: hourly, namespaces: [app]}}
`), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
	require.NotNil(t, ev.RPOActual)
	assert.Equal(t, runbooks.Duration(20*time.Second), *ev.RPOActual)
	assert.Equal(t, "lifeboat-backup-backup-now-0123456789", ev.RecoveryPointName)
	assert.Equal(t, map[string]any{"target": "dr", "schedule": "hourly"}, h.rec.args["backup-now"])
}

// Issue 25 ("RPO, honestly"): a run restored from two sources — a Velero
// backup and a database replica — has the RPO of the older one, and its
// evidence lists both.
func TestTheRPOIsTheWorstOfItsSources(t *testing.T) {
	h := newHarness(t, append([]string{activities.VeleroBackup}, fakeActions...)...)
	backup, replica := start.Add(-12*time.Minute), start.Add(-3*time.Second)
	h.rec.script["restore"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{RecoveryPoint: &backup, RecoveryPointName: "hourly-20260615014800"}, nil
	}
	h.rec.script["promote"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{RecoveryPoint: &replica, RecoveryPointName: "replica case-db-standby"}, nil
	}
	ev := h.run(book("60m", `  layers:
    storage:
      - {id: restore, action: velero.restore, rpoSource: true, with: {target: dr, schedule: hourly, namespaces: [app]}}
      - {id: promote, action: velero.backup, rpoSource: true, needs: [restore], with: {target: dr, schedule: db}}
`), workflows.ModeFailover)
	require.NotNil(t, ev.RPOActual)
	assert.Equal(t, runbooks.Duration(12*time.Minute), *ev.RPOActual, "the older recovery point counts, whichever step ended last")
	assert.Equal(t, "hourly-20260615014800", ev.RecoveryPointName)
	require.Len(t, ev.RPOSources, 2)
	assert.Equal(t, "restore", ev.RPOSources[0].Step)
	assert.Equal(t, record.RPOSource{Step: "promote", Name: "replica case-db-standby", RecoveryPoint: replica, RPO: runbooks.Duration(3 * time.Second)}, ev.RPOSources[1])
	assert.Contains(t, ev.Markdown(), "the worst of: restore 12m (hourly-20260615014800")
	assert.Contains(t, ev.Markdown(), "; promote 3s (replica case-db-standby")
}

// A decision on a step that has not reached its gate says what the step
// waits for: the steps it needs, or the layer before its own.
func TestADecisionTooEarlySaysWhatTheStepWaitsFor(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() {
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}),
			"step shift is not awaiting approval (it is pending: its layer edge starts after layer network)")
		h.refused(workflows.MsgApprove, signed(h, workflows.Approve{Step: "page", By: "bob"}),
			"step page is not awaiting approval (it waits for call-dba to end: the step it needs)")
		h.refused(workflows.MsgAck, signed(h, workflows.Ack{Step: "page", By: "bob"}),
			"step page is not awaiting an acknowledgement (it waits for call-dba to end: the step it needs)")
		h.mustUpdate(workflows.MsgAck, signed(h, workflows.Ack{Step: "call-dba", By: "bob"}))
	})
	h.at(2*time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "page", By: "bob"}))
	})
	h.at(3*time.Minute, func() {
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"}))
	})
	ev := h.run(book("60m", `  layers:
    network:
      - id: call-dba
        action: manual.task
        with: {instructions: "phone the DBA on call"}
      - id: page
        action: http.check
        needs: [call-dba]
        approval: {from: [ic]}
        with: {url: "http://a"}
    edge:
      - id: shift
        action: http.check
        with: {url: "http://b"}
        approval: {from: [ic]}
`), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
}
