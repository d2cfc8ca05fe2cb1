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
	"k8s.io/apimachinery/pkg/runtime/schema"

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
	// so no Role can wait there: they are a ClusterRole bound nowhere,
	// which the drill guard binds to the worker in each namespace it makes
	// (kube.GuardDrillNamespaces), so they hold there and nowhere else.
	Drill []rbacv1.PolicyRule
	// DrillSpaces are the namespaces drills make in this cluster: the
	// destinations of the namespace mappings of every drill with a step
	// here (a drill of Velero restores alone declares no access in them,
	// yet its guard makes them and binds the drill role there).
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
					a.Namespace = ""
					g.Drill = addRule(g.Drill, a)
					continue
				}
				g.add(a)
			}
			if mode == workflows.ModeDrill {
				for _, ns := range d.Destinations() {
					g.DrillSpaces = appendOnce(g.DrillSpaces, ns)
				}
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
	r := a.Rule()
	i := slices.IndexFunc(rules, func(have rbacv1.PolicyRule) bool {
		return have.APIGroups[0] == a.Group && have.Resources[0] == r.Resources[0] && slices.Equal(have.ResourceNames, r.ResourceNames)
	})
	if i < 0 {
		r.Verbs = nil
		rules = append(rules, r)
		i = len(rules) - 1
	}
	if !slices.Contains(rules[i].Verbs, a.Verb) {
		rules[i].Verbs = append(rules[i].Verbs, a.Verb)
		slices.Sort(rules[i].Verbs)
	}
	return rules
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

// Objects are the grant as Kubernetes objects for its cluster, all named
// from name and bound to subject: when drills make namespaces here, first
// the admission policy that confines what the worker does with RoleBindings
// and drill labels (drillPolicy: printed first, so that it is in force
// before the rules it guards) and the drill's ClusterRole NAME-drill, bound
// nowhere; then a ClusterRole and its binding for the cluster-wide rules,
// and a Role and a RoleBinding in each namespace.
func (g *Grant) Objects(name string, subject Subject) []any {
	var out []any
	cluster := g.Cluster
	if len(g.DrillSpaces) > 0 {
		drill := name + "-drill"
		out = append(out, g.drillPolicy(name, drill, subject)...)
		tm, om := meta(rbacv1.SchemeGroupVersion, "ClusterRole", drill, "")
		om.Annotations = map[string]string{"lifeboat.dev/drill-namespaces": strings.Join(slices.Sorted(slices.Values(g.DrillSpaces)), ",")}
		out = append(out, &rbacv1.ClusterRole{TypeMeta: tm, ObjectMeta: om, Rules: sorted(g.Drill)})
		// The drill guard binds NAME-drill in each drill namespace it
		// makes (and reads a binding of that name it finds there); the
		// pre-check reads the role to tell what a drill may do there.
		cluster = append(slices.Clone(cluster),
			rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}},
			rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, ResourceNames: []string{drill}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, ResourceNames: []string{drill}, Verbs: []string{"bind", "get"}})
	}
	if len(cluster) > 0 {
		tm, om := meta(rbacv1.SchemeGroupVersion, "ClusterRole", name, "")
		out = append(out, &rbacv1.ClusterRole{TypeMeta: tm, ObjectMeta: om, Rules: sorted(cluster)})
		tm, om = meta(rbacv1.SchemeGroupVersion, "ClusterRoleBinding", name, "")
		out = append(out, &rbacv1.ClusterRoleBinding{TypeMeta: tm, ObjectMeta: om, Subjects: []rbacv1.Subject{subject},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
	}
	for _, ns := range slices.Sorted(maps.Keys(g.Namespaces)) {
		tm, om := meta(rbacv1.SchemeGroupVersion, "Role", name, ns)
		out = append(out, &rbacv1.Role{TypeMeta: tm, ObjectMeta: om, Rules: sorted(g.Namespaces[ns])})
		tm, om = meta(rbacv1.SchemeGroupVersion, "RoleBinding", name, ns)
		out = append(out, &rbacv1.RoleBinding{TypeMeta: tm, ObjectMeta: om, Subjects: []rbacv1.Subject{subject},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
	}
	return out
}

// meta is the type and object metadata of one of the grant's objects.
func meta(gv schema.GroupVersion, kind, name, ns string) (metav1.TypeMeta, metav1.ObjectMeta) {
	return metav1.TypeMeta{APIVersion: gv.String(), Kind: kind},
		metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "lifeboat-rbac"}}
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
