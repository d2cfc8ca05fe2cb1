//go:build integration

package testsuite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// ownState is what changes by itself on the rig whatever a drill does:
// events, leader-election leases, the node simulator's node heartbeats, and
// the Backup records Velero syncs from the bucket into a cluster as another
// cluster writes them.
var ownState = []string{"events", "events.events.k8s.io", "leases.coordination.k8s.io", "nodes", "backups.velero.io"}

// production is a snapshot of everything a drill must leave alone: every
// object outside the drill's namespaces, in both clusters while the primary
// serves (cluster, kind, namespace, name, fingerprint; cluster-scoped
// objects included) and the Cloudflare emulator's records, pools and load
// balancers.
type production struct {
	objects    map[string]string
	cloudflare string
}

// snapshotProduction lists every listable resource of the rig's apiserver
// and fingerprints each object without its status and bookkeeping (the real
// controllers keep writing status: Velero validates its storage location,
// Argo CD refreshes Applications). The run's own Velero records (Restores,
// Backups, DownloadRequests labelled managed-by lifeboat) are its evidence,
// not a change to production.
func snapshotProduction(t *testing.T, stack *testsuite.Stack, drillNamespaces ...string) production {
	t.Helper()
	snap := production{objects: map[string]string{}, cloudflare: stack.Cloudflare.State()}
	for _, r := range []*testsuite.Region{stack.Primary, stack.DR} {
		if r.LostAt.IsZero() {
			snapshotCluster(t, r.Kube, snap.objects, drillNamespaces)
		}
	}
	return snap
}

// snapshotCluster fingerprints every object of one cluster outside the
// drill's namespaces into objects, keyed by the cluster's context.
func snapshotCluster(t *testing.T, k *testsuite.Kube, objects map[string]string, drillNamespaces []string) {
	t.Helper()
	ctx := context.Background()
	cfg := k.RESTConfig()
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	lists, err := disc.ServerPreferredResources()
	require.NoError(t, err)
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(t, err)
		for _, r := range l.APIResources {
			name := r.Name
			if gv.Group != "" {
				name += "." + gv.Group
			}
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || slices.Contains(ownState, name) {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			require.NoError(t, err, name)
			for _, o := range items.Items {
				ns := o.GetNamespace()
				if slices.Contains(drillNamespaces, ns) || (r.Name == "namespaces" && slices.Contains(drillNamespaces, o.GetName())) {
					continue
				}
				if strings.HasSuffix(name, ".velero.io") && o.GetLabels()["app.kubernetes.io/managed-by"] == "lifeboat" {
					continue
				}
				objects[fmt.Sprintf("%s: %s %s/%s", k.Context, name, ns, o.GetName())] = fingerprint(o)
			}
		}
	}
}

// fingerprint is a digest of an object without its status, resource version,
// managed fields and the timestamps controllers refresh.
func fingerprint(o unstructured.Unstructured) string {
	c := o.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	for _, f := range []string{"resourceVersion", "managedFields", "generation"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	b, _ := json.Marshal(c.Object)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// stableProduction waits until two snapshots a second apart agree (the
// controllers have finished with what the test set up).
func stableProduction(t *testing.T, stack *testsuite.Stack, drillNamespaces ...string) production {
	t.Helper()
	prev := snapshotProduction(t, stack, drillNamespaces...)
	for i := 0; i < 30; i++ {
		time.Sleep(time.Second)
		next := snapshotProduction(t, stack, drillNamespaces...)
		if len(diffProduction(prev, next)) == 0 {
			return next
		}
		prev = next
	}
	t.Fatalf("production never settled: %v", diffProduction(prev, snapshotProduction(t, stack, drillNamespaces...)))
	return prev
}

// diffProduction names every object added, removed or changed.
func diffProduction(before, after production) []string {
	var out []string
	for k, rv := range before.objects {
		switch now, ok := after.objects[k]; {
		case !ok:
			out = append(out, "removed "+k)
		case now != rv:
			out = append(out, fmt.Sprintf("changed %s (fingerprint %s → %s)", k, rv, now))
		}
	}
	for k := range after.objects {
		if _, ok := before.objects[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	if before.cloudflare != after.cloudflare {
		out = append(out, "changed Cloudflare:\n"+before.cloudflare+"\n→\n"+after.cloudflare)
	}
	slices.Sort(out)
	return out
}

// seedProduction gives the DR cluster what a warm standby holds of
// production — a case-management namespace and a cluster-scoped binding,
// the objects the reproduced drills destroyed or force-applied over — beside
// the primary's serving case-management.
func seedProduction(t *testing.T, stack *testsuite.Stack) {
	t.Helper()
	ctx := context.Background()
	c, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
	require.NoError(t, err)
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-management"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().ConfigMaps("case-management").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "production-marker"},
		Data: map[string]string{"region": "ca-central-1"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "case-api-production"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "case-api", Namespace: "case-management"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
}
