package rbac_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/rbac"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

func guess(string) (kube.Mapper, error) { return kube.GuessMapper{}, nil }

// Every action that reaches a cluster (it takes a target) declares what it
// does there: nothing reaches a cluster around the pre-check and rbac.
func TestEveryClusterActionDeclaresItsAccesses(t *testing.T) {
	declared := activities.KubeAccesses("")
	for _, name := range activities.Catalogue().ActionNames() {
		spec, _ := activities.Catalogue().Action(name)
		takesTarget := false
		for _, a := range spec.Args {
			takesTarget = takesTarget || a.Name == "target"
		}
		_, ok := declared[name]
		assert.Equal(t, takesTarget, ok, "%s: takes a target %v, declares its accesses %v", name, takesTarget, ok)
	}
}

// Example (a)'s grant: per cluster, no wildcard, Velero's namespace and
// the production namespace, and — for the drill — its drill namespaces.
func TestTheExampleCatalogsGrant(t *testing.T) {
	cat, err := runbooks.LoadCatalog("../runbooks/examples")
	require.NoError(t, err)
	base := t.TempDir() // what example (a)'s kube.apply applies, as the rig's repository holds it
	require.NoError(t, os.MkdirAll(filepath.Join(base, "manifests", "identity"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "manifests", "identity", "identity.yaml"), []byte(identityManifests), 0o644))
	grants, err := rbac.ForCatalog(cat, activities.KubeAccesses(base), guess)
	require.NoError(t, err)
	byCtx := map[string]*rbac.Grant{}
	for _, g := range grants {
		byCtx[g.KubeContext] = g
		for _, rules := range append([][]rbacv1.PolicyRule{g.Cluster}, mapsValues(g.Namespaces)...) {
			for _, r := range rules {
				for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
					assert.NotContains(t, field, "*", "no wildcard (%s)", g.KubeContext)
				}
			}
		}
	}
	dr := byCtx["dr-ca-west-1"]
	require.NotNil(t, dr, "the DR cluster: %v", keys(byCtx))
	assert.Contains(t, dr.Needed, "case-management-region-failover (failover)")
	assert.Contains(t, dr.Needed, "case-management-region-failover (drill)")
	assert.True(t, allows(dr.Namespaces["velero"], "velero.io", "restores", "create"), "%+v", dr.Namespaces["velero"])
	assert.True(t, allows(dr.Namespaces["case-management"], "apps", "deployments/scale", "update"))
	assert.True(t, allows(dr.Drill, "apps", "deployments/scale", "update"), "the drill scales its own namespace")
	assert.Equal(t, []string{"restore-drill-case-management"}, dr.DrillSpaces)
	assert.NotContains(t, dr.Namespaces, "restore-drill-case-management", "no Role can wait in a namespace a drill makes")
	assert.True(t, allows(dr.Cluster, "", "namespaces", "create"), "a drill makes its namespaces")
	assert.False(t, allows(dr.Cluster, "", "namespaces", "delete") && !named(dr.Cluster, "namespaces", "delete"), "deleting a namespace is granted by name only")

	assert.True(t, allows(dr.Namespaces["case-management"], "", "secrets", "get"), "who applies a Role holds what it grants (RBAC's escalation check)")
	assert.True(t, allows(dr.Namespaces["case-management"], "rbac.authorization.k8s.io", "roles", "patch"))

	objs := dr.Objects("lifeboat-worker", rbacv1.Subject{Kind: "ServiceAccount", Namespace: "lifeboat", Name: "lifeboat-worker"})
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, strings.TrimPrefix(strings.TrimPrefix(typeName(o), "*v1."), "v1."))
		switch o := o.(type) {
		case *rbacv1.ClusterRoleBinding:
			assert.Equal(t, "lifeboat-worker", o.RoleRef.Name, "the drill's ClusterRole is bound by each drill in its own namespaces, nowhere cluster-wide")
		case *rbacv1.RoleBinding:
			assert.NotEqual(t, "lifeboat-worker-drill", o.RoleRef.Name, "nor in a namespace that exists now")
		case *rbacv1.ClusterRole:
			if o.Name == "lifeboat-worker" {
				assert.True(t, allows(o.Rules, "rbac.authorization.k8s.io", "rolebindings", "create"), "the drill guard binds the drill role")
				assert.True(t, named(o.Rules, "clusterroles", "bind"), "bind on the drill role, by name")
			}
		}
	}
	assert.Contains(t, kinds, "ClusterRole")
	assert.Contains(t, kinds, "RoleBinding")
	assert.Contains(t, kinds, "ValidatingAdmissionPolicy", "what the worker may bind where is held by admission")
	assert.Contains(t, kinds, "ValidatingAdmissionPolicyBinding")
}

func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if r.APIGroups[0] == group && r.Resources[0] == resource {
			for _, v := range r.Verbs {
				if v == verb {
					return true
				}
			}
		}
	}
	return false
}

func named(rules []rbacv1.PolicyRule, resource, verb string) bool {
	for _, r := range rules {
		if r.Resources[0] == resource && len(r.ResourceNames) > 0 {
			for _, v := range r.Verbs {
				if v == verb {
					return true
				}
			}
		}
	}
	return false
}

const identityManifests = `apiVersion: v1
kind: Namespace
metadata: {name: case-management}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: case-api, namespace: case-management}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: case-management}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: case-api-reads-secrets, namespace: case-management}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects:
- {kind: ServiceAccount, name: case-api, namespace: case-management}
`

// A Role the runbook applies that grants a wildcard is not copied into the
// worker's rules (that would be a wildcard grant): the worker may escalate
// that one Role by name instead.
func TestAnAppliedWildcardRoleBecomesEscalateOnThatRoleOnly(t *testing.T) {
	cat, err := runbooks.LoadCatalog("../runbooks/examples")
	require.NoError(t, err)
	base := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "manifests", "identity"), 0o755))
	wild := identityManifests + `---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: case-admin, namespace: case-management}
rules:
- {apiGroups: ["apps"], resources: ["*"], verbs: ["*"]}
`
	require.NoError(t, os.WriteFile(filepath.Join(base, "manifests", "identity", "identity.yaml"), []byte(wild), 0o644))
	grants, err := rbac.ForCatalog(cat, activities.KubeAccesses(base), guess)
	require.NoError(t, err)
	found := false
	for _, g := range grants {
		for _, rules := range append([][]rbacv1.PolicyRule{g.Cluster, g.Drill}, mapsValues(g.Namespaces)...) {
			for _, r := range rules {
				for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
					assert.NotContains(t, field, "*", "no wildcard (%s)", g.KubeContext)
				}
				if slices.Contains(r.Verbs, "escalate") && slices.Equal(r.ResourceNames, []string{"case-admin"}) && r.Resources[0] == "roles" {
					found = true
				}
			}
		}
	}
	assert.True(t, found, "escalate on roles/case-admin")
}

// A drill of Velero restores alone declares nothing the worker does in its
// namespaces (Velero writes there), yet its guard makes them and binds the
// drill role: the role (empty), the right to bind it and the policy are
// printed all the same, the policy first.
func TestADrillOfRestoresAloneGetsItsRoleAndPolicy(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(`apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: restore-only, version: 1, owner: platform-team, description: Restore a namespace.}
spec:
  scope: namespace
  capability: the orders namespace
  disaster: namespace-corruption
  strategy: backup-restore
  objectives: {rto: 30m, rpo: 60m, mtd: 8h}
  approvers: {platform: [alice, bob]}
  targets:
    dr: {kubeContext: dr}
  layers:
    storage:
      - id: restore
        action: velero.restore
        with: {target: dr, backup: nightly, namespaces: [orders]}
        timeout: 15m
  drill:
    namespaceMappings: {orders: drill-orders}
    teardown:
      - id: drop
        action: kube.deleteNamespace
        with: {target: dr, namespace: drill-orders}
        timeout: 5m
`), 0o644))
	cat, err := runbooks.LoadCatalog(dir)
	require.NoError(t, err)
	grants, err := rbac.ForCatalog(cat, activities.KubeAccesses(""), guess)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	assert.Equal(t, []string{"drill-orders"}, grants[0].DrillSpaces)
	objs := grants[0].Objects("lifeboat-worker", rbacv1.Subject{Kind: "User", Name: "w"})
	require.NotEmpty(t, objs)
	assert.Contains(t, typeName(objs[0]), "ValidatingAdmissionPolicy", "the policy comes first: in force before the rules it guards")
	var drillRole, bindIt bool
	for _, o := range objs {
		if r, ok := o.(*rbacv1.ClusterRole); ok {
			drillRole = drillRole || r.Name == "lifeboat-worker-drill"
			bindIt = bindIt || (r.Name == "lifeboat-worker" && named(r.Rules, "clusterroles", "bind"))
		}
	}
	assert.True(t, drillRole, "the drill role exists to be bound")
	assert.True(t, bindIt, "and the worker may bind it")
}
