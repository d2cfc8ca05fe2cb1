//go:build integration

package testsuite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestAResetToTheFirstWorkflowTaskKeepsTheSignedStart is the chaos property
// test's first finding, named: a reset to before the spent-signature check
// (lifeboat.startRuns) ran the check again in the new run, which saw itself
// in Temporal's visibility without its first run id and refused alice's
// start as spent. The reset run keeps the start proven and finishes.
func TestAResetToTheFirstWorkflowTaskKeepsTheSignedStart(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "reset test"})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)

	var first int64
	it := r.client.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && first == 0 {
		e, err := it.Next()
		require.NoError(t, err)
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			first = e.GetEventId()
		}
	}
	reset, err := r.client.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.WorkflowID, RunId: run.RunID},
		Reason: "back to the start", WorkflowTaskFinishEventId: first, RequestId: "reset-first-" + run.RunID})
	require.NoError(t, err)
	r.waitFor(t, run.WorkflowID, "the gate in the reset run", func(s workflows.Status) bool {
		d, err := r.client.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetExecution().GetRunId() == reset.GetRunId() && awaitingApproval(s)
	})
	_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob"})
	require.NoError(t, err)
	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err, "the reset run is not refused as a reuse of its own start")
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.NotNil(t, ev.RequestProof, "alice's start stays proven")
}
