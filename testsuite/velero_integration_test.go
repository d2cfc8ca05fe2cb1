//go:build integration

package testsuite_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// caseBackup is the case-management namespace as production has it.
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

// applyAll server-side applies fixture objects.
func applyAll(t *testing.T, dyn dynamic.Interface, objs []*unstructured.Unstructured) {
	t.Helper()
	require.NoError(t, testsuite.ApplyObjects(context.Background(), dyn, objs))
}

// denyRestoredConfig is a Kubernetes 1.33 ValidatingAdmissionPolicy that
// denies creating case-api-config in one namespace: a real admission refusal
// Velero meets while restoring. It returns once the apiserver enforces it.
func denyRestoredConfig(t *testing.T, typed kubernetes.Interface, dyn dynamic.Interface, namespace string) {
	t.Helper()
	ctx := context.Background()
	admission := func(resource string) dynamic.ResourceInterface {
		return dyn.Resource(schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: resource})
	}
	policy := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
		"metadata": map[string]any{"name": "no-case-api-config"},
		"spec": map[string]any{"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"configmaps"}}}},
			"validations": []any{map[string]any{"expression": "request.namespace != '" + namespace + "' || object.metadata.name != 'case-api-config'",
				"message": "case-api-config is owned by the config service; restoring it is forbidden"}}}}}
	_, err := admission("validatingadmissionpolicies").Create(ctx, policy, metav1.CreateOptions{})
	require.NoError(t, err)
	binding := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
		"metadata": map[string]any{"name": "no-case-api-config"},
		"spec":     map[string]any{"policyName": "no-case-api-config", "validationActions": []any{"Deny"}}}}
	_, err = admission("validatingadmissionpolicybindings").Create(ctx, binding, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := typed.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "case-api-config"}},
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err) || apierrors.IsInvalid(err)
	}, 30*time.Second, 100*time.Millisecond, "the admission policy never took effect")
}

func TestVeleroActionsOnTheRig(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	rig := testsuite.StartKubeRig(t, "dr")
	v := testsuite.StartVeleroOn(t, rig)
	ctx := context.Background()
	typed, err := kubernetes.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)

	// Production: case-management, backed up twice through the schedule.
	_, err = typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-management"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	applyAll(t, dyn, caseBackup("old-value"))
	require.NoError(t, v.Schedule(ctx, "production-hourly", "case-management"))
	old, _, err := v.BackupFromSchedule(ctx, "production-hourly")
	require.NoError(t, err)
	time.Sleep(time.Second) // backup names carry the second
	applyAll(t, dyn, caseBackup("planted-velero-secret-55e1"))
	latest, latestAt, err := v.BackupFromSchedule(ctx, "production-hourly")
	require.NoError(t, err)

	a := &velero.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}}
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

	t.Run("latestBackup finds the schedule's newest backup Velero took", func(t *testing.T) {
		res, err := a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly"}, nil))
		require.NoError(t, err)
		assert.Equal(t, latest, res.RecoveryPointName)
		assert.Equal(t, latestAt, res.RecoveryPoint.UTC())
		_, err = a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "nope"}, nil))
		assert.True(t, isNonRetryable(err))
	})
	t.Run("a paused schedule's backup grows older than the RPO", func(t *testing.T) {
		require.NoError(t, v.PauseSchedule(ctx, "production-hourly", true))
		t.Cleanup(func() { _ = v.PauseSchedule(ctx, "production-hourly", false) })
		time.Sleep(time.Until(latestAt.Add(2 * time.Second)))
		_, err := a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly", "maxAge": "1s"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "the latest backup of production-hourly ("+latest+")")
		assert.Contains(t, err.Error(), "older than 1s")
	})

	args := map[string]any{"target": "dr", "schedule": "production-hourly", "namespaces": []any{"case-management"}}
	drill := map[string]string{"case-management": "restore-drill-case-management"}
	t.Run("restore from the schedule's latest backup into the drill namespace, across a Velero restart and an abort", func(t *testing.T) {
		v.StopServer()
		short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		_, err := a.Restore(short, in("restore-case-data", args, drill))
		require.Error(t, err, "with the server down the Restore stays New until the attempt runs out of time")
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "still New")
		assert.Contains(t, err.Error(), "a retry waits on the same Restore")

		abortCtx, cancelAbort := context.WithCancel(ctx)
		time.AfterFunc(500*time.Millisecond, cancelAbort)
		_, err = a.Restore(abortCtx, in("restore-aborted", args, map[string]string{"case-management": "aborted-drill"}))
		var canceled *temporal.CanceledError
		require.True(t, errors.As(err, &canceled), "a cancellation, not a failure: %v", err)
		var why string
		require.NoError(t, canceled.Details(&why))
		aborted := velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-aborted", 0)
		assert.Contains(t, why, aborted+" had not started (New): lifeboat deleted it, so nothing was restored")
		_, err = dyn.Resource(testsuite.RestoreGVR).Namespace("velero").Get(ctx, aborted, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "an aborted Restore Velero had not started must not run later: %v", err)

		require.NoError(t, v.Restart(ctx))
		before := restores()
		res, err := a.Restore(ctx, in("restore-case-data", args, drill))
		require.NoError(t, err)
		assert.Equal(t, before, restores(), "the retry found the Restore it created instead of making a second")
		assert.Equal(t, latest, res.RecoveryPointName)
		assert.Equal(t, latestAt, res.RecoveryPoint.UTC())
		assert.Equal(t, velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-case-data", 0), res.Outputs["restore"])
		secret, err := typed.CoreV1().Secrets("restore-drill-case-management").Get(ctx, "case-api-db", metav1.GetOptions{})
		require.NoError(t, err, "the objects are restored into the mapped namespace")
		assert.Equal(t, "planted-velero-secret-55e1", string(secret.Data["password"]), "from the latest backup")
		assert.Equal(t, res.Outputs["restore"], secret.Labels["velero.io/restore-name"])
		prod, err := typed.CoreV1().Secrets("case-management").Get(ctx, "case-api-db", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, prod.Labels["velero.io/restore-name"], "nothing lands in the source namespace")

		again, err := a.Restore(ctx, in("restore-case-data", args, drill))
		require.NoError(t, err, "re-running the step is idempotent")
		assert.Equal(t, res.Outputs["restore"], again.Outputs["restore"])
		assert.Equal(t, before, restores())
		out, err := v.CLI(ctx, "restore", "get")
		require.NoError(t, err, out)
		assert.Contains(t, out, res.Outputs["restore"].(string), "Velero's own CLI lists the Restore")
	})
	t.Run("a second restore over existing objects completes", func(t *testing.T) {
		res, err := a.Restore(ctx, in("restore-again", args, drill))
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "completed")
	})
	t.Run("in a drill, a restore that would bring a namespace back under its own name is refused before any Restore", func(t *testing.T) {
		before := restores()
		for name, c := range map[string]struct {
			args map[string]any
			want string
		}{
			"every namespace of the backup": {map[string]any{"target": "dr", "backup": latest}, "it names no namespaces"},
			"an unmapped namespace":         {map[string]any{"target": "dr", "backup": latest, "namespaces": []any{"case-management", "billing"}}, "namespace billing would be restored under its own name"},
		} {
			step := in("restore-"+strings.ReplaceAll(name, " ", "-"), c.args, drill)
			step.Mode, step.DrillRun = "drill", "lifeboat-case-drill-abc123"
			_, err := a.Restore(ctx, step)
			require.Error(t, err, name)
			assert.True(t, isNonRetryable(err), name)
			assert.Contains(t, err.Error(), c.want, name)
		}
		assert.Equal(t, before, restores(), "no Restore was created")
	})
	t.Run("an abort of a restore in progress returns only once the restore has ended, before any teardown", func(t *testing.T) {
		// Throttled to one API request a second, the restore is in progress for seconds.
		require.NoError(t, v.Restart(ctx, "--client-qps", "1", "--client-burst", "1"))
		t.Cleanup(func() { require.NoError(t, v.Restart(ctx)) })
		step := in("restore-aborted-in-progress", args, map[string]string{"case-management": "aborted-in-progress-drill"})
		name := velero.RestoreName(step.WorkflowID, step.RunID, step.StepID, 0)
		phaseOf := func(name string) string {
			r, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return ""
			}
			p, _, _ := unstructured.NestedString(r.Object, "status", "phase")
			return p
		}
		phase := func() string { return phaseOf(name) }
		abortCtx, abort := context.WithCancel(ctx)
		defer abort()
		go func() {
			for phase() != "InProgress" && abortCtx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			abort()
		}()
		_, err := a.Restore(abortCtx, step)
		ended := phase()
		var canceled *temporal.CanceledError
		require.True(t, errors.As(err, &canceled), "a cancellation, not a failure: %v", err)
		var why string
		require.NoError(t, canceled.Details(&why))
		assert.Contains(t, why, "was in progress when the run was aborted; Velero cannot stop a restore, so lifeboat waited until it ended")
		assert.Contains(t, []string{"Completed", "PartiallyFailed", "Failed", "FailedValidation"}, ended, "the step returned only after the Restore ended")

		// A teardown that deletes the drill namespace while a restore still
		// fills it (its step ran out of time) waits for the restore first:
		// otherwise the restore recreates the namespace after the drill.
		const ns = "teardown-race-drill"
		fill := in("restore-racing-teardown", args, map[string]string{"case-management": ns})
		fill.Mode, fill.DrillRun = "drill", "lifeboat-case-drill-abc123"
		racing := velero.RestoreName(fill.WorkflowID, fill.RunID, fill.StepID, 0)
		go func() {
			short, cancel := context.WithTimeout(ctx, 2*time.Second) // runs out of time mid-restore
			defer cancel()
			_, _ = a.Restore(short, fill)
		}()
		require.Eventually(t, func() bool { return phaseOf(racing) == "InProgress" }, 30*time.Second, 50*time.Millisecond)
		drop := fill
		drop.StepID, drop.Args = "drop-drill-namespace", map[string]any{"target": "dr", "namespace": ns}
		_, err = (&kube.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}}).DeleteNamespace(ctx, drop)
		require.NoError(t, err)
		assert.Contains(t, []string{"Completed", "PartiallyFailed", "Failed"}, phaseOf(racing), "the teardown deleted the namespace only after the restore ended")
		time.Sleep(3 * time.Second)
		_, err = typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the drill namespace stays gone: %v", err)
	})
	t.Run("PartiallyFailed names the resource Velero could not restore and the admission policy's reason", func(t *testing.T) {
		denyRestoredConfig(t, typed, dyn, "broken-drill")
		broken := in("restore-broken", map[string]any{"target": "dr", "backup": latest}, map[string]string{"case-management": "broken-drill"})
		_, err := a.Restore(ctx, broken)
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "PartiallyFailed: 1 error(s)")
		assert.Contains(t, err.Error(), "error restoring configmaps/broken-drill/case-api-config")
		assert.Contains(t, err.Error(), "case-api-config is owned by the config service; restoring it is forbidden")

		before := restores()
		broken.OperatorRetries = 1
		_, err = a.Restore(ctx, broken)
		require.Error(t, err, "an operator's retry makes a new Restore instead of re-reading the failed one")
		assert.Contains(t, err.Error(), velero.RestoreName("lifeboat-case-drill-abc123", "run-1", "restore-broken", 1)+" of backup "+latest+" PartiallyFailed")
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
			map[string]any{"spec": map[string]any{"backupName": old, "includedNamespaces": []any{"case-management"},
				"namespaceMapping": map[string]any{"case-management": "someone-elses"}}}), metav1.CreateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool { // Velero completes it
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
		assert.Contains(t, err.Error(), "namespaceMapping map[case-management:someone-elses], this step wants map[case-management:restore-drill-case-management]")
	})
	t.Run("a missing backup fails Velero's validation, not retryable", func(t *testing.T) {
		_, err := a.Restore(ctx, in("restore-missing", map[string]any{"target": "dr", "backup": "does-not-exist"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), `FailedValidation`)
		assert.Contains(t, err.Error(), `"does-not-exist" not found`)
	})
	t.Run("velero.backup takes a backup Velero completes, once per step", func(t *testing.T) {
		step := in("backup-before-failover", map[string]any{"target": "dr", "schedule": "production-hourly"}, nil)
		res, err := a.Backup(ctx, step)
		require.NoError(t, err)
		name := velero.BackupName("lifeboat-case-drill-abc123", "run-1", "backup-before-failover", 0)
		assert.Equal(t, name, res.RecoveryPointName)
		require.NotNil(t, res.RecoveryPoint)
		assert.WithinDuration(t, time.Now(), *res.RecoveryPoint, time.Minute)
		again, err := a.Backup(ctx, step)
		require.NoError(t, err, "an activity retry finds the same Backup")
		assert.Equal(t, res.RecoveryPoint, again.RecoveryPoint)
		newest, err := a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly"}, nil))
		require.NoError(t, err)
		assert.Equal(t, name, newest.RecoveryPointName, "labelled as the schedule's, so a restore of the schedule picks it")
		out, err := v.CLI(ctx, "backup", "describe", name)
		require.NoError(t, err, out)
		assert.Contains(t, out, "Completed")

		_, err = a.Backup(ctx, in("backup-nowhere", map[string]any{"target": "dr", "namespaces": []any{"case-management"}, "storageLocation": "nowhere"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "FailedValidation")
		assert.Contains(t, err.Error(), "nowhere")
	})
	t.Run("a missing backup storage location is named, with the fix, and not retried", func(t *testing.T) {
		require.NoError(t, v.DeleteLocation(ctx, "default"))
		_, err := a.LatestBackup(ctx, in("fresh", map[string]any{"target": "dr", "schedule": "production-hourly"}, nil))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "backup storage location default, which is missing from namespace velero")
		assert.Contains(t, err.Error(), "velero backup-location create default")
		_, err = a.Restore(ctx, in("restore-without-location", args, map[string]string{"case-management": "no-location-drill"}))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "the backup storage location it was written to is missing")
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, "BackupStorageLocationMissing", ae.Type())
	})
}
