// Package rbac derives the Kubernetes permissions a catalog of runbooks
// needs — per cluster (kubeContext), per namespace, drill namespaces
// included — from each step's declared accesses (kube.AccessFunc: the same
// declarations the pre-flight checks ask the API server about). No
// wildcard: every rule names its group, resources and verbs.
package rbac

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Subject is who the roles are bound to: the worker's identity.
type Subject = rbacv1.Subject

// Grant is what one cluster needs: cluster-wide rules and rules per
// namespace, and the runbooks and modes that need them.
type Grant struct {
	KubeContext string
	Cluster     []rbacv1.PolicyRule
	Namespaces  map[string][]rbacv1.PolicyRule
	// Drill holds the rules drills need in their own namespaces. Those do
	// not exist until a drill makes them (and its teardown deletes them),
	// so no Role can wait there: they are granted cluster-wide, in a
	// ClusterRole of their own. What keeps a drill inside its namespaces
	// is the drill guard every changing action runs (a namespace is
	// touched only when it carries this drill's label).
	Drill       []rbacv1.PolicyRule
	DrillSpaces []string
	Needed      []string // "RUNBOOK (failover, drill)"
	// Unknown lists what could not be derived (a namespace only known when
	// the run gets there): granted by hand, or the pre-check names it.
	Unknown []string
}

// modes are the ways a catalog's steps run: failover (and the dry runs
// and failbacks that read the same objects), and drill with its
// overrides, namespace mappings and teardown.
var modes = []string{workflows.ModeFailover, workflows.ModeDrill}

// ForCatalog derives each cluster's grant from every runbook of cat.
func ForCatalog(cat *runbooks.Catalog, accesses map[string]kube.AccessFunc, mappers kube.Mappers) ([]*Grant, error) {
	grants := map[string]*Grant{}
	for _, name := range cat.Names() {
		e, err := cat.Get(name)
		if err != nil {
			return nil, err
		}
		if err := addRunbook(grants, e.Runbook, accesses, mappers); err != nil {
			return nil, fmt.Errorf("runbook %s: %w", name, err)
		}
	}
	var out []*Grant
	for _, ctx := range slices.Sorted(maps.Keys(grants)) {
		out = append(out, grants[ctx])
	}
	return out, nil
}

func addRunbook(grants map[string]*Grant, rb *runbooks.Runbook, accesses map[string]kube.AccessFunc, mappers kube.Mappers) error {
	for _, mode := range modes {
		d := rb.Spec.Drill
		if mode == workflows.ModeDrill && d == nil {
			continue
		}
		steps := rb.AllSteps()
		if mode == workflows.ModeDrill {
			steps = append(steps, rb.TeardownSteps()...)
		} else if rb.Spec.Failback != nil {
			for _, l := range rb.Spec.Failback.Ordered() {
				for i, s := range l.Steps {
					steps = append(steps, runbooks.LayeredStep{Layer: l.Name, Index: i, Step: s})
				}
			}
		}
		for _, ls := range steps {
			f, ok := accesses[ls.Step.Action]
			if !ok || (mode == workflows.ModeDrill && slices.Contains(d.Skip, ls.Step.ID)) {
				continue
			}
			in := runbooks.StepInput{Runbook: rb.Metadata.Name, Mode: mode, StepID: ls.Step.ID, Args: ls.Step.With, Targets: rb.Spec.Targets}
			if mode == workflows.ModeDrill {
				in.Args = maps.Clone(d.Args(ls.Step))
				if ls.Layer != runbooks.TeardownLayer {
					d.MapNamespaces(in.Args)
				}
				in.NamespaceMappings, in.DrillRun = d.NamespaceMappings, "rbac"
				in.DrillOverridden = slices.Sorted(maps.Keys(d.With[ls.Step.ID]))
			}
			sa, err := f(in, mappers)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", ls.Path(), mode, err)
			}
			ctx := sa.Target
			if t, ok := rb.Spec.Targets[sa.Target]; ok && t.KubeContext != "" {
				ctx = t.KubeContext
			}
			g := grants[ctx]
			if g == nil {
				g = &Grant{KubeContext: ctx, Namespaces: map[string][]rbacv1.PolicyRule{}}
				grants[ctx] = g
			}
			for _, a := range sa.Accesses {
				if runbooks.HasRefs(a.Namespace) || runbooks.HasRefs(a.Name) {
					g.Unknown = appendOnce(g.Unknown, fmt.Sprintf("%s %s: %s (known only when the run gets there)", rb.Metadata.Name, ls.Path(), a))
					continue
				}
				if mode == workflows.ModeDrill && a.Namespace != "" && slices.Contains(d.Destinations(), a.Namespace) {
					g.DrillSpaces = appendOnce(g.DrillSpaces, a.Namespace)
					a.Namespace = ""
					g.Drill = addRule(g.Drill, a)
					continue
				}
				g.add(a)
			}
			g.Needed = appendOnce(g.Needed, rb.Metadata.Name+" ("+mode+")")
		}
	}
	return nil
}

// add puts one access into its namespace's rules, or the cluster's.
func (g *Grant) add(a kube.Access) {
	if a.Namespace == "" {
		g.Cluster = addRule(g.Cluster, a)
		return
	}
	g.Namespaces[a.Namespace] = addRule(g.Namespaces[a.Namespace], a)
}

// addRule puts one access into a rule with the same group, resource and name.
func addRule(rules []rbacv1.PolicyRule, a kube.Access) []rbacv1.PolicyRule {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	i := slices.IndexFunc(rules, func(r rbacv1.PolicyRule) bool {
		return r.APIGroups[0] == a.Group && r.Resources[0] == res && slices.Equal(r.ResourceNames, names(a.Name))
	})
	if i < 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{a.Group}, Resources: []string{res}, ResourceNames: names(a.Name)})
		i = len(rules) - 1
	}
	if !slices.Contains(rules[i].Verbs, a.Verb) {
		rules[i].Verbs = append(rules[i].Verbs, a.Verb)
		slices.Sort(rules[i].Verbs)
	}
	return rules
}

func names(n string) []string {
	if n == "" {
		return nil
	}
	return []string{n}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// sorted orders rules by group, resource, names.
func sorted(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := slices.Clone(rules)
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int {
		return strings.Compare(a.APIGroups[0]+"/"+a.Resources[0]+"/"+strings.Join(a.ResourceNames, ","), b.APIGroups[0]+"/"+b.Resources[0]+"/"+strings.Join(b.ResourceNames, ","))
	})
	return out
}

// Objects are the grant as Kubernetes objects for its cluster: a
// ClusterRole and its binding for the cluster-wide rules, a Role and a
// RoleBinding in each namespace, all named name and bound to subject.
func (g *Grant) Objects(name string, subject Subject) []any {
	meta := func(kind, ns string) (metav1.TypeMeta, metav1.ObjectMeta) {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind},
			metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "lifeboat-rbac"}}
	}
	var out []any
	if len(g.Cluster) > 0 {
		tm, om := meta("ClusterRole", "")
		out = append(out, &rbacv1.ClusterRole{TypeMeta: tm, ObjectMeta: om, Rules: sorted(g.Cluster)})
		tm, om = meta("ClusterRoleBinding", "")
		out = append(out, &rbacv1.ClusterRoleBinding{TypeMeta: tm, ObjectMeta: om, Subjects: []rbacv1.Subject{subject},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}})
	}
	if len(g.Drill) > 0 {
		drill := name + "-drill"
		tm, om := meta("ClusterRole", "")
		om.Name = drill
		om.Annotations = map[string]string{"lifeboat.dev/drill-namespaces": strings.Join(g.DrillSpaces, ",")}
		out = append(out, &rbacv1.ClusterRole{TypeMeta: tm, ObjectMeta: om, Rules: sorted(g.Drill)})
		tm, om = meta("ClusterRoleBinding", "")
		om.Name = drill
		out = append(out, &rbacv1.ClusterRoleBinding{TypeMeta: tm, ObjectMeta: om, Subjects: []rbacv1.Subject{subject},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: drill}})
	}
	for _, ns := range slices.Sorted(maps.Keys(g.Namespaces)) {
		tm, om := meta("Role", ns)
		out = append(out, &rbacv1.Role{TypeMeta: tm, ObjectMeta: om, Rules: sorted(g.Namespaces[ns])})
		tm, om = meta("RoleBinding", ns)
		out = append(out, &rbacv1.RoleBinding{TypeMeta: tm, ObjectMeta: om, Subjects: []rbacv1.Subject{subject},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}})
	}
	return out
}

// ParseSubject reads serviceaccount:NAMESPACE:NAME, user:NAME or group:NAME.
func ParseSubject(s string) (Subject, error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 3 && parts[0] == "serviceaccount":
		return Subject{Kind: "ServiceAccount", Namespace: parts[1], Name: parts[2]}, nil
	case len(parts) == 2 && parts[0] == "user":
		return Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: parts[1]}, nil
	case len(parts) == 2 && parts[0] == "group":
		return Subject{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: parts[1]}, nil
	}
	return Subject{}, fmt.Errorf("subject %q: use serviceaccount:NAMESPACE:NAME, user:NAME or group:NAME", s)
}
