//go:build integration

package testsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestTheDeployManifestsApply: every manifest the kustomization lists
// applies to a real apiserver with strict field validation, first as a
// server-side dry run, then for real; two worker Deployments, each its own
// key, one PodDisruptionBudget over both, probes on the worker's port.
func TestTheDeployManifestsApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, err := testsuite.StartKube(ctx, testsuite.KubeOptions{Dir: t.TempDir(), Context: "dr"})
	require.NoError(t, err, "CI=%v", testsuite.InCI())
	t.Cleanup(k.Stop)
	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(k.RESTConfig())
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	dir := filepath.Join("..", "deploy", "kubernetes")
	var kz struct{ Resources []string }
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &kz))
	require.NotEmpty(t, kz.Resources)
	var objs []*unstructured.Unstructured
	for _, f := range kz.Resources {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				break
			}
			if m != nil {
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
		}
	}
	cs, err := kubernetes.NewForConfig(k.RESTConfig())
	require.NoError(t, err)
	// A dry run of objects in a namespace needs the namespace.
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lifeboat"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	for _, dryRun := range []bool{true, false} {
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			require.NoError(t, err, "%s", gvk)
			o.SetManagedFields(nil)
			data, err := o.MarshalJSON()
			require.NoError(t, err)
			opts := metav1.PatchOptions{FieldManager: "lifeboat-test", FieldValidation: "Strict", Force: ptr(true)}
			if dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if ns := o.GetNamespace(); ns != "" {
				ri = dyn.Resource(m.Resource).Namespace(ns)
			}
			_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
			require.NoError(t, err, "%s %s (dry run %v)", o.GetKind(), o.GetName(), dryRun)
		}
	}

	deps, err := cs.AppsV1().Deployments("lifeboat").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=lifeboat-worker"})
	require.NoError(t, err)
	require.Len(t, deps.Items, 2, "two workers")
	keys := map[string]bool{}
	for _, d := range deps.Items {
		spec := d.Spec.Template.Spec
		assert.Equal(t, "lifeboat-worker", spec.ServiceAccountName)
		for _, v := range spec.Volumes {
			if v.Name == "worker-key" {
				keys[v.Secret.SecretName] = true
			}
		}
		c := spec.Containers[0]
		assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	}
	assert.Len(t, keys, 2, "each worker its own key Secret")
	pdb, err := cs.PolicyV1().PodDisruptionBudgets("lifeboat").Get(ctx, "lifeboat-worker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, pdb.Spec.MinAvailable.IntValue())
}

func ptr[T any](v T) *T { return &v }
