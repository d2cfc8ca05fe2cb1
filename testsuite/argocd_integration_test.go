//go:build integration

package testsuite_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities/argocd"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

func TestArgoCDSyncOnTheRig(t *testing.T) {
	rig := testsuite.StartKubeRig(t, "dr")
	ctx := context.Background()
	sim, err := testsuite.StartArgoCDSim(ctx, rig.RESTConfig())
	require.NoError(t, err)
	t.Cleanup(sim.Stop)
	require.NoError(t, sim.AddApplication(ctx, "shop", "shop", caseBackup("x")[2]))
	worker := caseBackup("x")[2].DeepCopy()
	worker.SetName("billing-worker")
	require.NoError(t, sim.AddApplication(ctx, "billing", "billing", worker))
	rig.Nodes.CrashLoop("billing-worker-")

	a := &argocd.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}, Poll: 200 * time.Millisecond}
	in := func(app string) runbooks.StepInput {
		return runbooks.StepInput{WorkflowID: "wf", StepID: "gitops", Targets: map[string]runbooks.Target{"dr": {KubeContext: "dr"}},
			Args: map[string]any{"target": "dr", "app": app}}
	}
	t.Run("sync until Synced and Healthy, twice", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := a.Sync(wctx, in("shop"))
			cancel()
			require.NoError(t, err)
			assert.Contains(t, res.Summary, "shop Synced and Healthy")
		}
	})
	t.Run("a Degraded application fails at the deadline naming the resource (retryable)", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		_, err := a.Sync(wctx, in("billing"))
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "health Degraded")
		assert.Contains(t, err.Error(), "Deployment billing/billing-worker Degraded")
		rig.Nodes.Heal("billing-worker-")
		wctx2, cancel2 := context.WithTimeout(ctx, time.Minute)
		defer cancel2()
		_, err = a.Sync(wctx2, in("billing"))
		require.NoError(t, err, "once the pods recover the retry succeeds")
	})
	t.Run("an unknown application is not retryable", func(t *testing.T) {
		_, err := a.Sync(ctx, in("nope"))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "no Application nope in namespace argocd")
	})
}
