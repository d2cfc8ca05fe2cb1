//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

const workloadManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: case-api, namespace: case-management}
spec:
  replicas: 0
  selector: {matchLabels: {app: case-api}}
  template:
    metadata: {labels: {app: case-api}}
    spec: {containers: [{name: api, image: registry.example/case-api:1.0}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: case-management}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: worker, image: registry.example/worker:1.0}]}
`

const crdManifest = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

const widget = `apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: case-management}
spec: {size: 3}
`

// clusterManifests hold a cluster-scoped object production already has
// (created by the test first) and one it does not.
const clusterManifests = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: drill-only-reader}
rules:
- {apiGroups: [""], resources: [nodes], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: case-api-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: drill-only-reader}
subjects:
- {kind: ServiceAccount, name: case-api, namespace: case-management}
`

func isNonRetryable(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable()
}

func TestKubeActionsOnTheRig(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	rig := testsuite.StartKubeRig(t, "dr-ca-west-1")
	base := t.TempDir()
	for name, doc := range map[string]string{"identity/all.yaml": testsuite.IdentityManifests, "workloads/deploy.yaml": workloadManifests,
		"crds/widget-crd.yaml": crdManifest, "widgets/w1.yaml": widget, "cluster/crb.yaml": clusterManifests,
		"drillcluster/role.yaml": strings.SplitN(clusterManifests, "---\n", 2)[0],
		"unmapped/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: billing}\n", "broken/bad.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: case-management}\nspec: {replicas: -4, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}\n"} {
		p := filepath.Join(base, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	}
	a := &kube.Actions{Source: &kube.KubeconfigSource{Default: rig.Kubeconfig}, BaseDir: base}
	targets := map[string]runbooks.Target{"dr": {KubeContext: "dr-ca-west-1"}, "ghost": {KubeContext: "no-such-context"}}
	step := func(args map[string]any) runbooks.StepInput {
		return runbooks.StepInput{WorkflowID: "wf", StepID: "s", Args: args, Targets: targets}
	}
	ctx := context.Background()
	typed, err := kubernetes.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)
	canI := step(map[string]any{"target": "dr", "as": "system:serviceaccount:case-management:case-api", "verb": "get", "resource": "secrets", "namespace": "case-management"})

	t.Run("kube.canI denied before the bindings exist (retryable)", func(t *testing.T) {
		_, err := a.CanI(ctx, canI)
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "NO — system:serviceaccount:case-management:case-api can get secrets in case-management is denied")
	})
	t.Run("kube.apply applies the identity layer, idempotently", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			res, err := a.Apply(ctx, step(map[string]any{"target": "dr", "path": "identity"}))
			require.NoError(t, err)
			assert.Equal(t, "applied 4 object(s) from identity", res.Summary)
		}
		_, err := typed.RbacV1().RoleBindings("case-management").Get(ctx, "case-api-reads-secrets", metav1.GetOptions{})
		require.NoError(t, err)
	})
	t.Run("kube.apply in a drill: only drill namespaces, cluster-scoped objects only from drill manifests", func(t *testing.T) {
		drill := func(path string, overridden ...string) runbooks.StepInput {
			in := step(map[string]any{"target": "dr", "path": path})
			in.Mode, in.NamespaceMappings, in.DrillOverridden = "drill", map[string]string{"case-management": "drill-case"}, overridden
			return in
		}
		res, err := a.Apply(ctx, drill("identity"))
		require.NoError(t, err, "the identity layer maps into the drill namespace")
		assert.Equal(t, "applied 4 object(s) from identity", res.Summary)
		_, err = typed.RbacV1().RoleBindings("drill-case").Get(ctx, "case-api-reads-secrets", metav1.GetOptions{})
		require.NoError(t, err)

		before, err := typed.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ // production's
			ObjectMeta: metav1.ObjectMeta{Name: "case-api-nodes"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "production-reader"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "case-api", Namespace: "case-management"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = a.Apply(ctx, drill("cluster"))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "clusterrolebinding/case-api-nodes (cluster-scoped: shared with production)")
		assert.Contains(t, err.Error(), "spec.drill.with.s.path")
		after, err := typed.RbacV1().ClusterRoleBindings().Get(ctx, "case-api-nodes", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "production's ClusterRoleBinding was not force-applied")
		_, err = typed.RbacV1().ClusterRoles().Get(ctx, "drill-only-reader", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing of the refused manifests was applied")

		_, err = a.Apply(ctx, drill("unmapped"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "billing/configmap/settings (namespace billing is not a drill namespace)")

		res, err = a.Apply(ctx, drill("drillcluster", "path"))
		require.NoError(t, err, "drill manifests (spec.drill.with.STEP.path) may hold cluster-scoped objects")
		assert.Equal(t, "applied 1 object(s) from drillcluster", res.Summary)
	})
	t.Run("kube.canI allowed once bound", func(t *testing.T) {
		require.Eventually(t, func() bool { _, err := a.CanI(ctx, canI); return err == nil }, 30*time.Second, 200*time.Millisecond)
		res, err := a.CanI(ctx, canI)
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "yes:")
	})
	t.Run("kube.apply of a kind whose CRD is missing is retryable, then works", func(t *testing.T) {
		_, err := a.Apply(ctx, step(map[string]any{"target": "dr", "path": "widgets"}))
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "is its CRD installed?")
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = a.CRDsEstablished(short, step(map[string]any{"target": "dr", "names": []any{"widgets.example.com"}}))
		assert.ErrorContains(t, err, "widgets.example.com (missing)")
		_, err = a.Apply(ctx, step(map[string]any{"target": "dr", "path": "crds"}))
		require.NoError(t, err)
		wait, cancel2 := context.WithTimeout(ctx, 30*time.Second)
		defer cancel2()
		_, err = a.CRDsEstablished(wait, step(map[string]any{"target": "dr", "names": []any{"widgets.example.com"}}))
		require.NoError(t, err, "the step waits (watching) until the CRD is Established")
		_, err = a.Apply(ctx, step(map[string]any{"target": "dr", "path": "widgets/w1.yaml"}))
		require.NoError(t, err)
	})
	t.Run("kube.apply of an invalid object is not retryable and says what to fix", func(t *testing.T) {
		_, err := a.Apply(ctx, step(map[string]any{"target": "dr", "path": "broken"}))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "fix the manifest")
		_, err = a.Apply(ctx, step(map[string]any{"target": "dr", "path": "nowhere"}))
		assert.True(t, isNonRetryable(err))
	})
	t.Run("an unknown kube context is not retryable", func(t *testing.T) {
		_, err := a.Scale(ctx, step(map[string]any{"target": "ghost", "namespace": "x", "replicas": map[string]any{"a": 1}}))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), `kube context "no-such-context"`)
	})
	t.Run("kube.secretsPresent waits for the secrets operator, names missing secrets and never returns values", func(t *testing.T) {
		in := step(map[string]any{"target": "dr", "namespace": "case-management", "names": []any{"case-api-db"}, "keys": map[string]any{"case-api-db": []any{"password"}}})
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := a.SecretsPresent(short, in)
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "secret case-management/case-api-db does not exist")

		// The secrets operator writes the Secret while the step waits: the
		// step returns as the Secret appears (a watch), not after failing
		// and a retry's backoff.
		const planted = "planted-secret-value-7f3a9c"
		created := make(chan time.Time, 1)
		go func() {
			time.Sleep(time.Second)
			_, err := typed.CoreV1().Secrets("case-management").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "case-api-db"},
				StringData: map[string]string{"password": planted, "user": "case"}}, metav1.CreateOptions{})
			assert.NoError(t, err)
			created <- time.Now()
		}()
		wait, cancel2 := context.WithTimeout(ctx, time.Minute)
		defer cancel2()
		res, err := a.SecretsPresent(wait, in)
		require.NoError(t, err, "the step waits for the Secret within its timeout")
		assert.Less(t, time.Since(<-created), 5*time.Second, "returned as the Secret appeared, not at the step's timeout")
		out, _ := json.Marshal(res)
		assert.NotContains(t, string(out), planted)
		assert.Contains(t, string(out), `"password","user"`)
	})
	t.Run("kube.scale and kube.waitReady", func(t *testing.T) {
		rig.Nodes.CrashLoop("worker-")
		_, err := a.Apply(ctx, step(map[string]any{"target": "dr", "path": "workloads"}))
		require.NoError(t, err)
		scale := step(map[string]any{"target": "dr", "namespace": "case-management", "replicas": map[string]any{"case-api": 2}})
		res, err := a.Scale(ctx, scale)
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"case-api": 0}, res.Outputs["previousReplicas"])
		res, err = a.Scale(ctx, scale)
		require.NoError(t, err, "scaling again is idempotent")
		assert.Equal(t, map[string]any{"case-api": 2}, res.Outputs["previousReplicas"])

		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err = a.WaitReady(wctx, step(map[string]any{"target": "dr", "namespace": "case-management", "names": []any{"case-api"}}))
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "1 workload(s) ready")

		// let the simulator put the worker pod into CrashLoopBackOff first
		require.Eventually(t, func() bool {
			pods, err := typed.CoreV1().Pods("case-management").List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
			return err == nil && len(pods.Items) == 1 && len(pods.Items[0].Status.ContainerStatuses) == 1 &&
				pods.Items[0].Status.ContainerStatuses[0].State.Waiting != nil
		}, time.Minute, 200*time.Millisecond)
		short, cancel2 := context.WithTimeout(ctx, 4*time.Second)
		defer cancel2()
		_, err = a.WaitReady(short, step(map[string]any{"target": "dr", "namespace": "case-management"}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "deployment/worker (0/1 ready)")
		assert.Contains(t, err.Error(), "CrashLoopBackOff (container worker, 5 restarts)")

		rig.Nodes.Heal("worker-")
		healed, cancel3 := context.WithTimeout(ctx, time.Minute)
		defer cancel3()
		res, err = a.WaitReady(healed, step(map[string]any{"target": "dr", "namespace": "case-management"}))
		require.NoError(t, err, "once the pod stops crash-looping the retry succeeds")
		assert.Contains(t, res.Summary, "2 workload(s) ready")

		// A retried attempt (the first one scaled case-api and worker, then
		// failed) reports the replicas from before the run, carried in the
		// first attempt's heartbeat details, not what that attempt wrote.
		var suite sdktest.WorkflowTestSuite
		first := suite.NewTestActivityEnvironment()
		var carried converter.EncodedValues
		first.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) { carried = d })
		first.RegisterActivityWithOptions(a.Scale, activity.RegisterOptions{Name: "kube.scale"})
		both := step(map[string]any{"target": "dr", "namespace": "case-management", "replicas": map[string]any{"case-api": 3, "worker": 2}})
		_, err = first.ExecuteActivity("kube.scale", both)
		require.NoError(t, err)
		require.NotNil(t, carried)
		var before map[string]int
		require.NoError(t, carried.Get(&before))
		assert.Equal(t, map[string]int{"case-api": 2, "worker": 1}, before)
		retried := suite.NewTestActivityEnvironment()
		retried.SetHeartbeatDetails(before)
		retried.RegisterActivityWithOptions(a.Scale, activity.RegisterOptions{Name: "kube.scale"})
		v, err := retried.ExecuteActivity("kube.scale", both)
		require.NoError(t, err)
		var again runbooks.StepResult
		require.NoError(t, v.Get(&again))
		assert.Equal(t, map[string]any{"case-api": float64(2), "worker": float64(1)}, again.Outputs["previousReplicas"], "the replicas before the run")

		_, err = a.Scale(ctx, step(map[string]any{"target": "dr", "namespace": "case-management", "replicas": map[string]any{"nope": 1}}))
		assert.ErrorContains(t, err, "no Deployment or StatefulSet case-management/nope")
		assert.False(t, isNonRetryable(err), "the workload may still be on its way (restore)")
	})
	t.Run("pre-flight: the worker's own access, asked of the API server; a revoked binding fails with the fix", func(t *testing.T) {
		// The worker runs as a service account (impersonation stands in for its token).
		const worker = "system:serviceaccount:lifeboat:worker"
		cfg := rig.RESTConfig()
		cfg.Impersonate = rest.ImpersonationConfig{UserName: worker, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
		c, err := kube.NewClient(cfg, "dr-ca-west-1")
		require.NoError(t, err)
		restricted := (&kube.Actions{Source: oneCluster{c}, BaseDir: base}).Prechecks()
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-scale", Namespace: "case-management"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale", "statefulsets/scale"}, Verbs: []string{"get", "update"}}}}
		_, err = typed.RbacV1().Roles("case-management").Create(ctx, role, metav1.CreateOptions{})
		require.NoError(t, err)
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-scale", Namespace: "case-management"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "lifeboat-scale"},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: worker}}}
		_, err = typed.RbacV1().RoleBindings("case-management").Create(ctx, binding, metav1.CreateOptions{})
		require.NoError(t, err)
		scale := step(map[string]any{"target": "dr", "namespace": "case-management", "replicas": map[string]any{"case-api": 1}})
		require.Eventually(t, func() bool {
			got := restricted["kube.scale"](ctx, scale)
			return len(got) == 4 && got[0].OK && got[1].OK && got[2].OK && got[3].OK
		}, 10*time.Second, 100*time.Millisecond, "the binding lets the worker scale (get and update the scale of Deployments and StatefulSets, what kube.scale does)")

		require.NoError(t, typed.RbacV1().RoleBindings("case-management").Delete(ctx, "lifeboat-scale", metav1.DeleteOptions{}))
		var got []runbooks.CheckResult
		require.Eventually(t, func() bool {
			got = restricted["kube.scale"](ctx, scale)
			return len(got) == 4 && !got[0].OK
		}, 10*time.Second, 100*time.Millisecond, "the revoked binding is seen at once")
		assert.Equal(t, "may get deployments.apps/scale in case-management", got[0].Name)
		assert.Equal(t, "may update statefulsets.apps/scale in case-management", got[3].Name)
		assert.Contains(t, got[0].Message, "the worker's identity in dr-ca-west-1 is denied")
		assert.Contains(t, got[0].Fix, "grant the worker's identity may get deployments.apps/scale in case-management")

		del := restricted["kube.deleteNamespace"](ctx, step(map[string]any{"target": "dr", "namespace": "restore-drill-x"}))
		require.Len(t, del, 4, "list and watch (the wait watches), delete, and get (its dry run)")
		for _, c := range del {
			assert.False(t, c.OK, "%s: never granted", c.Name)
		}
		assert.Equal(t, "may watch namespaces", del[1].Name)
		assert.Equal(t, "may delete namespaces restore-drill-x", del[2].Name)
		// A wait the worker may not watch fails at once, naming the missing
		// access, instead of waiting out its timeout.
		denied, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		began := time.Now()
		_, err = (&kube.Actions{Source: oneCluster{c}}).WaitReady(denied, step(map[string]any{"target": "dr", "namespace": "case-management"}))
		require.Error(t, err)
		assert.True(t, isNonRetryable(err), "%v", err)
		assert.Regexp(t, `cannot watch (deployments|statefulsets|daemonsets) in case-management`, err.Error(), "whichever informer is refused first")
		assert.Less(t, time.Since(began), 15*time.Second, "refused at once, not at the timeout")
		undeclared := restricted["kube.waitReady"](ctx, step(map[string]any{"target": "nowhere", "namespace": "x"}))
		require.Len(t, undeclared, 1)
		assert.Equal(t, "target nowhere resolves", undeclared[0].Name)
		assert.False(t, undeclared[0].OK)
	})

	t.Run("kube.pvcBound waits for the binder", func(t *testing.T) {
		in := step(map[string]any{"target": "dr", "namespace": "case-management", "names": []any{"case-data"}})
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := a.PVCBound(short, in)
		require.Error(t, err)
		assert.False(t, isNonRetryable(err))
		assert.Contains(t, err.Error(), "case-data (missing)")
		_, err = typed.CoreV1().PersistentVolumeClaims("case-management").Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "case-data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		wait, cancel2 := context.WithTimeout(ctx, time.Minute)
		defer cancel2()
		_, err = a.PVCBound(wait, in)
		require.NoError(t, err, "the step waits (watching) until the real persistentvolume-binder binds the claim")
		res, err := a.PVCBound(ctx, step(map[string]any{"target": "dr", "namespace": "case-management"}))
		require.NoError(t, err)
		assert.Equal(t, "1 claim(s) bound in case-management", res.Summary)
	})
	// Issue 24, scenario 2: kube.deleteNamespace had no runtime guard; a
	// drill (or a teardown started with an inline text) deleted payments.
	t.Run("in a drill, changing actions touch only namespaces labelled for that drill", func(t *testing.T) {
		for _, ns := range []string{"payments", "drill-payments"} {
			_, err := typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		drill := func(run string, mappings map[string]string, args map[string]any) runbooks.StepInput {
			in := step(args)
			in.Mode, in.NamespaceMappings, in.DrillRun = "drill", mappings, run
			return in
		}
		chained := map[string]string{"case-management": "payments", "payments": "drill-payments"}
		for _, c := range []struct {
			in   runbooks.StepInput
			want string
		}{
			{drill("drill-1", chained, map[string]any{"target": "dr", "namespace": "payments"}), "namespace payments is not a drill namespace (drill namespaces: drill-payments)"},
			{drill("drill-1", map[string]string{"case-management": "drill-payments"}, map[string]any{"target": "dr", "namespace": "payments"}), "namespace payments is not a drill namespace"},
			{drill("drill-1", map[string]string{"case-management": "drill-payments"}, map[string]any{"target": "dr", "namespace": "drill-payments"}), "namespace drill-payments exists and is not labelled lifeboat.dev/drill-run=drill-1"},
		} {
			_, err := a.DeleteNamespace(ctx, c.in)
			require.Error(t, err)
			assert.True(t, isNonRetryable(err))
			assert.Contains(t, err.Error(), c.want)
		}
		_, err := a.Scale(ctx, drill("drill-1", map[string]string{"case-management": "drill-payments"},
			map[string]any{"target": "dr", "namespace": "drill-payments", "replicas": map[string]any{"x": 1}}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "kube.scale in a drill refused")
		for _, ns := range []string{"payments", "drill-payments"} {
			got, err := typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Nil(t, got.DeletionTimestamp, "%s untouched", ns)
		}

		// A drill's own namespace: kube.apply creates it labelled; only its
		// own drill (or that drill's teardown) may delete it.
		mine := map[string]string{"case-management": "drill-two"}
		res, err := a.Apply(ctx, drill("drill-2", mine, map[string]any{"target": "dr", "path": "identity"}))
		require.NoError(t, err)
		assert.Equal(t, "applied 4 object(s) from identity", res.Summary)
		got, err := typed.CoreV1().Namespaces().Get(ctx, "drill-two", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "drill-2", got.Labels[kube.DrillRunLabel])
		_, err = a.DeleteNamespace(ctx, drill("drill-1", mine, map[string]any{"target": "dr", "namespace": "drill-two"}))
		require.Error(t, err, "another drill's namespace")
		assert.Contains(t, err.Error(), `its label says "drill-2"`)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err = a.DeleteNamespace(dctx, drill("drill-2", mine, map[string]any{"target": "dr", "namespace": "drill-two"}))
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "deleted")
	})
	t.Run("kube.deleteNamespace waits until gone and is idempotent", func(t *testing.T) {
		in := step(map[string]any{"target": "dr", "namespace": "case-management"})
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err := a.DeleteNamespace(dctx, in)
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "deleted")
		res, err = a.DeleteNamespace(dctx, in)
		require.NoError(t, err)
		assert.Contains(t, res.Summary, "already gone")
	})
}

// oneCluster is a kube.Source with one client for every context.
type oneCluster struct{ c *kube.Client }

func (o oneCluster) For(string) (*kube.Client, error) { return o.c, nil }
