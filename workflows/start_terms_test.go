package workflows_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Issue 24, scenario 3: alice's signed --dry-run start, copied from
// history with dryRun false, started a real failover "requested by alice
// (proven)". The start's signature covers every field that changes what
// the run does: changing any one of them refuses the start.
func TestAStartCopiedWithOneFieldChangedIsRefused(t *testing.T) {
	declared := start.Add(-10 * time.Minute)
	for name, change := range map[string]func(*workflows.Request){
		"dryRun":             func(r *workflows.Request) { r.DryRun = false },
		"precheckOnly":       func(r *workflows.Request) { r.PrecheckOnly = !r.PrecheckOnly },
		"declaredAt":         func(r *workflows.Request) { later := declared.Add(5 * time.Minute); r.DeclaredAt = &later },
		"inlineRunbook":      func(r *workflows.Request) { r.InlineRunbook += "# edited\n" },
		"failIfUnsuccessful": func(r *workflows.Request) { r.FailIfUnsuccessful = !r.FailIfUnsuccessful },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			req := h.request(book("60m", oneApprover), workflows.ModeFailover, "alice")
			req.DryRun, req.DeclaredAt = true, &declared
			req = signedStart(h, req)
			change(&req)
			// The edited text is a reviewed runbook too: only the signature stops it.
			require.NoError(t, os.WriteFile(filepath.Join(h.res.Dirs[0], "edited.yaml"), []byte(req.InlineRunbook), 0o644))
			h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
			require.True(t, h.env.IsWorkflowCompleted())
			err := h.workflowError()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "the start's signature is refused")
			assert.Equal(t, 0, h.rec.count("shift"))
		})
	}
}

// A signed start starts one run: the same request started again under the
// same workflow id (AllowDuplicate, TerminateIfRunning) finds the first
// chain and refuses.
func TestASignedStartStartsOneRun(t *testing.T) {
	h := newHarness(t)
	h.otherChains = []string{"the-first-run"}
	req := signedStart(h, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.workflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the start's signature is spent: it already started run the-first-run")
}

// A planStart is what a plan gives the members it starts. Added to a
// signed start copied from history (or to a schedule's grant), it skipped
// the spent and declaredAt checks: a run that no plan started is refused.
func TestAPlanStartOnARunNoPlanStartedIsRefused(t *testing.T) {
	for name, build := range map[string]func(h *harness) workflows.Request{
		"a spent signed start": func(h *harness) workflows.Request {
			h.otherChains = []string{"the-first-run"}
			return signedStart(h, h.request(book("60m", oneApprover), workflows.ModeFailover, "alice"))
		},
		"a schedule's grant with a future declaredAt": func(h *harness) workflows.Request {
			h.res.SignaturesRequired = true
			req := h.request(book("60m", twoLayers), workflows.ModeDrill, "alice")
			req.Grant = &workflows.ScheduleGrant{Workflows: "default-test-workflow", SignedAt: h.env.Now().Add(-24 * time.Hour)}
			sig, err := proof.SignDecision(workflows.GrantDecision(req), testKeys["alice"])
			require.NoError(t, err)
			req.Grant.Signature = sig
			future := start.Add(3 * time.Hour)
			req.DeclaredAt = &future
			return req
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			req := build(h)
			req.PlanStart = &workflows.PlanStart{WorkflowID: "nobody"}
			h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
			require.True(t, h.env.IsWorkflowCompleted())
			err := h.workflowError()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "this run was not started by plan run \"nobody\"")
			assert.Zero(t, h.rec.count("shift")+h.rec.count("net-a"), "nothing ran")
		})
	}
}

// Issue 24, scenario 3: declaredAt was unchecked: a future value shrank the
// reported RTO. It must lie in the past, within the runbook's MTD.
func TestDeclaredAtMustBeInThePastWithinTheMTD(t *testing.T) {
	for name, c := range map[string]struct {
		at   time.Duration
		want string
	}{
		"future":         {30 * time.Minute, "is in the future"},
		"older than MTD": {-5 * time.Hour, "more than the runbook's MTD (4h)"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			req := h.request(book("60m", oneApprover), workflows.ModeFailover, "alice")
			at := start.Add(c.at)
			req.DeclaredAt = &at
			h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
			require.True(t, h.env.IsWorkflowCompleted())
			err := h.workflowError()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, 0, h.rec.count("shift"))
		})
	}
}
