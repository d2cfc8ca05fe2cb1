package workflows_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// member is a one-layer runbook named name whose steps are the given YAML.
func member(name, steps string) string {
	return fmt.Sprintf(`apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: %s, version: 1}
spec:
  scope: application
  objectives: {rto: 30m, rpo: 15m}
  approvers:
    ic: [alice, bob]
  targets:
    dr: {kubeContext: dr}
  layers:
    workloads:
%s`, name, steps)
}

// planHeader is every test plan's head: region-loss (RTO 2h, MTD 8h,
// approvers ic: alice, bob), its members to follow.
const planHeader = `apiVersion: lifeboat/v1
kind: RecoveryPlan
metadata: {name: region-loss, version: 1}
spec:
  scope: region
  objectives: {rto: 2h, mtd: 8h}
  approvers:
    ic: [alice, bob]
  members:
`

const regionPlan = planHeader + `    - runbook: identity
    - runbook: storage
    - runbook: cases
      after: [identity, storage]
      approval: {from: [ic], min: 1}
    - runbook: reporting
      after: [cases]
      optional: true
`

// plan writes the plan and its members into the harness's catalog and
// returns the request that starts it.
func (h *harness) plan(mode string, files map[string]string) workflows.Request {
	h.t.Helper()
	for name, text := range files {
		require.NoError(h.t, os.WriteFile(filepath.Join(h.res.Dirs[0], name+".yaml"), []byte(text), 0o644))
	}
	h.env.RegisterWorkflowWithOptions(workflows.RecoveryPlanWorkflow, workflow.RegisterOptions{Name: workflows.RecoveryPlanWorkflowName})
	return workflows.Request{Plan: "region-loss", Mode: mode, RequestedBy: "alice", Reason: "Q4 region drill"}
}

func regionMembers() map[string]string {
	return map[string]string{
		"plan":      regionPlan,
		"identity":  member("identity", "      - {id: idp-up, action: http.check, with: {url: \"http://idp\"}}\n"),
		"storage":   member("storage", "      - {id: data-back, action: http.check, with: {url: \"http://data\"}}\n"),
		"cases":     member("cases", "      - {id: cases-up, action: http.check, with: {url: \"http://cases\"}}\n"),
		"reporting": member("reporting", "      - {id: reports-up, action: http.check, with: {url: \"http://reports\"}, retry: {attempts: 1}, onFailure: abort}\n"),
	}
}

func TestARecoveryPlanRunsItsMembersAsChildRunsInDependencyOrder(t *testing.T) {
	h := newHarness(t)
	req := h.plan(workflows.ModeDrill, regionMembers())
	h.rec.parallel("idp-up", "data-back") // members without dependencies start together
	h.rec.script["reports-up"] = nonRetryable("reports API down")
	h.at(time.Minute, func() {
		st := h.status()
		assert.True(t, st.Plan)
		require.Len(t, st.Pending, 1, "%+v", st.Pending)
		assert.Equal(t, "cases", st.Pending[0].Step, "the member's gate waits on the plan")
		h.refused(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "mallory"}, "mallory is not in the approver groups of step cases")
		h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "bob", Comment: "identity and data are back"})
	})
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()

	assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "the optional member's failure does not fail the plan")
	assert.Less(t, h.rec.index("end:data-back"), h.rec.index("start:cases-up"))
	assert.Less(t, h.rec.index("end:idp-up"), h.rec.index("start:cases-up"))
	require.NotNil(t, ev.Plan)
	byName := map[string]record.MemberRecord{}
	for _, m := range ev.Plan.Members {
		byName[m.Runbook] = m
	}
	assert.Equal(t, testWorkflowID+".cases", byName["cases"].WorkflowID)
	assert.Equal(t, workflows.RunSucceeded, byName["cases"].Outcome)
	assert.Equal(t, workflows.RunAborted, byName["reporting"].Outcome, "its runbook aborts on the failure")
	assert.True(t, byName["reporting"].Optional)
	assert.Equal(t, "30m", byName["cases"].RTOTarget.String())
	assert.True(t, strings.HasPrefix(byName["cases"].Hash, "sha256:"))
	assert.Contains(t, ev.Plan.CriticalPath, "cases", "the gate wait puts cases on the critical path")
	assert.Equal(t, "1m", ev.Plan.CriticalPathTook.String(), "members take no mock time; the gate took a minute")
	cases := stepOf(t, ev, "cases")
	require.Len(t, cases.Approvals, 1)
	assert.Equal(t, "bob", cases.Approvals[0].By)
	assert.Contains(t, stepOf(t, ev, "reporting").Error, "reports API down")
	md := ev.Markdown()
	assert.Contains(t, md, "## Members")
	assert.Contains(t, md, "| RPO | in each member's evidence |")
	assert.Contains(t, md, "| reporting (optional) | aborted |")
	assert.Contains(t, md, "lifeboat evidence "+testWorkflowID+".identity")
	assert.Contains(t, ev.Invariant, "we can restore identity, storage, cases within RTO <= 2h using recovery plan region-loss v1")
	assert.Equal(t, 1, h.rec.count("cases-up"), "each member runs once")
}

// An approval a member's run waits for can be answered on the plan: the
// plan's status shows it, and the plan hands it to the right member.
func TestAnApprovalAnsweredOnThePlanReachesTheMember(t *testing.T) {
	h := newHarness(t)
	files := regionMembers()
	files["storage"] = member("storage", `      - id: data-back
        action: http.check
        with: {url: "http://data"}
        approval: {from: [ic], min: 1}
`)
	req := h.plan(workflows.ModeDrill, files)
	h.at(time.Minute, func() {
		st := h.status()
		var waits []string
		for _, p := range st.Pending {
			waits = append(waits, p.Member+"/"+p.Step)
		}
		assert.Equal(t, []string{"storage/data-back"}, waits)
		assert.Equal(t, workflows.StateAwaitingApproval, st.State)
		assert.Equal(t, testWorkflowID+".storage", st.Pending[0].MemberRun)
		assert.Contains(t, st.Pending[0].Command, "lifeboat approve "+testWorkflowID+".storage data-back")
		// Signed for the member's run, which checks it as its own.
		member := testWorkflowID + ".storage"
		h.mustUpdate(workflows.MsgApprove, signedWith(h, workflows.Approve{Step: "data-back", By: "bob"}, "bob", member, member+"_RunID", h.env.Now()))
	})
	h.at(2*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "alice"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 1, h.rec.count("data-back"))
	var forwarded bool
	for _, e := range ev.Events {
		forwarded = forwarded || (e.Kind == "forwarded" && e.Step == "data-back" && e.By == "bob")
	}
	assert.True(t, forwarded, "the plan's evidence records the hand-over")
}

// A member that is not optional and fails pauses the plan; an operator's
// retry starts the member again under a new run id.
func TestAFailedMemberPausesThePlanAndARetryRunsItAgain(t *testing.T) {
	h := newHarness(t)
	files := regionMembers()
	files["identity"] = member("identity", "      - {id: idp-up, action: http.check, with: {url: \"http://idp\"}, retry: {attempts: 1}, onFailure: abort}\n")
	req := h.plan(workflows.ModeDrill, files)
	h.rec.script["idp-up"] = func(call int) (runbooks.StepResult, error) {
		if call == 1 {
			return runbooks.StepResult{}, fmt.Errorf("identity provider 503")
		}
		return runbooks.StepResult{Summary: "ok"}, nil
	}
	h.at(time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StatePaused, st.State)
		h.refused(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "bob"}, "step cases is not awaiting approval")
		h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "identity", By: "bob"})
	})
	h.at(2*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "alice"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 2, h.rec.count("idp-up"))
	for _, m := range ev.Plan.Members {
		if m.Runbook == "identity" {
			assert.Equal(t, testWorkflowID+".identity.retry-1", m.WorkflowID)
		}
	}
}

// Aborting the plan aborts the running members (their own evidence says
// so) and starts no other.
func TestAbortingThePlanAbortsItsRunningMembers(t *testing.T) {
	h := newHarness(t)
	req := h.plan(workflows.ModeDrill, regionMembers())
	h.rec.block("data-back")
	h.at(time.Second, func() { h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "wrong region"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	states := map[string]string{}
	for _, m := range ev.Plan.Members {
		states[m.Runbook] = m.Outcome
	}
	assert.Equal(t, map[string]string{"identity": workflows.RunSucceeded, "storage": workflows.OutcomeCancelled,
		"cases": workflows.StateNotRun, "reporting": workflows.StateNotRun}, states)
	assert.Equal(t, 0, h.rec.count("cases-up"))
}

// A plan whose member could not run (here: an action this worker does not
// implement) is refused before any member starts.
func TestAPlanWithAMemberThatWouldBeRefusedNeverStarts(t *testing.T) {
	h := newHarness(t)
	files := regionMembers()
	files["cases"] = member("cases", "      - {id: cases-up, action: kube.pvcBound, with: {target: dr, namespace: cases}}\n")
	req := h.plan(workflows.ModeDrill, files)
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.workflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "recovery plan region-loss cannot run as a drill")
	assert.Contains(t, err.Error(), "member cases:")
	assert.Equal(t, 0, h.rec.count("idp-up"))
}

// A plan's signed start proves its members' requester; the same start
// copied into a run that is not the plan's child proves nothing.
func TestAPlanStartProvesOnlyItsOwnMembers(t *testing.T) {
	h := newHarness(t)
	req := signedStart(h, h.plan(workflows.ModeDrill, regionMembers()))
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "bob"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	ev := h.result()
	require.NotNil(t, ev.RequestProof, "the plan's start is signed")
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)

	attacker := newHarness(t)
	stolen := workflows.Request{Runbook: "identity", Mode: workflows.ModeDrill, RequestedBy: "alice",
		PlanStart: &workflows.PlanStart{WorkflowID: "some-plan", Request: req, StartedAt: start}}
	for name, text := range regionMembers() {
		require.NoError(t, os.WriteFile(filepath.Join(attacker.res.Dirs[0], name+".yaml"), []byte(text), 0o644))
	}
	attacker.env.ExecuteWorkflow(workflows.RestoreWorkflowName, stolen)
	require.True(t, attacker.env.IsWorkflowCompleted())
	err := attacker.workflowError()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "carries the start of plan run some-plan, which is not this run's parent")
	assert.Equal(t, 0, attacker.rec.count("idp-up"))
}

// A re-enactment of a plan run runs the plan's text and each member's text
// as they ran then, whatever the catalog says today; each member gets only
// its own text; texts that are not the recorded ones are refused.
func TestAPlanReenactmentRunsTheTextsOfThen(t *testing.T) {
	then := member("identity", "      - {id: idp-then, action: http.check, with: {url: \"http://idp\"}}\n")
	past := func(h *harness) {
		h.res.Records = func(_ context.Context, id string) (runbooks.Resolved, record.Evidence, error) {
			if id != "past-plan" {
				return runbooks.Resolved{}, record.Evidence{}, fmt.Errorf("workflow %s not found", id)
			}
			return runbooks.Resolved{Source: regionPlan, Hash: runbooks.HashOf([]byte(regionPlan))},
				record.Evidence{Mode: workflows.ModeDrill, Plan: &record.PlanRecord{Members: []record.MemberRecord{{Runbook: "identity", Hash: runbooks.HashOf([]byte(then))}}}}, nil
		}
	}
	reenact := workflows.Request{Mode: workflows.ModeDrill, RequestedBy: "alice", ReenactmentOf: "past-plan",
		InlinePlan: regionPlan, PinnedMembers: map[string]string{"identity": then}, Reason: "re-enactment"}

	h := newHarness(t)
	h.plan(workflows.ModeDrill, regionMembers()) // today's catalog
	past(h)
	children := map[string]workflows.Request{}
	h.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
		var req workflows.Request
		require.NoError(t, args.Get(&req))
		children[info.WorkflowExecution.ID] = req
	})
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "cases", By: "bob"}) })
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, reenact)
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 1, h.rec.count("idp-then"), "the member's text of then ran")
	assert.Equal(t, 0, h.rec.count("idp-up"), "not today's")
	assert.Equal(t, 1, h.rec.count("data-back"), "an unpinned member runs today's text")
	assert.Equal(t, runbooks.HashOf([]byte(regionPlan)), ev.Runbook.Hash)
	for _, m := range ev.Plan.Members {
		if m.Runbook == "identity" {
			assert.Equal(t, runbooks.HashOf([]byte(then)), m.Hash)
		}
	}
	require.Len(t, children, 4)
	for id, req := range children {
		assert.Empty(t, req.PinnedMembers, id)
		assert.Empty(t, req.InlinePlan, id)
		assert.Empty(t, req.PlanStart.Request.PinnedMembers, "%s: no member gets the others' texts", id)
		assert.Empty(t, req.PlanStart.Request.InlinePlan, id)
		assert.NotEmpty(t, req.PlanStart.Terms, id)
		if req.InlineRunbook != "" {
			assert.Equal(t, then, req.InlineRunbook, id)
			assert.Equal(t, "past-plan", req.ReenactmentOf, id)
		}
	}

	for name, c := range map[string]struct {
		req  func(workflows.Request) workflows.Request
		want string
	}{
		"a plan text nobody recorded": {func(r workflows.Request) workflows.Request { r.ReenactmentOf = ""; return r },
			"an inline plan only re-enacts a past plan run"},
		"a member text other than the one recorded": {func(r workflows.Request) workflows.Request {
			r.PinnedMembers = map[string]string{"identity": then + "# and a change\n"}
			return r
		}, "is not the text member identity of plan run past-plan recorded"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.plan(workflows.ModeDrill, regionMembers())
			past(h)
			h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, c.req(reenact))
			require.True(t, h.env.IsWorkflowCompleted())
			require.Error(t, h.workflowError())
			assert.Contains(t, h.workflowError().Error(), c.want)
			assert.Equal(t, 0, h.rec.count("idp-then")+h.rec.count("idp-up"), "nothing ran")
		})
	}
}
