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
	// Name narrows it to one object (RBAC's resourceNames).
	Name string
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
	if a.Name != "" {
		s += " " + a.Name
	}
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
			Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name}}}
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
// declares (Accesses), asked of the API server.
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	out := map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{}
	for name, f := range a.Accesses() {
		out[name] = Precheck(a.Source, f)
	}
	return out
}

// Precheck is the pre-flight check of a declared action: each access it
// declares asked of the target's API server for the worker's identity.
func Precheck(src Source, f AccessFunc) func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	return func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
		sa, err := f(in, func(target string) (Mapper, error) {
			c, err := ClientFor(src, in, target)
			if err != nil {
				return nil, err
			}
			return c.Mapper, nil
		})
		if err != nil {
			if sa.Target == "" {
				return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
			}
			return []runbooks.CheckResult{runbooks.Fail("what the step will do in "+sa.Target+" is known", err.Error(), "fix the step's arguments or manifests")}
		}
		return MayDo(ctx, src, in, sa.Target, sa.Accesses...)
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

// unresolved is the failed check of a target the worker cannot resolve.
func unresolved(target string, err error) runbooks.CheckResult {
	return runbooks.Fail("target "+target+" resolves", err.Error(), "declare the target's kubeContext in the worker config (kube.contexts)")
}
