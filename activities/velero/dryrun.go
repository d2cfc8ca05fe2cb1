package velero

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRuns are the velero.* actions that change the cluster, run without
// changing it: velero.restore names the backup it would restore and every
// resource it would create, from the backup's own resource list.
func (a *Actions) DryRuns() map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error) {
	return map[string]func(context.Context, runbooks.StepInput) ([]runbooks.Change, error){
		"velero.restore": a.restoreDryRun,
	}
}

func (a *Actions) restoreDryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args RestoreArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return nil, err
	}
	name := args.Backup
	if args.Schedule != "" {
		latest := in
		latest.Args = map[string]any{"target": args.Target, "schedule": args.Schedule, "veleroNamespace": vns, "maxAge": "87600h"}
		res, err := a.LatestBackup(ctx, latest)
		if err != nil {
			return nil, err
		}
		name, _ = res.Outputs["backup"].(string)
	}
	b, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("velero.restore: backup %s: %w", name, err)
	}
	items, _, _ := unstructured.NestedInt64(b.Object, "status", "progress", "totalItems")
	mapping := mappings(args, in.NamespaceMappings)
	into := func(ns string) string {
		if to, ok := mapping[ns].(string); ok {
			return to
		}
		return ns
	}
	var nss []string
	for _, ns := range args.Namespaces {
		nss = append(nss, fmt.Sprintf("%s → %s", ns, into(ns)))
	}
	out := []runbooks.Change{{What: "restore of backup " + name, After: fmt.Sprintf("%d item(s) of %s", items, strings.Join(nss, ", "))}}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list map[string][]string // "apps/v1/Deployment" → ["ns/name", …]
	if err := download(dctx, c, vns, "BackupResourceList", name, &list); err != nil {
		out[0].Note = fmt.Sprintf("the backup's resource list could not be read (%v): velero backup describe %s --details lists it", err, name)
		return out, nil
	}
	wanted := map[string]bool{}
	for _, ns := range args.Namespaces {
		wanted[ns] = true
	}
	kinds := make([]string, 0, len(list))
	for k := range list {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		byNS := map[string][]string{}
		for _, ref := range list[kind] {
			ns, obj, namespaced := strings.Cut(ref, "/")
			if !namespaced {
				continue // cluster-scoped: Velero restores those only when they are needed
			}
			if len(wanted) == 0 || wanted[ns] {
				byNS[into(ns)] = append(byNS[into(ns)], obj)
			}
		}
		for _, ns := range sortedNamespaces(byNS) {
			out = append(out, runbooks.Change{What: kind[strings.LastIndex(kind, "/")+1:] + " in " + ns, After: "restored: " + strings.Join(byNS[ns], ", ")})
		}
	}
	return out, nil
}

func sortedNamespaces(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
