//go:build integration

package testsuite_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
)

// timeline records when a local service saw what, to order side effects
// across the worker and the service.
type timeline struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (tl *timeline) mark(what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if _, seen := tl.at[what]; !seen {
		tl.at[what] = time.Now()
	}
}

func (tl *timeline) when(what string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	t, ok := tl.at[what]
	return t, ok
}

// slowDrill's check takes 4s and never heartbeats; its teardown posts to /teardown.
const slowDrill = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: slow-abort-drill, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    storage:
      - id: slow-check
        action: http.check
        with: {url: "%[1]s/slower"}
        timeout: 20s
        retry: {attempts: 1}
  drill:
    teardown:
      - id: clean-up
        action: notify.webhook
        with: {url: "%[1]s/teardown", text: "{runbook}: drill over"}
        timeout: 30s
`

// gateBook's gate escalates after 2s; its RTO is 3s.
const gateBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: %[2]s, version: 1}
spec:
  scope: application
  objectives: {rto: %[3]s}
  approvers:
    incident-commander: [alice, bob]
  layers:
    edge:
      - id: announce
        action: notify.webhook
        approval: {from: [incident-commander], timeout: %[4]s, onTimeout: escalate}
        with: {url: "%[1]s/hook", text: "{runbook}: traffic moved"}
        timeout: 30s
`

func TestEndingsOnTheDevServer(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	tl := &timeline{at: map[string]time.Time{}}
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slower" {
			time.Sleep(4 * time.Second)
			tl.mark("slower-answered")
		}
		tl.mark(req.URL.Path)
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(svc.Close)
	cat := r.cfg.Catalog[0]
	for name, doc := range map[string]string{
		"cancelled-drill":  fmt.Sprintf(pausingBook, "cancelled-drill", r.service.URL, svc.URL, svc.URL),
		"slow-abort-drill": fmt.Sprintf(slowDrill, svc.URL),
		"escalated-gate":   fmt.Sprintf(gateBook, svc.URL, "escalated-gate", "10m", "2s"),
		"rto-breach":       fmt.Sprintf(gateBook, svc.URL, "rto-breach", "3s", "10m"),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(cat, name+".yaml"), []byte(doc), 0o644))
	}

	t.Run("a drill cancelled through Temporal is an abort: teardown, evidence stored, outcome aborted (cancelled)", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "cancelled-drill", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		require.NoError(t, r.client.CancelWorkflow(ctx, run.WorkflowID, ""))
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.OutcomeCancelled, ev.Outcome)
		assert.Contains(t, ev.OutcomeReason, "cancellation requested through Temporal")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "db-reachable").State)
		open := stepOf(t, ev, "open-doors")
		assert.Equal(t, workflows.StateNotRun, open.State)
		assert.Empty(t, open.Approvals, "the gate was not passed")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "clean-up").State, "the teardown ran")
		_, cleaned := tl.when("/hook")
		assert.True(t, cleaned, "the teardown's webhook reached the service")
		stored, err := os.ReadFile(storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID))
		require.NoError(t, err, "the evidence of a cancelled run is stored")
		assert.Contains(t, string(stored), `"outcome": "aborted (cancelled)"`)
		r.record(t, run.WorkflowID, "drill-cancelled")
	})

	t.Run("an abort waits for the running activity before the teardown starts", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "slow-abort-drill", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "the slow step running", func(s workflows.Status) bool {
			return len(s.Steps) > 0 && s.Steps[0].State == workflows.StateRunning
		})
		_, err = r.starter.Abort(ctx, run.WorkflowID, workflows.Abort{By: "bob", Reason: "wrong region"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunAborted, ev.Outcome)
		answered, ok := tl.when("slower-answered")
		require.True(t, ok)
		tornDown, ok := tl.when("/teardown")
		require.True(t, ok, "the teardown ran")
		assert.True(t, tornDown.After(answered), "teardown started %s before the aborted step's activity ended", answered.Sub(tornDown))
		slow, clean := stepOf(t, ev, "slow-check"), stepOf(t, ev, "clean-up")
		require.NotNil(t, slow.Ended)
		require.NotNil(t, clean.Started)
		assert.False(t, clean.Started.Before(*slow.Ended), "the timeline shows the order")
	})

	t.Run("an escalated approval", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "escalated-gate", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		time.Sleep(3 * time.Second) // past the 2s gate timeout: escalated, still waiting
		st, err := r.starter.Status(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.StateAwaitingApproval, st.State)
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		assert.True(t, hasEvent(ev.Events, "approval-escalated"))
		r.record(t, run.WorkflowID, "failover-approval-escalated")
	})

	t.Run("an RTO breach", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "rto-breach", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "the RTO breach", func(s workflows.Status) bool { return s.RTOBreached })
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.True(t, ev.RTOBreached)
		assert.True(t, hasEvent(ev.Events, "rto-breached"))
		r.record(t, run.WorkflowID, "failover-rto-breached")
	})
}

func hasEvent(events []record.EventRecord, kind string) bool {
	for _, e := range events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// TestCLIRunThatCannotStartSaysSo: a typo in the runbook name is refused
// before anything starts when the CLI sees the catalog; when only the
// worker does, the start, status and status --follow all end with the
// worker's reason and a non-zero exit.
func TestCLIRunThatCannotStartSaysSo(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	bin := buildLifeboat(t)
	cli := func(catalog string, args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue,
			"LIFEBOAT_CATALOG="+catalog)
		out, _ := cmd.CombinedOutput()
		require.NoError(t, ctx.Err(), "lifeboat %v did not end: %s", args, out)
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := cli(r.cfg.Catalog[0], "tabletop", "approve-by-updat", "--as", "alice")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, `did you mean "approve-by-update"`)
	assert.Contains(t, out, "nothing was started")
	assert.NotContains(t, out, "started tabletop")

	nowhere := t.TempDir() // the CLI sees no catalog: only the worker can tell
	out, code = cli(nowhere, "tabletop", "approve-by-updat", "--as", "alice")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "did not start")
	assert.Contains(t, out, `did you mean "approve-by-update"`)
	id := between(out, "run ", " did not start")
	require.NotEmpty(t, id, out)
	r.record(t, id, "tabletop-refused-unknown-runbook")
	// The refused run is no failed recovery in the UI's list: it closed
	// Canceled, LifeboatState says refused (the list's filter finds it), and
	// the run's page and the cancellation say why.
	d, err := r.client.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, d.GetWorkflowExecutionInfo().GetStatus())
	v, err := r.client.QueryWorkflow(context.Background(), id, "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	assert.Contains(t, md.GetCurrentDetails(), "**Refused:** cannot start: no runbook named", "the run's page says why")
	require.Eventually(t, func() bool {
		res, err := r.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q AND %s", id, workflows.RefusedStarts)})
		return err == nil && len(res.GetExecutions()) == 1
	}, 30*time.Second, 200*time.Millisecond, "the list filter %s finds the refused run", workflows.RefusedStarts)

	out, code = cli(nowhere, "status", id)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "did not start")
	assert.Contains(t, out, "no runbook named")

	out, code = cli(nowhere, "status", id, "--follow")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "no runbook named")

	out, code = cli(nowhere, "version")
	assert.Equal(t, 0, code, out)
	if gobuild.VCSFlags("..") != nil { // a checkout git can read
		assert.NotContains(t, out, "commit unknown", "the tests' build names its commit")
	}

	out, code = cli(nowhere, "status", "lifeboat-never-started")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "no such run: lifeboat-never-started", "an unknown id is said to be unknown, not 'not running'")
}

// TestEveryKindOfRefusedStartClosesCanceled starts, on the dev server, a
// run refused at each place a start is checked — the request itself, a
// plan request without its plan, and a check after the runbook resolved
// (a declaredAt in the future) — and a scheduled-style one: each closes
// Canceled with its reason, but the failIfUnsuccessful one, which fails
// so its schedule pauses; all say refused to the list. Their histories are
// the golden ones of these refusals (LIFEBOAT_RECORD_HISTORIES=1).
func TestEveryKindOfRefusedStartClosesCanceled(t *testing.T) {
	t.Parallel()
	r := setup(t)
	r.startWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	future := time.Now().Add(24 * time.Hour)
	for _, c := range []struct {
		name, workflowType string
		req                workflows.Request
		status             enumspb.WorkflowExecutionStatus
		why                string
	}{
		{"drill-refused-bad-request", workflows.RestoreWorkflowName,
			workflows.Request{Runbook: "approve-by-update", RequestedBy: "alice"},
			enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, `"mode" is missing`},
		{"plan-refused-without-plan", workflows.RecoveryPlanWorkflowName,
			workflows.Request{Mode: workflows.ModeDrill, RequestedBy: "alice"},
			enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, `"plan" is missing`},
		{"drill-refused-declared-in-the-future", workflows.RestoreWorkflowName,
			workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice", DeclaredAt: &future},
			enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "is in the future"},
		{"scheduled-drill-refused-fails", workflows.RestoreWorkflowName,
			workflows.Request{Runbook: "approve-by-updat", Mode: workflows.ModeDrill, RequestedBy: "alice", FailIfUnsuccessful: true},
			enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "no runbook named"},
	} {
		id := "lifeboat-" + c.name
		_, err := r.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: r.cfg.Temporal.TaskQueue}, c.workflowType, c.req)
		require.NoError(t, err, c.name)
		_, err = r.starter.Wait(ctx, id)
		var failed *starter.StartFailedError
		if c.status == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
			require.ErrorAs(t, err, &failed, c.name)
			assert.True(t, failed.Refused, c.name)
		}
		assert.ErrorContains(t, err, c.why, c.name)
		d, err := r.client.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		assert.Equal(t, c.status, d.GetWorkflowExecutionInfo().GetStatus(), c.name)
		require.Eventually(t, func() bool {
			res, err := r.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("WorkflowId = %q AND %s", id, workflows.RefusedStarts)})
			return err == nil && len(res.GetExecutions()) == 1
		}, 30*time.Second, 200*time.Millisecond, "%s: the list of refused starts has it", c.name)
		st, err := r.starter.Status(ctx, id)
		require.ErrorAs(t, err, &failed, c.name)
		assert.True(t, failed.Refused, "%s: status says refused, as the list does", c.name)
		assert.Equal(t, workflows.RunRefused, st.State, c.name)
		r.record(t, id, c.name)
	}
}

// TestARunbookAtTheSizeLimitRunsOnTheDevServer: a 1 MiB inline runbook of
// 1,000 steps starts (its resolved text stays under Temporal's 2 MB blob
// limit), and its evidence of 1,000 steps is returned and stored.
func TestARunbookAtTheSizeLimitRunsOnTheDevServer(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: huge, version: 1}\nspec:\n  scope: region\n  objectives: {rto: 60m}\n  layers:\n    workloads:\n")
	for i := 0; i < runbooks.MaxSteps; i++ {
		fmt.Fprintf(&b, "      - {id: check-%04d, action: http.check, with: {url: \"http://svc-%04d.dr.example.internal/health\", expectBody: healthy}}\n", i, i)
	}
	b.WriteString("# " + strings.Repeat("padding ", (runbooks.MaxFileSize-b.Len()-16)/8) + "\n")
	run, err := r.starter.Start(ctx, workflows.Request{InlineRunbook: b.String(), Mode: workflows.ModeTabletop, RequestedBy: "alice", Reason: "size limit"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "the tabletop waiting for acknowledgements", func(s workflows.Status) bool { return s.State == workflows.StateAwaitingAck })
	_, err = r.starter.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "size checked"})
	require.NoError(t, err)
	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	assert.Len(t, ev.Steps, runbooks.MaxSteps)
	assert.NotEmpty(t, storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID))
}

// TestTeardownOfATerminatedDrill: a terminated drill runs no teardown (the
// workflow is gone); lifeboat teardown RUN runs it from the runbook text the
// drill recorded.
func TestTeardownOfATerminatedDrill(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "it"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
	before := r.webhooks.Load()
	require.NoError(t, r.client.TerminateWorkflow(ctx, run.WorkflowID, "", "worker host lost"))
	time.Sleep(time.Second)
	assert.Equal(t, before, r.webhooks.Load(), "a terminated drill cleans nothing up by itself")
	// A start under the same id (the UI's and the temporal CLI's starts allow
	// a closed id again) that the worker refuses after it resolved: the
	// teardown still finds the drill that ran, not this run that ran nothing.
	future := time.Now().Add(time.Hour)
	_, err = r.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: run.WorkflowID, TaskQueue: r.cfg.Temporal.TaskQueue}, workflows.RestoreWorkflowName,
		workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeDrill, RequestedBy: "alice", DeclaredAt: &future})
	require.NoError(t, err)
	_, err = r.starter.Wait(ctx, run.WorkflowID)
	require.ErrorContains(t, err, "is in the future")

	bin := buildLifeboat(t)
	cmd := exec.Command(bin, "teardown", run.WorkflowID, "--as", "bob", "--follow")
	cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "started the teardown of "+run.WorkflowID)
	assert.Equal(t, before+1, r.webhooks.Load(), "the teardown's webhook ran")
	id := between(string(out), "workflow: ", "\n")
	ev, err := r.starter.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, workflows.ModeTeardown, ev.Mode)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	require.Len(t, ev.Steps, 1)
	assert.Equal(t, "clean-up", ev.Steps[0].ID)
	assert.Contains(t, ev.Reason, "teardown of drill "+run.WorkflowID)
	assert.Equal(t, "bob", ev.RequestedBy)

	fail := exec.Command(bin, "teardown", id)
	fail.Env = cmd.Env
	out, err = fail.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "not a drill")

	// A drill refused at its start, and nothing else under its id, ran nothing.
	refused, err := r.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "lifeboat-refused-drill", TaskQueue: r.cfg.Temporal.TaskQueue}, workflows.RestoreWorkflowName,
		workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeDrill, RequestedBy: "alice", DeclaredAt: &future})
	require.NoError(t, err)
	_, err = r.starter.Wait(ctx, refused.GetID())
	require.Error(t, err)
	fail = exec.Command(bin, "teardown", refused.GetID())
	fail.Env = cmd.Env
	out, err = fail.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "refused at its start, so nothing ran")
}
