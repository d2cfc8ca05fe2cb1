//go:build integration

package testsuite_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/lifeboat-dr/lifeboat/activities/argocd"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// gitopsDeployment is a one-container Deployment manifest for the GitOps repo.
func gitopsDeployment(name string, replicas int, extra string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `}
spec:
  replicas: ` + strconv.Itoa(replicas) + `
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec: {containers: [{name: main, image: registry.example/` + name + `:1.0}]}
` + extra
}

func TestArgoCDSyncOnTheRig(t *testing.T) {
	t.Parallel() // mostly waits (a sync deadline): it overlaps the other slow tests
	rig := testsuite.StartKubeRig(t, "dr")
	argo := testsuite.StartArgoCDOn(t, rig)
	ctx := context.Background()
	require.NoError(t, argo.Publish("apps/shop/shop.yaml", gitopsDeployment("shop", 2, "")))
	require.NoError(t, argo.AddApplication(ctx, "shop", "apps/shop", "shop"))
	// A worker whose pods crash: its rollout misses its progress deadline.
	require.NoError(t, argo.Publish("apps/billing/worker.yaml", gitopsDeployment("billing-worker", 1, "  progressDeadlineSeconds: 3\n")))
	require.NoError(t, argo.AddApplication(ctx, "billing", "apps/billing", "billing"))
	rig.Nodes.CrashLoop("billing-worker-")
	// A manifest the apiserver refuses: the Application cannot get in sync.
	require.NoError(t, argo.Publish("apps/broken/api.yaml", gitopsDeployment("broken-api", -1, "")))
	require.NoError(t, argo.AddApplication(ctx, "broken", "apps/broken", "broken"))

	a := &argocd.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}}
	in := func(app string) runbooks.StepInput {
		return runbooks.StepInput{WorkflowID: "wf", StepID: "gitops", Targets: map[string]runbooks.Target{"dr": {KubeContext: "dr"}},
			Args: map[string]any{"target": "dr", "app": app}}
	}
	t.Run("sync until Synced and Healthy, twice", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			res, err := a.Sync(wctx, in("shop"))
			cancel()
			require.NoError(t, err)
			assert.Contains(t, res.Summary, "shop Synced and Healthy")
			assert.Len(t, res.Outputs["revision"], 40, "the git commit Argo CD synced")
		}
	})
	t.Run("a Degraded application fails at the deadline naming the resource (retryable)", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := a.Sync(wctx, in("billing"))
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "health Degraded")
		assert.Contains(t, err.Error(), "Deployment billing/billing-worker: Progressing False (ProgressDeadlineExceeded")
		assert.Contains(t, err.Error(), "has timed out progressing")
		rig.Nodes.Heal("billing-worker-")
		wctx2, cancel2 := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel2()
		_, err = a.Sync(wctx2, in("billing"))
		require.NoError(t, err, "once the pods recover the retry succeeds")
	})
	t.Run("an application that cannot get in sync names the resource and the apiserver's reason", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := a.Sync(wctx, in("broken"))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, "SyncFailed", ae.Type())
		assert.Contains(t, err.Error(), "sync OutOfSync")
		assert.Contains(t, err.Error(), "Deployment broken/broken-api SyncFailed")
		assert.Contains(t, err.Error(), "spec.replicas")
	})
	t.Run("in a drill, an Application that deploys into production is refused before any sync", func(t *testing.T) {
		apps := dynamic.NewForConfigOrDie(rig.RESTConfig()).Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}).Namespace("argocd")
		drill := in("shop") // its override names an app, but the app deploys into shop, production's namespace
		drill.Mode, drill.DrillRun, drill.DrillOverridden = "drill", "lifeboat-shop-drill-abc123", []string{"app"}
		drill.NamespaceMappings = map[string]string{"shop": "restore-drill-shop"}
		_, err := a.Sync(ctx, drill)
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "argocd.sync in a drill refused: namespace shop is not a drill namespace (drill namespaces: restore-drill-shop)")
		after, err := apps.Get(ctx, "shop", metav1.GetOptions{})
		require.NoError(t, err)
		_, requested, _ := unstructured.NestedMap(after.Object, "operation")
		assert.False(t, requested, "no sync was requested")
	})
	t.Run("an unknown application is not retryable", func(t *testing.T) {
		_, err := a.Sync(ctx, in("nope"))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "no Application nope in namespace argocd")
	})
}
