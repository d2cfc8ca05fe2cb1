package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Issue 24, scenario 2: an unsigned inline runbook under a catalog name,
// started in mode teardown, deleted namespace payments. A teardown runs
// only the teardown its drill recorded: never a text the request carries,
// and never for a run that was not a drill.
func TestATeardownRunsOnlyWhatItsDrillRecorded(t *testing.T) {
	evil := book("60m", `  layers:
    workloads:
      - {id: noop, action: http.check, with: {url: "http://x"}}
  drill:
    namespaceMappings: {case: drill-case}
    teardown:
      - {id: drop, action: kube.deleteNamespace, with: {target: dr, namespace: drill-case}}
`)
	t.Run("inline text", func(t *testing.T) {
		h := newHarness(t)
		err := h.runErr(evil, workflows.ModeTeardown)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "a teardown runs only the teardown a drill recorded")
		assert.Equal(t, 0, h.rec.count("drop"))
	})
	t.Run("a failover's record", func(t *testing.T) {
		h := newHarness(t)
		h.recordedDrill("a-failover", evil, workflows.ModeFailover)
		h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, workflows.Request{Mode: workflows.ModeTeardown, TeardownOf: "a-failover", RequestedBy: "alice"})
		require.True(t, h.env.IsWorkflowCompleted())
		err := h.workflowError()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "run a-failover is a failover, not a drill")
		assert.Equal(t, 0, h.rec.count("drop"))
	})
}

// Every step of a drill tells its action which drill it belongs to: the
// label the action requires on any namespace it changes.
func TestDrillStepsCarryTheirDrillRun(t *testing.T) {
	h := newHarness(t)
	ev := h.run(book("60m", drillBook), workflows.ModeDrill)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, testWorkflowID, h.rec.inputs["drop"].DrillRun)
}
