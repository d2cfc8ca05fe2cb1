//go:build integration

package testsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/rbac"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// TestTheDrillsPermissionsHoldOnlyInTheDrillsOwnNamespaces applies what
// `lifeboat rbac` derives for example (c) to a real apiserver and works as
// the worker bound to nothing else. What a drill does in its namespaces is
// a ClusterRole bound nowhere: the pre-check answers for a drill namespace
// that does not exist yet through that ClusterRole, the drill guard binds it
// in the namespace it makes, and production's Role is what production's
// checks depend on (its binding taken away, the failover's pre-check fails
// and the drill's still passes). The worker may create RoleBindings so that
// it can bind the drill's ClusterRole, and admission holds it to that: an
// attacker with the worker's credentials cannot bind it in production, nor
// to anyone else in the drill's namespace, nor cluster-wide, nor make any
// other RoleBinding where no runbook applies one, nor label production as
// a drill's (an existing namespace, or one created under a production
// name). Nobody else, an administrator included, binds the drill role.
// Without the policy in force the drill's pre-check fails and the guard
// binds nothing, and a binding someone else left meanwhile is refused.
func TestTheDrillsPermissionsHoldOnlyInTheDrillsOwnNamespaces(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, err := testsuite.StartKube(ctx, testsuite.KubeOptions{Dir: t.TempDir(), Context: "restore-test"})
	require.NoError(t, err, "the kube rig must start (CI=%v)", testsuite.InCI())
	t.Cleanup(k.Stop)
	admin, err := kubernetes.NewForConfig(k.RESTConfig())
	require.NoError(t, err)

	// lifeboat rbac for example (c), applied as the cluster's admin.
	dir := t.TempDir()
	src, err := os.ReadFile("../runbooks/examples/namespace-restore-drill.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.yaml"), src, 0o644))
	cat, err := runbooks.LoadCatalog(dir)
	require.NoError(t, err)
	grants, err := rbac.ForCatalog(cat, activities.KubeAccesses(""), func(string) (kube.Mapper, error) { return kube.GuessMapper{}, nil })
	require.NoError(t, err)
	require.Len(t, grants, 1)
	var docs []string
	for _, o := range grants[0].Objects("lifeboat-worker", rbac.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: testsuite.WorkerUser}) {
		b, err := sigsyaml.Marshal(o)
		require.NoError(t, err)
		docs = append(docs, string(b))
	}
	applyYAML(t, ctx, k, strings.Join(docs, "\n---\n"))

	workerKubeconfig := filepath.Join(t.TempDir(), "worker-kubeconfig")
	require.NoError(t, testsuite.WriteWorkerKubeconfig(workerKubeconfig, k))
	source := &kube.KubeconfigSource{Default: workerKubeconfig, DrillRole: "lifeboat-worker-drill"}
	wc, err := source.For(k.Context)
	require.NoError(t, err)
	restCfg, err := clientcmd.BuildConfigFromFlags("", workerKubeconfig)
	require.NoError(t, err)
	attacker, err := kubernetes.NewForConfig(restCfg)
	require.NoError(t, err)

	const prod, drillNS = "case-management", "restore-drill-case-management"
	e, err := cat.Get("namespace-restore-drill")
	require.NoError(t, err)
	rb := e.Runbook
	input := func(mode string) runbooks.StepInput {
		in := runbooks.StepInput{Runbook: rb.Metadata.Name, Mode: mode, StepID: "workloads-ready", Targets: rb.Spec.Targets,
			Args: map[string]any{"target": "restore", "namespace": prod}}
		if mode == workflows.ModeDrill {
			in.Args["namespace"], in.NamespaceMappings, in.DrillRun = drillNS, rb.Spec.Drill.NamespaceMappings, "drill-of-c"
		}
		return in
	}
	precheck := kube.Precheck(source, activities.KubeAccesses("")["kube.waitReady"])
	failed := func(checks []runbooks.CheckResult) []string {
		var out []string
		for _, c := range checks {
			if !c.OK {
				out = append(out, c.Name+": "+c.Message)
			}
		}
		return out
	}

	// Admission answers once the policy is loaded (a dry run asks).
	bindDrillRoleIn := func(ns string, dry bool, subject rbacv1.Subject) error {
		opts := metav1.CreateOptions{}
		if dry {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err := attacker.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "borrowed"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lifeboat-worker-drill"},
			Subjects: []rbacv1.Subject{subject}}, opts)
		return err
	}
	worker := kube.SubjectOf(testsuite.WorkerUser)
	policyLoaded := func() bool { return bindDrillRoleIn(prod, true, worker) != nil }
	require.Eventually(t, policyLoaded, time.Minute, 200*time.Millisecond, "the admission policy never took effect")

	drillChecks := precheck(ctx, input(workflows.ModeDrill))
	require.NotEmpty(t, drillChecks)
	assert.Empty(t, failed(drillChecks), "the drill's namespace does not exist yet; its permissions come with the drill role")
	assert.Contains(t, drillChecks[0].Message, "through ClusterRole lifeboat-worker-drill")
	assert.Empty(t, failed(precheck(ctx, input(workflows.ModeFailover))), "production's Role grants the failover")

	// The drill role is bound nowhere: in production it grants nothing.
	require.NoError(t, admin.RbacV1().RoleBindings(prod).Delete(ctx, "lifeboat-worker", metav1.DeleteOptions{}))
	missing := failed(precheck(ctx, input(workflows.ModeFailover)))
	require.NotEmpty(t, missing, "production's binding taken away, nothing else grants the failover there")
	assert.Contains(t, missing[0], "in "+prod)
	assert.Empty(t, failed(precheck(ctx, input(workflows.ModeDrill))), "the drill does not depend on production's binding")

	// The drill makes its namespace and binds its role there.
	in := input(workflows.ModeDrill)
	require.NoError(t, kube.GuardDrillNamespaces(ctx, wc, in, "velero.restore", true, drillNS))
	binding, err := admin.RbacV1().RoleBindings(drillNS).Get(ctx, "lifeboat-worker-drill", metav1.GetOptions{})
	require.NoError(t, err, "the drill guard bound the drill role in the namespace it made")
	assert.Equal(t, []rbacv1.Subject{worker}, binding.Subjects)
	_, err = attacker.CoreV1().Pods(drillNS).List(ctx, metav1.ListOptions{})
	assert.NoError(t, err, "the worker works in the drill's namespace")
	require.NoError(t, kube.GuardDrillNamespaces(ctx, wc, in, "velero.restore", true, drillNS), "a second step (or attempt) finds it made and bound")
	_, err = attacker.CoreV1().Pods(prod).List(ctx, metav1.ListOptions{})
	assert.Error(t, err, "and nowhere else")

	// The attacker holds the worker's credentials.
	err = bindDrillRoleIn(prod, false, worker)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ClusterRole lifeboat-worker-drill is bound only by lifeboat's worker, to itself, in a drill's own namespace", "refused by the policy, not by a broken expression")
	_, err = attacker.RbacV1().RoleBindings("kube-system").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "borrowed"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lifeboat-worker"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone-else"}}}, metav1.CreateOptions{})
	require.Error(t, err, "no RoleBinding where no runbook applies one, even of permissions the worker holds")
	assert.Contains(t, err.Error(), "makes other RoleBindings only in a drill's namespaces and where its runbooks apply them")

	mallory := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}
	err = bindDrillRoleIn(drillNS, false, mallory)
	require.Error(t, err, "not even in the drill's namespace, to anyone but the worker")
	assert.Contains(t, err.Error(), "is bound only by lifeboat's worker, to itself")
	// A production namespace that does not exist yet cannot be claimed as
	// a drill's (the worker may create namespaces: drills make theirs).
	_, err = attacker.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments",
		Labels: map[string]string{kube.DrillRunLabel: "drill-of-c"}}}, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only on a namespace it creates for a drill (restore-drill-case-management)")

	// Even given patch on namespaces and create on ClusterRoleBindings
	// (a runbook applying either grants it), the worker cannot make
	// production look like a drill's namespace, nor bind the drill role
	// cluster-wide.
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "patch-namespaces"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "patch-namespaces"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "patch-namespaces"},
		Subjects: []rbacv1.Subject{worker}}, metav1.CreateOptions{})
	require.NoError(t, err)
	label := func(key, value string) error {
		patch := `{"metadata":{"labels":{"` + key + `":"` + value + `"}}}`
		_, err := attacker.CoreV1().Namespaces().Patch(ctx, prod, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}
	require.Eventually(t, func() bool { return label("team", "cases") == nil }, 30*time.Second, 200*time.Millisecond, "the worker may patch namespaces now")
	err = label(kube.DrillRunLabel, "drill-of-c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only on a namespace it creates for a drill")
	_, err = attacker.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "borrowed"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lifeboat-worker-drill"},
		Subjects: []rbacv1.Subject{worker}}, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ClusterRole lifeboat-worker-drill is never bound cluster-wide")

	// Nobody else binds the drill role, not even an administrator (nor a
	// second identity the worker could hand bind rights to).
	require.NoError(t, admin.RbacV1().RoleBindings(drillNS).Delete(ctx, "lifeboat-worker-drill", metav1.DeleteOptions{}))
	bindMallory := func() error {
		_, err := admin.RbacV1().RoleBindings(drillNS).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat-worker-drill"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lifeboat-worker-drill"},
			Subjects: []rbacv1.Subject{mallory}}, metav1.CreateOptions{})
		return err
	}
	err = bindMallory()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is bound only by lifeboat's worker")

	// Without the policy in force the drill's pre-check fails (the drill's
	// namespace holds no binding of the worker now) and the guard binds
	// nothing: nothing would keep the worker's bindings of the drill role
	// to drill namespaces.
	policies := admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	policyBinding, err := policies.Get(ctx, "lifeboat-worker-drill-scope", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, policies.Delete(ctx, policyBinding.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return !policyLoaded() }, time.Minute, 200*time.Millisecond, "the policy never went out of force")
	missing = failed(precheck(ctx, input(workflows.ModeDrill)))
	require.NotEmpty(t, missing)
	assert.Contains(t, missing[0], "is not in force")
	err = kube.GuardDrillNamespaces(ctx, wc, in, "velero.restore", true, drillNS)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not in force")
	_, err = admin.RbacV1().RoleBindings(drillNS).Get(ctx, "lifeboat-worker-drill", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing bound: %v", err)

	// A binding someone else left while the policy was out is refused, not
	// trusted, once it is back.
	require.NoError(t, bindMallory())
	policyBinding.ResourceVersion, policyBinding.UID = "", ""
	_, err = policies.Create(ctx, policyBinding, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, policyLoaded, time.Minute, 200*time.Millisecond, "the policy never came back")
	err = kube.GuardDrillNamespaces(ctx, wc, in, "velero.restore", true, drillNS)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "someone else made it")
}
