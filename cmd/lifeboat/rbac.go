package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/rbac"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// cmdRBAC prints the Roles and ClusterRoles the catalog's steps need, per
// cluster, from each action's declared accesses — what the pre-flight
// checks ask for — bound to the worker's identity.
func cmdRBAC(fs *pflag.FlagSet) runner {
	subject := fs.String("subject", "serviceaccount:lifeboat:lifeboat-worker", "the worker's identity: serviceaccount:NAMESPACE:NAME, user:NAME or group:NAME")
	name := fs.String("name", "lifeboat-worker", "name of the Roles, ClusterRoles and bindings")
	only := fs.String("context", "", "print only this kubeContext's objects (one cluster, for kubectl --context … apply -f -)")
	return func(_ context.Context, dirs []string) error {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		sub, err := rbac.ParseSubject(*subject)
		if err != nil {
			return err
		}
		cat, err := runbooks.LoadCatalog(dirs...)
		if err != nil {
			return err
		}
		// Kinds are mapped without a cluster: a kind's plural, cluster-scoped
		// when Kubernetes' own kind is.
		grants, err := rbac.ForCatalog(cat, activities.KubeAccesses(cfg.BaseDir), func(string) (kube.Mapper, error) { return kube.GuessMapper{}, nil })
		if err != nil {
			return err
		}
		var out strings.Builder
		fmt.Fprintf(&out, "# lifeboat rbac %s: what the worker needs in each cluster, from the steps' declared accesses (the pre-flight checks ask for the same).\n", strings.Join(dirs, " "))
		printed := 0
		for _, g := range grants {
			if *only != "" && g.KubeContext != *only {
				continue
			}
			printed++
			fmt.Fprintf(&out, "#\n# kubeContext %s — kubectl --context %s apply -f -\n#   for %s\n", g.KubeContext, g.KubeContext, strings.Join(g.Needed, ", "))
			if len(g.DrillSpaces) > 0 {
				fmt.Fprintf(&out, "#   drills: ClusterRole %s-drill is bound by each drill in the namespaces it makes (worker config kube.drillRole: %s-drill)\n", *name, *name)
				fmt.Fprintf(&out, "#   the ValidatingAdmissionPolicy %s-drill-scope below needs Kubernetes 1.30 or later: if it does not apply, apply nothing else (the worker may create RoleBindings; the policy confines them)\n", *name)
			}
			for _, u := range g.Unknown {
				fmt.Fprintf(&out, "#   not derived: %s\n", u)
			}
			if len(g.Unknown) > 0 && len(g.DrillSpaces) > 0 {
				out.WriteString("#   (a RoleBinding such a step applies outside the namespaces named here is also refused by the admission policy below: grant it by hand and add its namespace to the policy's list)\n")
			}
			for _, o := range g.Objects(*name, sub) {
				b, err := yaml.Marshal(o)
				if err != nil {
					return err
				}
				out.WriteString("---\n")
				out.WriteString(strings.Replace(string(b), "  creationTimestamp: null\n", "", 1))
			}
		}
		if printed == 0 {
			if *only != "" {
				return fmt.Errorf("no step of %s works in kubeContext %q", strings.Join(dirs, " "), *only)
			}
			out.WriteString("# no step of this catalog works in a Kubernetes cluster\n")
		}
		fmt.Print(out.String())
		return nil
	}
}
