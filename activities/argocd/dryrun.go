package argocd

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRun is argocd.sync without syncing: the Application's resources Argo
// CD reports out of sync (or missing), which a sync would create or change.
func (a *Actions) DryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args SyncArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	ns := cmp.Or(args.ArgoCDNamespace, "argocd")
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return nil, err
	}
	app, err := c.Dynamic.Resource(applicationGVR).Namespace(ns).Get(ctx, args.App, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("argocd.sync: Application %s: %w", args.App, err)
	}
	sync, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
	resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	var out []runbooks.Change
	for _, r := range resources {
		m, _ := r.(map[string]any)
		if st, _ := m["status"].(string); st == "Synced" {
			continue
		}
		what := strings.ToLower(fmt.Sprint(m["kind"])) + " " + fmt.Sprint(m["namespace"]) + "/" + fmt.Sprint(m["name"])
		before := "out of sync"
		if st, _ := m["status"].(string); st == "" || st == "Unknown" {
			before = "not compared yet"
		}
		out = append(out, runbooks.Change{What: what, Before: before, After: "as in git"})
	}
	if len(out) == 0 {
		out = append(out, runbooks.Change{What: "Application " + args.App, Before: cmp.Or(sync, "unknown"), After: "synced",
			Note: "Argo CD lists no resource out of sync"})
	}
	return out, nil
}
