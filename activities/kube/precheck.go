package kube

import (
	"context"
	"fmt"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Access is one thing a step will do in a cluster.
type Access struct {
	Verb, Group, Resource, Subresource, Namespace string
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	s := fmt.Sprintf("may %s %s", a.Verb, r)
	if a.Namespace != "" {
		s += " in " + a.Namespace
	}
	return s
}

// MayDo checks, with one SelfSubjectAccessReview each, that the identity the
// worker uses for target may do every access. A target it cannot reach (or
// not resolve) fails one check saying so.
func MayDo(ctx context.Context, src Source, in runbooks.StepInput, target string, accesses ...Access) []runbooks.CheckResult {
	c, err := ClientFor(src, in, target)
	if err != nil {
		return []runbooks.CheckResult{unresolved(target, err)}
	}
	var out []runbooks.CheckResult
	for _, a := range accesses {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace}}}
		res, err := c.Typed.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		switch {
		case err != nil:
			return append(out, runbooks.Fail("target "+target+" reachable", fmt.Sprintf("cluster %s (context %s) did not answer: %v", target, c.Context, err),
				"check the kubeconfig of context "+c.Context+" and that the API server is up"))
		case !res.Status.Allowed:
			why := res.Status.Reason
			if why == "" {
				why = "no RBAC rule allows it"
			}
			out = append(out, runbooks.Fail(a.String(), fmt.Sprintf("the worker's identity in %s is denied (%s)", c.Context, why),
				fmt.Sprintf("grant the worker's identity %s (a Role/ClusterRole and binding), then run the check again", a.String())))
		default:
			out = append(out, runbooks.Pass(a.String(), "allowed in "+c.Context))
		}
	}
	return out
}

// Prechecks are the kube.* actions' pre-flight checks: the accesses each
// will use, asked of the API server (kube.apply reads its manifests to know
// the kinds it will patch).
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"kube.scale": accessCheck(a, func(x ScaleArgs) (string, []Access) {
			return x.Target, []Access{{Verb: "patch", Group: "apps", Resource: "deployments", Subresource: "scale", Namespace: x.Namespace}}
		}),
		"kube.waitReady": accessCheck(a, func(x WaitArgs) (string, []Access) {
			return x.Target, watching(x.Namespace, "apps", "deployments", "statefulsets", "daemonsets")
		}),
		"kube.deleteNamespace": accessCheck(a, func(x NamespaceArgs) (string, []Access) {
			return x.Target, append(watching("", "", "namespaces"), Access{Verb: "delete", Resource: "namespaces"})
		}),
		"kube.secretsPresent": accessCheck(a, func(x SecretsArgs) (string, []Access) {
			return x.Target, watching(x.Namespace, "", "secrets")
		}),
		"kube.pvcBound": accessCheck(a, func(x PVCArgs) (string, []Access) {
			return x.Target, watching(x.Namespace, "", "persistentvolumeclaims")
		}),
		"kube.crdsEstablished": accessCheck(a, func(x CRDArgs) (string, []Access) {
			return x.Target, watching("", "apiextensions.k8s.io", "customresourcedefinitions")
		}),
		"kube.canI": accessCheck(a, func(x CanIArgs) (string, []Access) {
			return x.Target, []Access{{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}}
		}),
		"kube.apply": a.applyPrecheck,
	}
}

// watching are the accesses a wait needs: list and watch on each resource
// (kube.WaitFor watches rather than polls).
func watching(namespace, group string, resources ...string) []Access {
	var out []Access
	for _, r := range resources {
		for _, verb := range []string{"list", "watch"} {
			out = append(out, Access{Verb: verb, Group: group, Resource: r, Namespace: namespace})
		}
	}
	return out
}

// accessCheck is the pre-check of an action whose accesses follow from its
// arguments (decoded afresh for every call).
func accessCheck[T any](a *Actions, accesses func(T) (string, []Access)) func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	return func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
		var args T
		if err := in.DecodeArgs(&args); err != nil {
			return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
		}
		target, list := accesses(args)
		return MayDo(ctx, a.Source, in, target, list...)
	}
}

// applyPrecheck: the manifests read, and the worker may patch every object
// they hold where it will land (a drill's mappings applied).
func (a *Actions) applyPrecheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	objs, err := a.readManifests(args.Path)
	if err != nil {
		return []runbooks.CheckResult{runbooks.Fail("manifests "+args.Path+" readable", err.Error(), "fix the manifests at "+args.Path)}
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return []runbooks.CheckResult{unresolved(args.Target, err)}
	}
	seen := map[Access]bool{}
	var list []Access
	for _, obj := range objs {
		remap(obj, in.NamespaceMappings)
		gvk := obj.GroupVersionKind()
		m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return []runbooks.CheckResult{runbooks.Fail("kind "+gvk.Kind+" known", fmt.Sprintf("%s in %s: %v", gvk.Kind, c.Context, err), "install its CRD first (an earlier step), or remove it from "+args.Path)}
		}
		acc := Access{Verb: "patch", Group: m.Resource.Group, Resource: m.Resource.Resource}
		if m.Scope.Name() == "namespace" {
			acc.Namespace = obj.GetNamespace()
			if acc.Namespace == "" {
				acc.Namespace = args.Namespace
			}
		}
		if !seen[acc] {
			seen[acc] = true
			list = append(list, acc)
		}
	}
	return MayDo(ctx, a.Source, in, args.Target, list...)
}

// unresolved is the failed check of a target the worker cannot resolve.
func unresolved(target string, err error) runbooks.CheckResult {
	return runbooks.Fail("target "+target+" resolves", err.Error(), "declare the target's kubeContext in the worker config (kube.contexts)")
}
