//go:build integration

package testsuite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// resetBook restores production's backup beside it, then waits at a
// two-person gate before its announcement.
const resetBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: reset-restore, version: 1}
spec:
  scope: application
  objectives: {rto: 30m, rpo: 1h}
  approvers:
    incident-commander: [alice, bob]
  targets:
    dr: {kubeContext: dr}
  layers:
    storage:
      - id: restore-case-data
        action: velero.restore
        with: {target: dr, schedule: production-hourly, namespaces: [case-management],
               namespaceMappings: {case-management: restored-case-management}}
        timeout: 5m
    edge:
      - id: announce
        action: notify.webhook
        approval: {from: [incident-commander], separate: true}
        with: {url: "%s/hook", text: "{runbook} {mode}: restored"}
        timeout: 30s
`

// TestAResetBeforeTheRestoreKeepsOneRunsIdentity (issue 24, scenario 5): a
// signed failover is reset, with Temporal's own reset, to the workflow task
// that scheduled its Velero restore, after that restore completed. The reset
// run restores again under the same Restore name (one Restore exists), its
// start and approval proofs still verify (they are bound to the first run
// id, which a reset keeps), and its evidence verifies and chains.
func TestAResetBeforeTheRestoreKeepsOneRunsIdentity(t *testing.T) {
	t.Parallel() // its own dev server (and rig): it overlaps the other slow tests
	r := setup(t)
	kr := testsuite.StartKubeRig(t, "dr")
	v := testsuite.StartVeleroOn(t, kr)
	ctx := context.Background()
	typed, err := kubernetes.NewForConfig(kr.RESTConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(kr.RESTConfig())
	require.NoError(t, err)
	_, err = typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-management"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	applyAll(t, dyn, caseBackup("reset-test-value"))
	require.NoError(t, v.Schedule(ctx, "production-hourly", "case-management"))
	_, _, err = v.BackupFromSchedule(ctx, "production-hourly")
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(r.cfg.Catalog[0], "reset-restore.yaml"), []byte(fmt.Sprintf(resetBook, r.service.URL)), 0o644))
	r.cfg.Kube.Kubeconfig = kr.Kubeconfig
	r.startWorker(t)

	restores := func() []string {
		l, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var names []string
		for _, i := range l.Items {
			names = append(names, i.GetName())
		}
		return names
	}

	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "reset-restore", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "reset test"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "the gate after the restore", awaitingApproval)
	before := restores()
	require.Len(t, before, 1, "the restore step made its Restore")

	// The workflow task that scheduled velero.restore: reset to it.
	var resetTo int64
	iter := r.client.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "velero.restore" {
			resetTo = a.GetWorkflowTaskCompletedEventId()
			break
		}
	}
	require.NotZero(t, resetTo, "no velero.restore in the history")
	reset, err := r.client.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: run.WorkflowID, RunId: run.RunID},
		Reason:                    "reset test: redo the restore",
		WorkflowTaskFinishEventId: resetTo,
		RequestId:                 "reset-" + run.RunID,
	})
	require.NoError(t, err)
	require.NotEqual(t, run.RunID, reset.GetRunId(), "a reset is a new run")

	r.waitFor(t, run.WorkflowID, "the gate again, in the reset run", func(s workflows.Status) bool {
		d, err := r.client.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() == reset.GetRunId() && awaitingApproval(s)
	})
	_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob", Comment: "restored data checked"})
	require.NoError(t, err)
	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)

	assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "%+v", ev.FailedChecks)
	assert.Equal(t, before, restores(), "the reset run found its own Restore again: no second restore")
	assert.Equal(t, run.RunID, ev.RunID, "the evidence is keyed by the first run id")
	require.NotNil(t, ev.RequestProof, "the start stays proven after the reset")
	approvals := stepOf(t, ev, "announce").Approvals
	require.Len(t, approvals, 1)
	assert.NotNil(t, approvals[0].Proof, "bob's approval, signed for the first run id, counted")
	_, err = typed.CoreV1().Namespaces().Get(ctx, "restored-case-management", metav1.GetOptions{})
	assert.NoError(t, err, "the data is restored")

	runs, err := filepath.Glob(filepath.Join(r.cfg.EvidenceDir, "lifeboat-*.json"))
	require.NoError(t, err)
	assert.Len(t, runs, 1, "one run, one record: %v", runs)
	assert.Contains(t, r.verifiesAndReplays(t, run.WorkflowID, ev), "evidence verifies: 1 record(s)", "the reset run's history replays, and yields the same evidence")
	r.record(t, run.WorkflowID, "failover-reset-before-restore")
}
