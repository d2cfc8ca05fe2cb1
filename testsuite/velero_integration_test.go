//go:build integration

package testsuite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/velero"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

func obj(apiVersion, kind, ns, name string, extra map[string]any) *unstructured.Unstructured {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": ns}}
	for k, v := range extra {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

// caseBackup is a fixture of the case-management namespace.
func caseBackup(planted string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "case-management", "case-api-config", map[string]any{"data": map[string]any{"LOG_LEVEL": "info"}}),
		obj("v1", "Secret", "case-management", "case-api-db", map[string]any{"stringData": map[string]any{"password": planted}}),
		obj("apps/v1", "Deployment", "case-management", "case-api", map[string]any{"spec": map[string]any{
			"replicas": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"app": "case-api"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "case-api"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "api", "image": "registry.example/case-api:1.0"}}}}}}),
	}
}

func TestVeleroActionsOnTheRig(t *testing.T) {
	rig := testsuite.StartKubeRig(t, "dr")
	ctx := context.Background()
	sim, err := testsuite.StartVeleroSim(ctx, rig.RESTConfig())
	require.NoError(t, err)
	t.Cleanup(sim.Stop)
	sim.SetDelay(2 * time.Second)
	declared := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, sim.AddBackup(ctx, "hourly-old", "production-hourly", declared.Add(-68*time.Minute), caseBackup("old-value")))
	require.NoError(t, sim.AddBackup(ctx, "hourly-latest", "production-hourly", declared.Add(-8*time.Minute), caseBackup("planted-velero-secret-55e1")))
	broken := append(caseBackup("x"), obj("example.com/v1", "Widget", "case-management", "w1", nil))
	require.NoError(t, sim.AddBackup(ctx, "with-unknown-kind", "other", declared.Add(-time.Hour), broken))

	a := &velero.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}, Poll: 200 * time.Millisecond}
	typed, err := kubernetes.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)
	targets := map[string]runbooks.Target{"dr": {KubeContext: "dr"}}
	in := func(step string, args map[string]any, mappings map[string]string) runbooks.StepInput {
		return runbooks.StepInput{WorkflowID: "lifeboat-case-drill-abc123", RunID: "run-1", StepID: step, Args: args, Targets: targets,
			NamespaceMappings: mappings, RPO: runbooks.Duration(15 * time.Minute)}
	}
	restores := func() int {
		l, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		return len(l.Items)
	}

	t.Run("latestBackup judges age against the RPO", func(t *testing.T) {
		res, err := a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly"}, nil))
		require.NoError(t, err)
		assert.Equal(t, "hourly-latest", res.RecoveryPointName)
		assert.Equal(t, declared.Add(-8*time.Minute), res.RecoveryPoint.UTC())
		_, err = a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly", "maxAge": "5m"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "older than 5m")
		_, err = a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "nope"}, nil))
		assert.True(t, isNonRetryable(err))
	})

	args := map[string]any{"target": "dr", "schedule": "production-hourly", "namespaces": []any{"case-management"}}
	drill := map[string]string{"case-management": "restore-drill-case-management"}
	t.Run("restore from a schedule's latest backup into the drill namespace, surviving a retry", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		_, err := a.Restore(short, in("restore-case-data", args, drill))
		require.Error(t, err, "the first attempt runs out of time while the restore is in progress")
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "a retry waits on the same Restore")

		res, err := a.Restore(ctx, in("restore-case-data", args, drill))
		require.NoError(t, err)
		assert.Equal(t, 1, restores(), "the retry found the Restore it created instead of making a second")
		assert.Equal(t, "hourly-latest", res.RecoveryPointName)
		assert.Equal(t, declared.Add(-8*time.Minute), res.RecoveryPoint.UTC())
		assert.Equal(t, velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-case-data", 0), res.Outputs["restore"])
		_, err = typed.AppsV1().Deployments("restore-drill-case-management").Get(ctx, "case-api", metav1.GetOptions{})
		require.NoError(t, err, "the objects are restored into the mapped namespace")
		_, err = typed.AppsV1().Deployments("case-management").Get(ctx, "case-api", metav1.GetOptions{})
		assert.Error(t, err, "nothing lands in the source namespace")

		again, err := a.Restore(ctx, in("restore-case-data", args, drill))
		require.NoError(t, err, "re-running the step is idempotent")
		assert.Equal(t, res.Outputs["restore"], again.Outputs["restore"])
		assert.Equal(t, 1, restores())
	})
	t.Run("an aborted restore says what it left behind", func(t *testing.T) {
		aborted, cancel := context.WithCancel(ctx)
		time.AfterFunc(500*time.Millisecond, cancel)
		_, err := a.Restore(aborted, in("restore-aborted", args, map[string]string{"case-management": "aborted-drill"}))
		var canceled *temporal.CanceledError
		require.True(t, errors.As(err, &canceled), "a cancellation, not a failure: %v", err)
		var why string
		require.NoError(t, canceled.Details(&why))
		assert.Contains(t, why, velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-aborted", 0)+" left")
		assert.Contains(t, why, "Velero cannot stop a restore in progress")
	})
	t.Run("a second restore over existing objects completes with warnings", func(t *testing.T) {
		res, err := a.Restore(ctx, in("restore-again", args, drill))
		require.NoError(t, err)
		assert.Equal(t, int64(3), res.Outputs["warnings"])
	})
	t.Run("PartiallyFailed surfaces warnings and errors, not retryable", func(t *testing.T) {
		_, err := a.Restore(ctx, in("restore-broken", map[string]any{"target": "dr", "backup": "with-unknown-kind"}, map[string]string{"case-management": "broken-drill"}))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "PartiallyFailed: 0 warning(s), 1 error(s)")
		assert.Contains(t, err.Error(), "Widget broken-drill/w1")
	})
	t.Run("an operator's retry after PartiallyFailed makes a new Restore instead of re-reading the failed one", func(t *testing.T) {
		before := restores()
		retried := in("restore-broken", map[string]any{"target": "dr", "backup": "with-unknown-kind"}, map[string]string{"case-management": "broken-drill"})
		retried.OperatorRetries = 1
		_, err := a.Restore(ctx, retried)
		require.Error(t, err)
		assert.Contains(t, err.Error(), velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-broken", 1)+" of backup with-unknown-kind PartiallyFailed")
		assert.Equal(t, before+1, restores(), "a new Restore, really tried again")
	})
	t.Run("a new run under a reused workflow id makes its own Restore", func(t *testing.T) {
		before := restores()
		second := in("restore-case-data", args, drill)
		second.RunID = "run-2"
		res, err := a.Restore(ctx, second)
		require.NoError(t, err)
		assert.Equal(t, velero.RestoreName("lifeboat-case-drill-abc123", "run-2", "restore-case-data", 0), res.Outputs["restore"])
		assert.Equal(t, before+1, restores())
	})
	t.Run("an existing Restore of the step's name with another spec is an error, never a success", func(t *testing.T) {
		name := velero.RestoreName("lifeboat-case-drill-abc123", "run-3", "restore-case-data", 0)
		_, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").Create(ctx, obj("velero.io/v1", "Restore", "velero", name,
			map[string]any{"spec": map[string]any{"backupName": "hourly-old", "includedNamespaces": []any{"case-management"}}}), metav1.CreateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool { // the simulated Velero completes it
			r, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").Get(ctx, name, metav1.GetOptions{})
			phase, _, _ := unstructured.NestedString(r.Object, "status", "phase")
			return err == nil && phase != "" && phase != "New" && phase != "InProgress"
		}, 30*time.Second, 200*time.Millisecond)
		third := in("restore-case-data", args, drill)
		third.RunID = "run-3"
		_, err = a.Restore(ctx, third)
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "already exists with another spec")
		assert.Contains(t, err.Error(), "scheduleName (none), this step wants production-hourly")
	})
	t.Run("a missing backup fails validation, not retryable", func(t *testing.T) {
		_, err := a.Restore(ctx, in("restore-missing", map[string]any{"target": "dr", "backup": "does-not-exist"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), `FailedValidation: Unable to retrieve backup: backups.velero.io "does-not-exist" not found`)
	})
}
