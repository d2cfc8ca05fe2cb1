package kube

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// drillGuard refuses, before anything is applied, manifests that a drill
// would apply outside its scope: a namespaced object outside the drill's
// namespaces (the destinations of spec.drill.namespaceMappings), a Namespace
// that is not one of them, and any other cluster-scoped object (a
// ClusterRoleBinding, a CRD) unless the step applies drill manifests
// (spec.drill.with.STEP.path). objs are already remapped.
func drillGuard(c *Client, in runbooks.StepInput, objs []*unstructured.Unstructured, defaultNS string) error {
	if !in.Drill() {
		return nil
	}
	dests := map[string]bool{}
	for _, to := range DrillDestinations(in) {
		dests[to] = true
	}
	drillManifests := slices.Contains(in.DrillOverridden, "path")
	var outside []string
	for _, o := range objs {
		ref := strings.ToLower(o.GetKind()) + "/" + o.GetName()
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			if !dests[o.GetName()] {
				outside = append(outside, ref+" (not a drill namespace)")
			}
			continue
		}
		gvk := o.GroupVersionKind()
		m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil && m.Scope.Name() == meta.RESTScopeNameNamespace:
			ns := cmp.Or(o.GetNamespace(), defaultNS, "default")
			if !dests[ns] {
				outside = append(outside, fmt.Sprintf("%s/%s (namespace %s is not a drill namespace)", ns, ref, ns))
			}
		case drillManifests:
			// cluster-scoped (or a kind not yet known) from drill manifests
		case err == nil:
			outside = append(outside, ref+" (cluster-scoped: shared with production)")
		default:
			outside = append(outside, ref+" (a kind the cluster does not know yet; its scope cannot be checked)")
		}
	}
	if len(outside) == 0 {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"kube.apply in a drill refused, nothing applied: %s would be changed outside the drill (drill namespaces: %s). Map their namespaces in spec.drill.namespaceMappings, or give the step drill manifests with spec.drill.with.%s.path",
		strings.Join(outside, ", "), strings.Join(slices.Sorted(maps.Keys(dests)), ", "), in.StepID), "DrillUnsafe", nil)
}
