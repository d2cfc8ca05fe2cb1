//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/testsuite/browser"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

const uiDrillBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: ui-drill, version: 1, owner: platform-team}
spec:
  scope: application
  disaster: application-failure
  strategy: warm-standby
  objectives: {rto: 10m, rpo: 15m, mtd: 1h}
  approvers:
    incident-commander: [alice, bob]
  layers:
    workloads:
      - id: case-api-health
        action: http.check
        with: {url: "%s/health"}
        timeout: 30s
    edge:
      - id: shift-traffic
        action: evidence.store
        approval: {from: [incident-commander], min: 1, timeout: 10m, onTimeout: abort}
        with: {label: traffic-shifted}
        timeout: 30s
  drill:
    teardown:
      - id: drill-torn-down
        action: evidence.store
        with: {label: drill-torn-down}
        timeout: 30s
`

// uiPlan is a recovery plan over ui-drill: started from the UI's form, its
// member's approval is answered on the plan's page.
const uiPlan = `apiVersion: lifeboat/v1
kind: RecoveryPlan
metadata: {name: ui-region, version: 1, owner: platform-team}
spec:
  scope: region
  objectives: {rto: 1h, mtd: 4h}
  members:
    - runbook: ui-drill
`

// TestOperatorInTheTemporalUI is the operator's path through the Temporal UI
// in a real headless Chromium, against `lifeboat dev`: a start with an
// unknown runbook fails with the reason on the page; a drill started from the
// Start Workflow form shows it waits for approval in its current details, a
// refused signal becomes a note, the approve signal sent from the signal
// dialog lets it complete. Screenshots of every step are written to
// testsuite/artifacts/browser/ (or $LIFEBOAT_ARTIFACTS/browser/).
func TestOperatorInTheTemporalUI(t *testing.T) {
	t.Parallel() // its own lifeboat dev and browser: it overlaps the other slow tests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dev := startUIDrill(t)
	b := openBrowser(ctx, t, "http://localhost:"+dev.uiPort, "browser")

	c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + dev.port, Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	st := starter.New(c, "lifeboat").WithKeys(starter.KeyDir(filepath.Join(dev.state, "keys")))
	// sign is what an operator pastes into the signal dialog: the JSON
	// lifeboat sign prints for an approval of step by as.
	sign := func(t *testing.T, id, step, as string) string {
		cmd := exec.Command(buildLifeboat(t), "sign", "approve", id, step, "--as", as, "--comment", "checked in the UI")
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"))
		out, err := cmd.Output()
		require.NoError(t, err, "lifeboat sign: %s", out)
		return strings.TrimSpace(string(out))
	}

	t.Run("an unknown runbook is refused with the reason on the page, not listed as a failure", func(t *testing.T) {
		require.NoError(t, b.StartWorkflow("ui-unknown-runbook", "lifeboat", workflows.RestoreWorkflowName,
			`{"runbook": "ui-dril", "mode": "drill", "requestedBy": "alice"}`))
		require.NoError(t, b.OpenWorkflow("ui-unknown-runbook", "history"))
		require.NoError(t, b.WaitText("Canceled", 30*time.Second), "nothing ran: the run is not a failed recovery")
		require.NoError(t, b.WaitText(`refused: cannot start: no runbook named \"ui-dril\" in the catalog (did you mean \"ui-drill\"?)`, 10*time.Second),
			"the page the UI opens on shows why, as the run's result")
		b.Shot("unknown-runbook-refused")
		require.NoError(t, b.OpenWorkflow("ui-unknown-runbook", "user-metadata"))
		require.NoError(t, b.WaitText("Refused: cannot start: no runbook named", 20*time.Second), "the current details: %s", b.Text())
		assert.Contains(t, b.Text(), "Nothing ran.")
		b.Shot("unknown-runbook-refused-details")
		link := regexp.MustCompile(`runs refused at their start \(nothing ran; each says why\): (\S+)`).FindStringSubmatch(dev.log.String())
		require.NotNil(t, link, "lifeboat dev prints the link to the refused starts:\n%s", dev.log.String())
		require.NoError(t, b.Open(link[1]))
		require.NoError(t, b.WaitText("ui-unknown-runbook", 20*time.Second), "the list of refused starts")
		b.Shot("list-of-refused-starts")
	})

	const id = "ui-drill-from-the-form"
	t.Run("a drill started from the form waits for approval", func(t *testing.T) {
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName,
			`{"runbook": "ui-drill", "mode": "drill", "reason": "UI drill", "requestedBy": "alice"}`))
		waitForState(t, st, id, workflows.StateAwaitingApproval)
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("awaiting-approval", 20*time.Second), "current details")
		require.NoError(t, b.WaitText("lifeboat approve "+id+" shift-traffic --as NAME", 5*time.Second))
		assert.Contains(t, b.Text(), "signal approve with the JSON that lifeboat sign approve "+id+" shift-traffic --as NAME prints", "how to approve from the UI: signed, as this worker counts only signed approvals")
		assert.Contains(t, b.Text(), "deadline", "the RTO as a deadline")
		assert.NotContains(t, b.Text(), "remaining at", "not a remaining figure that goes stale while the page waits")
		assert.Contains(t, b.Text(), "may approve: alice, bob", "who may approve")
		b.Shot("awaiting-approval")
		// The page the UI opens a run on: its timeline draws the wait, with the command.
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.WaitText("WAITING: shift-traffic waits for approval — lifeboat approve "+id+" shift-traffic --as NAME", 20*time.Second),
			"the History tab shows what the run waits for")
		b.Shot("history-shows-the-wait")
		// The list of the runs a person must act on: lifeboat dev prints its link.
		link := regexp.MustCompile(`runs waiting for a person \(approval, acknowledgement, a paused step\): (\S+)`).FindStringSubmatch(dev.log.String())
		require.NotNil(t, link, "lifeboat dev prints the link to the runs waiting for a person:\n%s", dev.log.String())
		require.NoError(t, b.Open(link[1]))
		require.NoError(t, b.WaitText(id, 20*time.Second))
		assert.NotContains(t, b.Text(), "ui-unknown-runbook", "a run that waits for nobody is not in that list")
		b.Shot("list-of-runs-waiting-for-a-person")
	})

	t.Run("a refused signal changes nothing and the run keeps waiting", func(t *testing.T) {
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.Signal(workflows.MsgApprove, `{"step": "shift-traffic", "by": "mallory"}`))
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("Refused: an approve signal for step shift-traffic from mallory was refused", 20*time.Second), "the refusal shows in the current details")
		assert.Contains(t, b.Text(), "mallory is not")
		b.Shot("refused-signal")
		s, err := st.Status(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.StateAwaitingApproval, s.State)
		require.Len(t, s.Pending, 1)
		assert.Empty(t, s.Pending[0].Have, "mallory is not an approver")
	})

	t.Run("approved from the signal dialog, the drill completes", func(t *testing.T) {
		require.NoError(t, b.OpenWorkflow(id, "history"))
		// Typed, unsigned: recorded, not counted (the worker has allowed signers).
		require.NoError(t, b.Signal(workflows.MsgApprove, `{"step": "shift-traffic", "by": "bob", "comment": "from the UI"}`))
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("recorded but not counted: only a signed decision counts", 20*time.Second), "the page says the typed approval does not count")
		b.Shot("unsigned-not-counted")
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.Signal(workflows.MsgApprove, sign(t, id, "shift-traffic", "bob")))
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.WaitText("Completed", 30*time.Second))
		b.Shot("completed")
		var approvedBy string
		for _, s := range ev.Steps {
			if s.ID == "shift-traffic" {
				for _, a := range s.Approvals {
					approvedBy += a.By
				}
			}
		}
		assert.Equal(t, "bobbob", approvedBy, "the evidence records both UI approvals: the typed one and the signed one")
		// The UI (without auth) records no client identity: the name stays
		// what it is, unproven.
		assert.Contains(t, ev.Markdown(), "approved by bob (unproven)")
		var refused bool
		for _, n := range ev.Notes {
			refused = refused || strings.Contains(n.Text, "refused approve signal") && strings.Contains(n.Text, "mallory")
		}
		assert.True(t, refused, "the refused signal is recorded as a note: %+v", ev.Notes)
	})

	t.Run("a signed approval pasted into the signal dialog counts; unsigned and forged ones are refused", func(t *testing.T) {
		const id = "ui-signed-drill"
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName,
			`{"runbook": "ui-signed", "mode": "drill", "reason": "UI signed", "requestedBy": "alice"}`))
		waitForState(t, st, id, workflows.StateAwaitingApproval)
		sign := func(as string) string { return sign(t, id, "shift-traffic", as) }
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.Signal(workflows.MsgApprove, `{"step": "shift-traffic", "by": "bob"}`))
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("only a signed decision counts", 20*time.Second), "the unsigned approval is refused on the page")
		b.Shot("unsigned-refused")

		// The temporal CLI, with bob's signed JSON made to say carol: refused.
		forged := strings.Replace(sign("bob"), `"by":"bob"`, `"by":"carol"`, 1)
		temporal, err := testsuite.EnsureTemporal(ctx, os.Stderr)
		require.NoError(t, err)
		out, err := exec.Command(temporal, "workflow", "signal", "--address", "127.0.0.1:"+dev.port, "--workflow-id", id,
			"--name", workflows.MsgApprove, "--input", forged).CombinedOutput()
		require.NoError(t, err, string(out))
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("the key that signed is bob", 20*time.Second))

		for i, as := range []string{"bob", "carol"} {
			require.NoError(t, b.OpenWorkflow(id, "history"))
			require.NoError(t, b.Signal(workflows.MsgApprove, sign(as)))
			if i == 0 {
				require.Eventually(t, func() bool {
					s, err := st.Status(ctx, id)
					return err == nil && len(s.Pending) == 1 && len(s.Pending[0].Have) == 1
				}, 20*time.Second, 200*time.Millisecond, "bob's pasted signed approval counts, one of two (alice's form start proves nobody)")
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		for _, s := range ev.Steps {
			if s.ID == "shift-traffic" {
				require.Len(t, s.Approvals, 3, "the typed approval is recorded, not counted")
				assert.Nil(t, s.Approvals[0].Proof)
				for _, a := range s.Approvals[1:] {
					assert.NotNil(t, a.Proof, "%s's approval is proven", a.By)
				}
			}
		}
		assert.Equal(t, 1, ev.RefusedSignals, "the forged approval (the typed one is recorded, not counted)")
		for _, e := range ev.Events {
			if e.Kind == "signal-refused" && e.By == "carol" {
				t.Logf("the forged signal's sender, as Temporal recorded it: %q", e.Client)
				assert.Contains(t, e.Client, "temporal-cli", "the identity Temporal recorded, not the client the pasted JSON claims")
			}
		}
		b.Shot("signed-approved")
	})

	t.Run("a start signed by lifeboat sign, pasted into the Start Workflow form, proves its requester", func(t *testing.T) {
		bin := buildLifeboat(t)
		cmd := exec.Command(bin, "sign", "drill", "ui-drill", "--as", "alice", "--reason", "signed from the form")
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		input, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		id := between(stderr.String(), "Workflow ID ", ",")
		require.NotEmpty(t, id, stderr.String())
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName, strings.TrimSpace(string(input))))
		waitForState(t, st, id, workflows.StateAwaitingApproval)
		_, err = st.Abort(ctx, id, workflows.Abort{By: "alice", Reason: "form start checked"})
		require.NoError(t, err)
		ev, err := st.Wait(ctx, id)
		require.NoError(t, err)
		assert.NotNil(t, ev.RequestProof, "alice's signed start from the form is proven")
		assert.Contains(t, ev.Markdown(), "| Requested by | alice (signed)")
	})

	t.Run("a recovery plan started from the form is steered from the plan's page", func(t *testing.T) {
		const id = "ui-region-plan"
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RecoveryPlanWorkflowName,
			`{"plan": "ui-region", "mode": "drill", "reason": "UI plan", "requestedBy": "alice"}`))
		waitForState(t, st, id, workflows.StateAwaitingApproval) // the plan waits on what its member waits on
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("Waiting (member ui-drill)", 20*time.Second), "the member's gate shows on the plan's page")
		assert.Contains(t, b.Text(), "lifeboat approve "+id+".ui-drill shift-traffic --as NAME")
		b.Shot("plan-waits-on-its-member")
		require.NoError(t, b.OpenWorkflow(id, "history"))
		// lifeboat sign signs for the member's run; pasted on the plan's page, the plan forwards it.
		require.NoError(t, b.Signal(workflows.MsgApprove, sign(t, id, "shift-traffic", "bob")))
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		require.NotNil(t, ev.Plan)
		require.Len(t, ev.Plan.Members, 1)
		assert.Equal(t, id+".ui-drill", ev.Plan.Members[0].WorkflowID)
		member, err := st.Wait(wctx, id+".ui-drill")
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, member.Outcome)
		assert.Contains(t, member.Markdown(), "approved by bob (signed", "the plan handed the signed approval to its member")
		var forwarded bool
		for _, e := range ev.Events {
			forwarded = forwarded || e.Kind == "forwarded" && e.By == "bob"
		}
		assert.True(t, forwarded, "the plan's evidence records the hand-over")
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.WaitText("Completed", 30*time.Second))
		b.Shot("plan-completed")
	})

	t.Run("the same plan from the CLI: a drill, an approval routed to the member, the plan's evidence", func(t *testing.T) {
		bin := buildLifeboat(t)
		cli := func(args ...string) string {
			cmd := exec.Command(bin, args...)
			// No catalog: the CLI learns from the worker that the name is a plan.
			cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"))
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "lifeboat %s: %s", strings.Join(args, " "), out)
			return string(out)
		}
		out := cli("drill", "ui-region", "--as", "alice", "--reason", "CLI plan")
		id := strings.TrimSpace(between(out, "workflow: ", "\n"))
		require.NotEmpty(t, id, out)
		waitForState(t, st, id, workflows.StateAwaitingApproval)
		assert.Contains(t, cli("status", id), "WAITING: member ui-drill: step shift-traffic needs 1 signed approval(s)")
		out = cli("approve", id, "shift-traffic", "--as", "bob")
		assert.Contains(t, out, "shift-traffic belongs to member run "+id+".ui-drill of plan run "+id)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		md := cli("evidence", id, "-o", "md")
		assert.Contains(t, md, "## Members")
		assert.Contains(t, md, "| ui-drill | succeeded |")
		assert.Contains(t, md, "lifeboat evidence "+id+".ui-drill")
		assert.Contains(t, cli("evidence", "list"), id, "the plan's run is listed with the runs")

		// Re-enacted: the plan's text and its member's text of then, as a drill.
		re, err := st.Reenact(ctx, id, "dana")
		require.NoError(t, err)
		waitForState(t, st, re.Run.WorkflowID, workflows.StateAwaitingApproval)
		member := st.Route(ctx, re.Run.WorkflowID, "shift-traffic")
		assert.Equal(t, re.Run.WorkflowID+".ui-drill", member)
		_, err = st.Approve(ctx, member, workflows.Approve{Step: "shift-traffic", By: "bob"})
		require.NoError(t, err)
		again, err := st.Wait(wctx, re.Run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, again.Outcome)
		assert.Equal(t, ev.Runbook.Hash, again.Runbook.Hash, "the plan's text of then")
		require.Len(t, again.Plan.Members, 1)
		assert.Equal(t, ev.Plan.Members[0].Hash, again.Plan.Members[0].Hash, "the member's text of then")

		// Scheduled: a CLI that reads the catalog schedules the plan; its runs are plan runs.
		sched := exec.Command(bin, "drill", "schedule", "ui-region", "--cron", "0 3 1 1 *", "--as", "alice")
		sched.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_CATALOG="+dev.catalog)
		out2, err := sched.CombinedOutput()
		require.NoError(t, err, string(out2))
		cli("drill", "trigger", "lifeboat-drill-ui-region")
		var scheduled string
		require.Eventually(t, func() bool {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: "WorkflowType = 'RecoveryPlanWorkflow' AND ExecutionStatus = 'Running'"})
			if err != nil {
				return false
			}
			for _, e := range resp.Executions {
				if strings.HasPrefix(e.GetExecution().GetWorkflowId(), "lifeboat-ui-region-drill-scheduled") {
					scheduled = e.GetExecution().GetWorkflowId()
				}
			}
			return scheduled != ""
		}, 30*time.Second, 250*time.Millisecond, "the triggered schedule starts a RecoveryPlanWorkflow")
		// Until the run has resolved its runbook it refuses messages, saying
		// to try again (a loaded machine takes seconds to get there).
		require.Eventually(t, func() bool {
			_, err = st.Abort(ctx, scheduled, workflows.Abort{By: "alice", Reason: "schedule checked"})
			return err == nil || !strings.Contains(err.Error(), "still resolving its runbook")
		}, 60*time.Second, 500*time.Millisecond)
		require.NoError(t, err)
		cli("drill", "delete", "lifeboat-drill-ui-region")

		// The plan's pre-flight checks: each member's.
		pre := exec.Command(bin, "precheck", "ui-region", "--as", "alice")
		pre.Env = sched.Env
		out2, err = pre.CombinedOutput()
		require.NoError(t, err, string(out2))
		assert.Contains(t, string(out2), "ui-drill (drill) — 1 check(s)")
		assert.Contains(t, string(out2), "ok   case-api-health#1")
	})

	// Issue 24's done-means, with the Temporal UI and the temporal CLI as the only clients.
	temporalCLI, err := testsuite.EnsureTemporal(ctx, os.Stderr)
	require.NoError(t, err)
	lifeboatSign := func(t *testing.T, args ...string) (out, where string) {
		cmd := exec.Command(buildLifeboat(t), append([]string{"sign"}, args...)...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		return strings.TrimSpace(string(b)), stderr.String()
	}

	t.Run("a plan's dry run started from the form changes nothing", func(t *testing.T) {
		const id = "ui-region-dry-run"
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RecoveryPlanWorkflowName,
			`{"plan": "ui-region", "mode": "failover", "dryRun": true, "reason": "what would a failover do?", "requestedBy": "alice"}`))
		require.Eventually(t, func() bool { _, err := c.DescribeWorkflowExecution(ctx, id, ""); return err == nil },
			30*time.Second, 200*time.Millisecond, "the form's start never reached the server")
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, id)
		require.NoError(t, err)
		assert.Equal(t, "failover-dry-run", ev.Mode)
		require.NotNil(t, ev.Plan)
		require.Len(t, ev.Plan.Members, 1)
		member, err := st.Wait(wctx, ev.Plan.Members[0].WorkflowID)
		require.NoError(t, err)
		assert.NotNil(t, member.DryRun, "the member ran as a dry run")
		assert.Equal(t, "failover-dry-run", member.Mode)
		for _, s := range member.Steps {
			assert.Equal(t, workflows.StateNotRun, s.State, "step %s of a dry run", s.ID)
			assert.Empty(t, s.Approvals, "a dry run waits at no gate")
		}
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.WaitText("Completed", 30*time.Second))
		b.Shot("plan-dry-run")
	})

	t.Run("a skip of a separate gate, signed by the run's requester, is refused", func(t *testing.T) {
		input, where := lifeboatSign(t, "drill", "ui-signed", "--as", "alice", "--reason", "skip test")
		id := between(where, "Workflow ID ", ",")
		require.NotEmpty(t, id, where)
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName, input))
		waitForState(t, st, id, workflows.StateAwaitingApproval)
		skip, _ := lifeboatSign(t, "skip", id, "shift-traffic", "--as", "alice", "--reason", "I checked it myself")
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.Signal(workflows.MsgSkip, skip))
		require.NoError(t, b.OpenWorkflow(id, "user-metadata"))
		require.NoError(t, b.WaitText("from alice was refused", 20*time.Second))
		assert.Contains(t, b.Text(), "separation of duties")
		b.Shot("requester-skip-refused")
		s, err := st.Status(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.StateAwaitingApproval, s.State, "the gate still waits")
		_, err = st.Abort(ctx, id, workflows.Abort{By: "alice", Reason: "skip test over"})
		require.NoError(t, err)
		ev, err := st.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunAborted, ev.Outcome)
		assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "shift-traffic").State)
	})

	t.Run("a signed start copied from history is refused: with one field changed from the form, unchanged from the temporal CLI", func(t *testing.T) {
		const id = "ui-copied-start"
		signed, err := starter.SignStart(starter.KeyDir(filepath.Join(dev.state, "keys")), id,
			workflows.Request{Runbook: "ui-drill", Mode: workflows.ModeDrill, DryRun: true, Reason: "what would the drill do?", RequestedBy: "alice"})
		require.NoError(t, err)
		original, err := json.Marshal(signed)
		require.NoError(t, err)
		// started waits for a run of id other than the one before.
		runOf := func() string {
			d, err := c.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				return ""
			}
			return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		}
		started := func(t *testing.T, before string) {
			t.Helper()
			require.Eventually(t, func() bool { now := runOf(); return now != "" && now != before }, 30*time.Second, 200*time.Millisecond, "the start never reached the server")
		}
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName, string(original)))
		started(t, "")
		ev, err := st.Wait(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, ev.DryRun)
		require.NotNil(t, ev.RequestProof, "alice's signed dry run is proven")

		// What the server recorded as the start's input, as anyone with read access sees it.
		out, err := exec.Command(temporalCLI, "workflow", "show", "--address", "127.0.0.1:"+dev.port, "--workflow-id", id, "--output", "json").Output()
		require.NoError(t, err)
		var history struct {
			Events []struct {
				Attrs *struct {
					Input struct {
						Payloads []struct {
							Data []byte `json:"data"`
						} `json:"payloads"`
					} `json:"input"`
				} `json:"workflowExecutionStartedEventAttributes"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal(out, &history))
		require.NotNil(t, history.Events[0].Attrs)
		var copied map[string]any
		require.NoError(t, json.Unmarshal(history.Events[0].Attrs.Input.Payloads[0].Data, &copied), string(history.Events[0].Attrs.Input.Payloads[0].Data))
		require.Equal(t, true, copied["dryRun"])

		refused := func(t *testing.T, why string) {
			t.Helper()
			_, err := st.Wait(ctx, id)
			require.Error(t, err, "the copied start must not run")
			assert.Contains(t, err.Error(), why)
			ev, err := st.Evidence(ctx, id)
			if err == nil {
				for _, s := range ev.Steps {
					assert.NotEqual(t, workflows.StateSucceeded, s.State, "step %s ran", s.ID)
				}
			}
		}
		copied["dryRun"] = false
		changed, err := json.Marshal(copied)
		require.NoError(t, err)
		first := runOf()
		require.NoError(t, b.StartWorkflow(id, "lifeboat", workflows.RestoreWorkflowName, string(changed)))
		started(t, first)
		refused(t, "the start's signature is refused")
		require.NoError(t, b.OpenWorkflow(id, "history"))
		require.NoError(t, b.WaitText("Canceled", 30*time.Second), "refused: nothing ran")
		b.Shot("copied-start-refused")

		second := runOf()
		out, err = exec.Command(temporalCLI, "workflow", "start", "--address", "127.0.0.1:"+dev.port, "--task-queue", "lifeboat",
			"--type", workflows.RestoreWorkflowName, "--workflow-id", id, "--id-reuse-policy", "AllowDuplicate", "--input", string(original)).CombinedOutput()
		require.NoError(t, err, string(out))
		started(t, second)
		refused(t, "the start's signature is spent")
	})

	t.Run("a drill cancelled from the UI is an abort: teardown done, evidence stored, no pause or escalation", func(t *testing.T) {
		run, err := st.Start(ctx, workflows.Request{Runbook: "ui-drill", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "UI cancel"})
		require.NoError(t, err)
		waitForState(t, st, run.WorkflowID, workflows.StateAwaitingApproval)
		require.NoError(t, b.OpenWorkflow(run.WorkflowID, "history"))
		require.NoError(t, b.RequestCancellation())
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := st.Wait(wctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.OutcomeCancelled, ev.Outcome)
		for _, s := range ev.Steps {
			want := map[string]string{"case-api-health": workflows.StateSucceeded, "shift-traffic": workflows.StateNotRun,
				"drill-torn-down": workflows.StateSucceeded}[s.ID]
			assert.Equal(t, want, s.State, s.ID)
		}
		for _, e := range ev.Events {
			assert.NotContains(t, []string{"paused", "approval-escalated", "evidence-sink-failed"}, e.Kind, e.Text)
		}
		require.NoError(t, b.OpenWorkflow(run.WorkflowID, "user-metadata"))
		require.NoError(t, b.WaitText("aborted (cancelled)", 30*time.Second), "the current details say why it ended")
		b.Shot("cancelled")
	})
}

// startUIDrill starts `lifeboat dev` (with env) on a catalog holding
// uiDrillBook, whose health check answers from a local service.
func startUIDrill(t *testing.T, env ...string) lifeboatDev {
	t.Helper()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "healthy") }))
	t.Cleanup(svc.Close)
	cat := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cat, "ui-drill.yaml"), []byte(fmt.Sprintf(uiDrillBook, svc.URL)), 0o644))
	// ui-signed's gate demands separation of duties: only signed approvals count.
	signedBook := strings.NewReplacer("name: ui-drill,", "name: ui-signed,", "[alice, bob]", "[alice, bob, carol]",
		"min: 1,", "min: 1, separate: true,").Replace(fmt.Sprintf(uiDrillBook, svc.URL))
	require.NoError(t, os.WriteFile(filepath.Join(cat, "ui-signed.yaml"), []byte(signedBook), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cat, "ui-region.yaml"), []byte(uiPlan), 0o644))
	return startLifeboatDev(t, cat, env...)
}

// openBrowser starts headless Chromium on a Temporal UI (ui, its base URL);
// its screenshots go to testsuite/artifacts/NAME (or
// $LIFEBOAT_ARTIFACTS/NAME), emptied first.
func openBrowser(ctx context.Context, t *testing.T, ui, name string) *browser.Browser {
	t.Helper()
	chromium, err := browser.EnsureChromium(ctx, os.Stderr)
	require.NoError(t, err, "the browser test needs Chromium (CI=%v)", testsuite.InCI())
	artifacts := filepath.Join("artifacts", name)
	if d := os.Getenv("LIFEBOAT_ARTIFACTS"); d != "" {
		artifacts = filepath.Join(d, name)
	}
	_ = os.RemoveAll(artifacts)
	b, err := browser.Start(ctx, browser.Options{Chromium: chromium, UI: ui, Screenshots: artifacts})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close(); t.Logf("screenshots in %s", artifacts) })
	return b
}

// waitForState polls the status query until the run is in state.
func waitForState(t *testing.T, st *starter.Starter, id, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := st.Status(context.Background(), id)
		if err == nil && s.State == state {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s never reached %s (last: %+v, %v)", id, state, s, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTheUIDecryptsThroughTheCodecServer: with payload encryption on,
// `lifeboat dev` points its UI at a local codec server, so the operator reads
// the run's input and current details in clear in the browser while the
// server stores only ciphertext, and can still approve from the signal dialog.
func TestTheUIDecryptsThroughTheCodecServer(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	keys := filepath.Join(t.TempDir(), "codec-keys")
	line, err := worker.NewKeyLine("ui-2026")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keys, []byte(line+"\n"), 0o600))
	dev := startUIDrill(t, "LIFEBOAT_CODEC_KEY_FILE="+keys)

	var cfg worker.Config
	cfg.Codec.KeyFile = keys
	dc, err := cfg.DataConverter()
	require.NoError(t, err)
	c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + dev.port, Logger: quiet{}, DataConverter: dc})
	require.NoError(t, err)
	defer c.Close()
	st := starter.New(c, "lifeboat").WithDataConverter(dc)
	const reason = "reason-only-the-key-reads-4d2b"
	run, err := st.Start(ctx, workflows.Request{Runbook: "ui-drill", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: reason})
	require.NoError(t, err)
	waitForState(t, st, run.WorkflowID, workflows.StateAwaitingApproval)

	plain, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + dev.port, Logger: quiet{}})
	require.NoError(t, err)
	defer plain.Close()
	stored, err := starter.New(plain, "lifeboat").HistoryJSON(ctx, run.WorkflowID)
	require.NoError(t, err)
	require.NotContains(t, string(stored), reason, "the server must hold ciphertext only")

	b := openBrowser(ctx, t, "http://localhost:"+dev.uiPort, "browser-codec")

	require.NoError(t, b.OpenWorkflow(run.WorkflowID, "history"))
	require.NoError(t, b.WaitText(reason, 30*time.Second), "the input, decrypted by the codec server")
	b.Shot("input-decrypted")
	require.NoError(t, b.OpenWorkflow(run.WorkflowID, "user-metadata"))
	require.NoError(t, b.WaitText("lifeboat approve "+run.WorkflowID+" shift-traffic --as NAME", 30*time.Second), "the current details, decrypted")
	b.Shot("details-decrypted")

	require.NoError(t, b.OpenWorkflow(run.WorkflowID, "history"))
	// The signed approval lifeboat sign prints, pasted into the signal dialog.
	cmd := exec.Command(buildLifeboat(t), "sign", "approve", run.WorkflowID, "shift-traffic", "--as", "bob", "--comment", "encrypted run")
	cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"), "LIFEBOAT_CODEC_KEY_FILE="+keys)
	signed, err := cmd.Output()
	require.NoError(t, err, "lifeboat sign: %s", signed)
	require.NoError(t, b.Signal(workflows.MsgApprove, strings.TrimSpace(string(signed))))
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	ev, err := st.Wait(wctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, reason, ev.Reason)
}
