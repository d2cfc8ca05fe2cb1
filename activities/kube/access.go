package kube

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Mapper tells a kind's resource and scope: a cluster's discovery, or
// GuessMapper offline.
type Mapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// StepAccess is everything one step will do in one cluster.
type StepAccess struct {
	Target   string
	Accesses []Access
}

// AccessFunc declares what a step will do in its cluster, from its input
// (mode, drill mappings and arguments included). It is the one authority
// on an action's Kubernetes permissions: its pre-flight check asks the API
// server for exactly these, and `lifeboat rbac` grants exactly these. An
// action's implementation does nothing beyond them (a worker bound to
// `lifeboat rbac`'s output runs the examples on the rig).
type AccessFunc func(in runbooks.StepInput, mappers Mappers) (StepAccess, error)

// Mappers gives the Mapper of a target (kube.apply needs one to know what
// its manifests' kinds are).
type Mappers func(target string) (Mapper, error)

// Accesses are the kube.* actions' declarations.
func (a *Actions) Accesses() map[string]AccessFunc {
	return map[string]AccessFunc{
		"kube.scale": Declare(func(x ScaleArgs, in runbooks.StepInput) (string, []Access) {
			return x.Target, append(Verbs(x.Namespace, "apps", []string{"get", "update"}, "deployments/scale", "statefulsets/scale"),
				GuardAccesses(in, false, x.Namespace)...)
		}),
		"kube.waitReady": Declare(func(x WaitArgs, in runbooks.StepInput) (string, []Access) {
			return x.Target, append(watching(x.Namespace, "apps", "deployments", "statefulsets", "daemonsets"),
				Access{Verb: "list", Resource: "pods", Namespace: x.Namespace}) // which pods hold a workload back
		}),
		"kube.deleteNamespace": Declare(func(x NamespaceArgs, in runbooks.StepInput) (string, []Access) {
			out := append(watching("", "", "namespaces"), Access{Verb: "delete", Resource: "namespaces", Name: x.Namespace},
				Access{Verb: "get", Resource: "namespaces", Name: x.Namespace}) // its dry run: is it there?
			if in.Drill() { // waits for Velero restores still filling it
				out = append(out, Access{Verb: "list", Group: "velero.io", Resource: "restores"})
			}
			return x.Target, append(out, GuardAccesses(in, false, x.Namespace)...)
		}),
		"kube.secretsPresent": Declare(func(x SecretsArgs, _ runbooks.StepInput) (string, []Access) {
			return x.Target, watching(x.Namespace, "", "secrets")
		}),
		"kube.pvcBound": Declare(func(x PVCArgs, _ runbooks.StepInput) (string, []Access) {
			return x.Target, watching(x.Namespace, "", "persistentvolumeclaims")
		}),
		"kube.crdsEstablished": Declare(func(x CRDArgs, _ runbooks.StepInput) (string, []Access) {
			return x.Target, watching("", "apiextensions.k8s.io", "customresourcedefinitions")
		}),
		"kube.canI": Declare(func(x CanIArgs, _ runbooks.StepInput) (string, []Access) {
			return x.Target, []Access{{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}}
		}),
		"kube.apply": a.applyAccesses,
	}
}

// applyAccesses: the manifests read, get, create and patch (server-side apply) of
// every object where it will land (a drill's mappings applied); in a
// drill, the drill namespaces it lands in made and checked.
func (a *Actions) applyAccesses(in runbooks.StepInput, mappers Mappers) (StepAccess, error) {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return StepAccess{}, err
	}
	objs, err := a.readManifests(args.Path)
	if err != nil {
		return StepAccess{Target: args.Target}, err
	}
	m, err := mappers(args.Target)
	if err != nil {
		return StepAccess{Target: args.Target}, err
	}
	var out []Access
	for _, obj := range objs {
		remap(obj, in.NamespaceMappings)
		gvk := obj.GroupVersionKind()
		mapping, err := m.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return StepAccess{Target: args.Target}, fmt.Errorf("%s in %s: %w (install its CRD first, in an earlier step)", gvk.Kind, args.Path, err)
		}
		ns := ""
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if ns = obj.GetNamespace(); ns == "" {
				ns = args.Namespace
			}
			if ns == "" {
				ns = "default"
			}
		}
		out = append(out, Verbs(ns, mapping.Resource.Group, []string{"get", "create", "patch"}, mapping.Resource.Resource)...) // server-side apply creates what is not there
		out = append(out, grantsOf(obj, ns, objs)...)
	}
	out = append(out, GuardAccesses(in, true, touched(objs, args.Namespace)...)...)
	return StepAccess{Target: args.Target, Accesses: dedupe(out)}, nil
}

// grantsOf is what RBAC's escalation check wants of whoever applies a
// Role or ClusterRole (to hold every permission it grants) or a binding to
// a ClusterRole the manifests do not bring (bind on it).
func grantsOf(obj *unstructured.Unstructured, ns string, objs []*unstructured.Unstructured) []Access {
	if obj.GroupVersionKind().Group != rbacGroup {
		return nil
	}
	var out []Access
	switch obj.GetKind() {
	case "Role", "ClusterRole":
		rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
		for _, r := range rules {
			m, _ := r.(map[string]any)
			groups, verbsOf, resources, names := strs(m["apiGroups"]), strs(m["verbs"]), strs(m["resources"]), strs(m["resourceNames"])
			if slices.Contains(groups, "*") || slices.Contains(verbsOf, "*") || slices.Contains(resources, "*") {
				// Granting a wildcard needs every permission, or leave to
				// escalate this one role: the narrower of the two, and no
				// wildcard in the worker's own rules.
				scope, resource := ns, "roles"
				if obj.GetKind() == "ClusterRole" {
					scope, resource = "", "clusterroles"
				}
				out = append(out, Access{Verb: "escalate", Group: rbacGroup, Resource: resource, Name: obj.GetName(), Namespace: scope})
				continue
			}
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range groups {
				for _, res := range resources {
					for _, n := range names {
						for _, a := range Verbs(ns, g, verbsOf, res) {
							a.Name = n
							out = append(out, a)
						}
					}
				}
			}
		}
	case "RoleBinding", "ClusterRoleBinding":
		ref, _, _ := unstructured.NestedStringMap(obj.Object, "roleRef")
		brought := slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool {
			return o.GetKind() == ref["kind"] && o.GetName() == ref["name"]
		})
		if ref["kind"] == "ClusterRole" && !brought {
			out = append(out, Access{Verb: "bind", Group: rbacGroup, Resource: "clusterroles", Name: ref["name"], Namespace: ns})
		}
	}
	return out
}

const rbacGroup = "rbac.authorization.k8s.io"

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// GuardAccesses are what GuardDrillNamespaces does in a drill: read each
// namespace, and (create) make the missing ones.
func GuardAccesses(in runbooks.StepInput, create bool, namespaces ...string) []Access {
	if !in.Drill() || in.DrillRun == "" {
		return nil
	}
	var out []Access
	for _, ns := range namespaces {
		out = append(out, Access{Verb: "get", Resource: "namespaces", Name: ns})
	}
	if create && len(namespaces) > 0 {
		out = append(out, Access{Verb: "create", Resource: "namespaces"})
	}
	return out
}

// Verbs are each verb on each resource ("deployments/scale": a
// subresource) in a namespace ("": cluster-wide).
func Verbs(namespace, group string, vs []string, resources ...string) []Access {
	var out []Access
	for _, r := range resources {
		res, sub, _ := strings.Cut(r, "/")
		for _, v := range vs {
			out = append(out, Access{Verb: v, Group: group, Resource: res, Subresource: sub, Namespace: namespace})
		}
	}
	return out
}

// Declare makes the AccessFunc of an action whose accesses follow from
// its decoded arguments and its input.
func Declare[T any](accesses func(T, runbooks.StepInput) (string, []Access)) AccessFunc {
	return func(in runbooks.StepInput, _ Mappers) (StepAccess, error) {
		var args T
		if err := in.DecodeArgs(&args); err != nil {
			return StepAccess{}, err
		}
		target, list := accesses(args, in)
		return StepAccess{Target: target, Accesses: dedupe(list)}, nil
	}
}

func dedupe(list []Access) []Access {
	var out []Access
	for _, a := range list {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// GuessMapper maps kinds without a cluster: the resource is the kind's
// lower-case plural (meta.UnsafeGuessKindToResource) and a kind is
// cluster-scoped when Kubernetes' own is (namespaces, nodes, CRDs, RBAC's
// cluster kinds…); anything else is taken as namespaced.
type GuessMapper struct{}

var clusterKinds = []string{"Namespace", "Node", "PersistentVolume", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
	"StorageClass", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CSIDriver", "IngressClass"}

// RESTMapping implements Mapper.
func (GuessMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	v := ""
	if len(versions) > 0 {
		v = versions[0]
	}
	plural, _ := meta.UnsafeGuessKindToResource(gk.WithVersion(v))
	scope := meta.RESTScopeNamespace
	if slices.Contains(clusterKinds, gk.Kind) {
		scope = meta.RESTScopeRoot
	}
	return &meta.RESTMapping{Resource: plural, GroupVersionKind: gk.WithVersion(v), Scope: scope}, nil
}
