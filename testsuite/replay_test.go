package testsuite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestGoldenHistoriesReplay replays every history recorded from real runs on
// the dev server (LIFEBOAT_RECORD_HISTORIES=1 make integration) against
// today's workflow code: a non-deterministic change fails here.
func TestGoldenHistoriesReplay(t *testing.T) {
	files, err := filepath.Glob("histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no golden histories in testsuite/histories")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.RestoreWorkflow, workflow.RegisterOptions{Name: workflows.RestoreWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// TestReplayCatchesANonDeterministicChange replays a golden history against a
// workflow that schedules different commands: the replayer must refuse it.
func TestReplayCatchesANonDeterministicChange(t *testing.T) {
	changed := func(ctx workflow.Context, req workflows.Request) (any, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		return nil, workflow.ExecuteActivity(ctx, "a.different.activity", req).Get(ctx, nil)
	}
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: workflows.RestoreWorkflowName})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, "histories/drill-approved-by-update.json")
	require.Error(t, err)
	require.Contains(t, err.Error(), "nondeterministic")
}
