package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Issue 24, scenario 1: a plan started with dryRun (the UI's Start Workflow
// form) ran a real failover. Every member must be a dry run too: no step's
// action runs, and each member records itself as a dry run.
func TestAPlanDryRunChangesNothing(t *testing.T) {
	for _, flag := range []string{"dryRun", "precheckOnly"} {
		t.Run(flag, func(t *testing.T) {
			h := newHarness(t)
			req := h.plan(workflows.ModeFailover, regionMembers())
			req.DryRun, req.PrecheckOnly = flag == "dryRun", flag == "precheckOnly"
			h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
			ev := h.result()
			for _, id := range []string{"idp-up", "data-back", "cases-up", "reports-up"} {
				assert.Equal(t, 0, h.rec.count(id), "step %s of a member ran in a %s of the plan", id, flag)
			}
			assert.Equal(t, req.ModeLabel(), ev.Mode)
			require.NotNil(t, ev.Plan)
			require.Len(t, ev.Plan.Members, 4)
			for _, m := range ev.Plan.Members {
				assert.Equal(t, workflows.RunSucceeded, m.Outcome, "member %s", m.Runbook)
			}
		})
	}
}

// Issue 24, scenario 6: a required member after a failed optional one was
// blocked, and the plan still said succeeded with an empty invariant. The
// rule (README, Recovery plans): a member that comes after an optional
// member starts when that member has ended, whatever its outcome; a
// required member that does not succeed fails the plan.
func TestARequiredMemberThatNeverRanFailsThePlan(t *testing.T) {
	const plan = planHeader + `    - runbook: identity
      optional: true
    - runbook: cases
      after: [identity]
`
	files := map[string]string{"plan": plan,
		"identity": member("identity", "      - {id: idp-up, action: http.check, with: {url: \"http://idp\"}, retry: {attempts: 1}, onFailure: abort}\n"),
		"cases":    member("cases", "      - {id: cases-up, action: http.check, with: {url: \"http://cases\"}, retry: {attempts: 1}, onFailure: abort}\n"),
	}
	t.Run("after a failed optional member the required one runs", func(t *testing.T) {
		h := newHarness(t)
		req := h.plan(workflows.ModeDrill, files)
		h.rec.script["idp-up"] = nonRetryable("idp down")
		h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
		ev := h.result()
		assert.Equal(t, 1, h.rec.count("cases-up"))
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		assert.Contains(t, ev.Invariant, "we can restore cases within")
	})
	t.Run("a required member that fails fails the plan", func(t *testing.T) {
		h := newHarness(t)
		req := h.plan(workflows.ModeDrill, files)
		h.rec.script["cases-up"] = nonRetryable("cases down")
		h.at(time.Minute, func() {
			h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "cases will not come back"})
		})
		h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
		ev := h.result()
		assert.NotEqual(t, workflows.RunSucceeded, ev.Outcome)
		assert.NotContains(t, ev.Invariant, "we can restore  within")
	})
}

// Issue 24, scenario 6: members' RTO clocks start at the plan's
// declaration, not at their own start.
func TestPlanMembersRunTheirRTOFromThePlansDeclaration(t *testing.T) {
	h := newHarness(t)
	req := h.plan(workflows.ModeDrill, regionMembers())
	declared := start.Add(-50 * time.Minute)
	req.DeclaredAt = &declared
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "bob"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	byName := map[string]record.MemberRecord{}
	for _, m := range ev.Plan.Members {
		byName[m.Runbook] = m
	}
	assert.GreaterOrEqual(t, byName["identity"].RTOActual.D(), 50*time.Minute)
	assert.True(t, byName["cases"].RTOBreached, "cases (RTO 30m) ended 51 minutes after the declaration")
}

// Issue 24 (8): a decision forwarded by a plan went to the first member
// with a pending step of that id. When two members wait on a step of the
// same id, the plan refuses to guess: the sender names the member's run.
func TestAForwardedDecisionNamesItsMember(t *testing.T) {
	const plan = planHeader + `    - runbook: identity
    - runbook: storage
`
	gated := "      - id: go-live\n        action: http.check\n        with: {url: \"http://x\"}\n        approval: {from: [ic], min: 1}\n"
	h := newHarness(t)
	req := h.plan(workflows.ModeDrill, map[string]string{"plan": plan, "identity": member("identity", gated), "storage": member("storage", gated)})
	h.at(time.Minute, func() {
		h.refused(workflows.MsgApprove, workflows.Approve{Step: "go-live", By: "bob"}, "all wait on a step go-live: send the decision to the member's own run")
	})
	h.at(2*time.Minute, func() {
		for _, m := range []string{"identity", "storage"} {
			id := testWorkflowID + "." + m
			h.env.SignalWorkflowByID(id, workflows.MsgApprove, signedWith(h, workflows.Approve{Step: "go-live", By: "bob"}, "bob", id, id+"_RunID", h.env.Now()))
		}
	})
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 2, h.rec.count("go-live"))
}
