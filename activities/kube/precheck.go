package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/auth/rbac/validation"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Access is one thing a step will do in a cluster.
type Access struct {
	Verb, Group, Resource, Subresource, Namespace string
	// Name narrows it to one object (RBAC's resourceNames).
	Name string
}

// Rule is the RBAC rule that grants exactly a.
func (a Access) Rule() rbacv1.PolicyRule {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	r := rbacv1.PolicyRule{Verbs: []string{a.Verb}, APIGroups: []string{a.Group}, Resources: []string{res}}
	if a.Name != "" {
		r.ResourceNames = []string{a.Name}
	}
	return r
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
// not resolve) fails one check saying so. In a drill, an access denied in
// one of the drill's namespaces is checked against the ClusterRole the
// drill guard binds there when it makes the namespace (viaDrillRole).
func MayDo(ctx context.Context, src Source, in runbooks.StepInput, target string, accesses ...Access) []runbooks.CheckResult {
	c, err := ClientFor(src, in, target)
	if err != nil {
		return []runbooks.CheckResult{unresolved(target, err)}
	}
	var dests []string
	if in.Drill() && in.DrillRun != "" && c.DrillRole != "" {
		dests = DrillDestinations(in)
	}
	drill := &drillRoleCheck{c: c}
	var out []runbooks.CheckResult
	for _, a := range accesses {
		allowed, why, err := c.review(ctx, a)
		switch {
		case err != nil:
			return append(out, runbooks.Fail("target "+target+" reachable", fmt.Sprintf("cluster %s (context %s) did not answer: %v", target, c.Context, err),
				"check the kubeconfig of context "+c.Context+" and that the API server is up"))
		case allowed:
			out = append(out, runbooks.Pass(a.String(), "allowed in "+c.Context))
		case slices.Contains(dests, a.Namespace):
			out = append(out, drill.check(ctx, a))
		default:
			out = append(out, denied(c, a, why))
		}
	}
	return out
}

// review asks the API server whether the worker's identity may do a.
func (c *Client) review(ctx context.Context, a Access) (allowed bool, why string, err error) {
	review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
		Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name}}}
	res, err := c.Typed.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return res.Status.Allowed, cmp.Or(res.Status.Reason, "no RBAC rule allows it"), nil
}

// drillRoleCheck answers for an access in a drill namespace, which is not
// granted until the drill makes the namespace and binds Client.DrillRole
// in it: the ClusterRole must cover the access (RBAC's own comparison, the
// one its escalation check uses), the worker must be allowed to make that
// binding, and the admission policy that keeps the binding to drill
// namespaces must be in force (policyInForce). The ClusterRole and the
// policy are looked at once per check.
type drillRoleCheck struct {
	c      *Client
	role   *rbacv1.ClusterRole
	policy error // why the policy is not in force, nil when it is
	loaded bool
}

func (d *drillRoleCheck) check(ctx context.Context, a Access) runbooks.CheckResult {
	name, ns := d.c.DrillRole, a.Namespace
	var err error
	if !d.loaded {
		d.role, err = d.c.Typed.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			d.policy = policyInForce(ctx, d.c, ns)
		}
		d.loaded = err == nil
	}
	fix := drillRoleFix(d.c) + ", then run the check again"
	switch {
	case err != nil:
		return runbooks.Fail(a.String(), fmt.Sprintf("%s is a drill namespace: its permissions come from ClusterRole %s, bound there when the drill makes it, and that ClusterRole could not be read in %s: %v", ns, name, d.c.Context, err), fix)
	case d.policy != nil:
		return runbooks.Fail(a.String(), fmt.Sprintf("%s is a drill namespace, granted by binding ClusterRole %s there, and nothing keeps that binding to drill namespaces: %v", ns, name, d.policy), fix+" (its ValidatingAdmissionPolicy needs Kubernetes 1.30 or later)")
	}
	if ok, _ := validation.Covers(d.role.Rules, []rbacv1.PolicyRule{a.Rule()}); !ok {
		return runbooks.Fail(a.String(), fmt.Sprintf("%s is a drill namespace and ClusterRole %s, which the drill binds there, does not grant it", ns, name), fix+" (the catalog needs more than when they were applied)")
	}
	for _, need := range []Access{{Verb: "create", Group: rbacv1.GroupName, Resource: "rolebindings", Namespace: ns}, {Verb: "bind", Group: rbacv1.GroupName, Resource: "clusterroles", Name: name}} {
		allowed, why, err := d.c.review(ctx, need)
		if err == nil && !allowed {
			err = fmt.Errorf("denied: %s", why)
		}
		if err != nil {
			return runbooks.Fail(a.String(), fmt.Sprintf("%s is a drill namespace, granted by binding ClusterRole %s there when the drill makes it, and the worker is not allowed to: %s (%v)", ns, name, need, err), fix)
		}
	}
	return runbooks.Pass(a.String(), fmt.Sprintf("allowed in %s through ClusterRole %s, which the drill binds in %s when it makes it", d.c.Context, name, ns))
}

// policyInForce asks the API server to dry-run what the admission policy
// of lifeboat rbac must refuse: binding the drill role to the worker in a
// namespace that is no drill's (default, or kube-system when default is
// the drill's). Allowed means the policy is missing (or not yet loaded):
// the worker could then bind the drill role anywhere.
func policyInForce(ctx context.Context, c *Client, drillNS string) error {
	me, err := c.Self(ctx)
	if err != nil {
		return err
	}
	ns := "default"
	if drillNS == ns {
		ns = "kube-system"
	}
	probe := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: c.DrillRole + "-probe"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: c.DrillRole}, Subjects: []rbacv1.Subject{me}}
	_, err = c.Typed.RbacV1().RoleBindings(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return fmt.Errorf("a dry run of binding it in namespace %s was allowed in %s: its admission policy (%s-scope) is not in force", ns, c.Context, c.DrillRole)
	case strings.Contains(err.Error(), c.DrillRole+"-scope"):
		return nil // refused by the policy
	}
	return fmt.Errorf("a dry run of binding it in namespace %s, which its admission policy (%s-scope) must refuse, failed otherwise in %s: %w", ns, c.DrillRole, c.Context, err)
}

// denied is the failed check of an access the API server refused.
func denied(c *Client, a Access, why string) runbooks.CheckResult {
	return runbooks.Fail(a.String(), fmt.Sprintf("the worker's identity in %s is denied (%s)", c.Context, why),
		fmt.Sprintf("grant the worker's identity %s (a Role/ClusterRole and binding), then run the check again", a.String()))
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
