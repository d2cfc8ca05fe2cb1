// Package argocd implements argocd.sync through the Application resource of
// the target cluster, as `argocd app sync` + `argocd app wait --health` do.
package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

var applicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// Actions implements argocd.sync.
type Actions struct {
	Source kube.Source
}

// SyncArgs are argocd.sync's arguments.
type SyncArgs struct {
	Target          string `json:"target"`
	App             string `json:"app"`
	ArgoCDNamespace string `json:"argocdNamespace"`
	Revision        string `json:"revision"`
	Prune           bool   `json:"prune"`
}

// Sync requests a sync of the Application and waits until it is Synced and
// Healthy. A failed sync operation fails the step at once; an application
// still Degraded or Progressing when the step's timeout comes fails it naming
// the unhealthy resources. Syncing a synced application again is harmless.
func (a *Actions) Sync(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args SyncArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	ns := args.ArgoCDNamespace
	if ns == "" {
		ns = "argocd"
	}
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	apps := c.Dynamic.Resource(applicationGVR).Namespace(ns)
	current, err := apps.Get(ctx, args.App, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("argocd.sync: no Application %s in namespace %s of the target cluster (is Argo CD bootstrapped there?)", args.App, ns), "ApplicationNotFound", nil)
	}
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("argocd.sync: reading %s: %w", args.App, err)
	}
	// In a drill the Application must deploy into a namespace of this
	// drill (created labelled for it when missing, as Argo CD's
	// CreateNamespace would create it unlabelled): its destination is read
	// from the Application itself, whatever the drill overrode.
	if dest, _, _ := unstructured.NestedString(current.Object, "spec", "destination", "namespace"); in.Drill() {
		if dest == "" {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"argocd.sync refused in a drill: Application %s names no destination namespace, so the drill cannot be checked to stay away from production; give the drill's Application spec.destination.namespace", args.App), "DrillScope", nil)
		}
		if err := kube.GuardDrillNamespaces(ctx, c, in, "argocd.sync", true, dest); err != nil {
			return runbooks.StepResult{}, err
		}
	}
	sync := map[string]any{"prune": args.Prune}
	if args.Revision != "" {
		sync["revision"] = args.Revision
	}
	// As Argo CD's API server does for `argocd app sync`: a manual sync
	// carries the Application's own sync options (CreateNamespace=true, …).
	if opts, ok, _ := unstructured.NestedStringSlice(current.Object, "spec", "syncPolicy", "syncOptions"); ok {
		sync["syncOptions"] = opts
	}
	patch, _ := json.Marshal(map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "lifeboat (" + in.WorkflowID + ")"}, "sync": sync}})
	requested := time.Now()
	if _, err := apps.Patch(ctx, args.App, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return runbooks.StepResult{}, fmt.Errorf("argocd.sync: requesting a sync of %s: %w", args.App, err)
	}
	ctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	var last *unstructured.Unstructured
	var result runbooks.StepResult
	var progress string
	err = kube.WaitFor(ctx, c, []kube.Watched{{GVR: applicationGVR, Namespace: ns, Name: args.App}}, func(objs [][]*unstructured.Unstructured) (bool, error) {
		if len(objs[0]) == 0 {
			return false, nil
		}
		app := objs[0][0]
		last = app
		_, pending := app.Object["operation"]
		phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
		msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
		syncStatus, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
		health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
		revision, _, _ := unstructured.NestedString(app.Object, "status", "sync", "revision")
		progress = fmt.Sprintf("%s: operation %s, %s, %s", args.App, phase, syncStatus, health)
		if pending {
			return false, nil
		}
		switch {
		case phase == "Failed" || phase == "Error":
			return true, temporal.NewNonRetryableApplicationError(fmt.Sprintf("argocd.sync: sync of %s %s: %s%s; %s — fix the manifests in git (or the cluster) and retry the step",
				args.App, phase, msg, failedResources(app), describe(app)), "SyncFailed", nil)
		case phase == "Succeeded" && syncStatus == "Synced" && health == "Healthy":
			result = runbooks.StepResult{Summary: fmt.Sprintf("%s Synced and Healthy at %s after %s", args.App, revision, time.Since(requested).Round(time.Millisecond)),
				Outputs: map[string]any{"revision": revision, "health": health}}
			return true, nil
		}
		return false, nil
	}, func() { kube.Heartbeat(ctx, progress) })
	switch {
	case err == nil:
		return result, nil
	case ctx.Err() == nil:
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return runbooks.StepResult{}, err
		}
		return runbooks.StepResult{}, fmt.Errorf("argocd.sync: watching %s: %w", args.App, err)
	}
	return runbooks.StepResult{}, fmt.Errorf("argocd.sync: %s not Synced and Healthy after %s: %s%s", args.App, time.Since(requested).Round(time.Second), describe(last), liveConditions(c, last))
}

// failedResources names the resources the sync operation could not apply,
// with Argo CD's message for each.
func failedResources(app *unstructured.Unstructured) string {
	results, _, _ := unstructured.NestedSlice(app.Object, "status", "operationState", "syncResult", "resources")
	var failed []string
	for _, r := range results {
		m, _ := r.(map[string]any)
		if st, _ := m["status"].(string); st != "" && st != "Synced" && st != "Pruned" {
			failed = append(failed, fmt.Sprintf("%s %s/%s %s: %s", m["kind"], m["namespace"], m["name"], st, m["message"]))
		}
	}
	if len(failed) == 0 {
		return ""
	}
	return " (" + strings.Join(failed, "; ") + ")"
}

// describe names the application's state, its resources out of sync and its
// unhealthy resources.
func describe(app *unstructured.Unstructured) string {
	if app == nil {
		return "the Application could not be read"
	}
	syncStatus, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
	health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
	out := fmt.Sprintf("sync %s, health %s", syncStatus, health)
	resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	var bad, outOfSync []string
	for _, r := range resources {
		m, _ := r.(map[string]any)
		if st, _ := m["status"].(string); st == "OutOfSync" {
			outOfSync = append(outOfSync, fmt.Sprintf("%s %s/%s", m["kind"], m["namespace"], m["name"]))
		}
		h, _, _ := unstructured.NestedString(m, "health", "status")
		if h != "" && h != "Healthy" {
			msg, _, _ := unstructured.NestedString(m, "health", "message")
			bad = append(bad, fmt.Sprintf("%s %s/%s %s (%s)", m["kind"], m["namespace"], m["name"], h, msg))
		}
	}
	if len(outOfSync) > 0 {
		out += "; out of sync: " + strings.Join(outOfSync, ", ")
	}
	if len(bad) > 0 {
		out += "; unhealthy: " + strings.Join(bad, "; ")
	}
	return out
}

// liveConditions reads the Application's resources from the cluster and
// names the conditions that hold them back (Available False, Progressing
// False with ProgressDeadlineExceeded, …). Argo CD 3 keeps resource health in
// its cache, not in the Application's status (unless
// controller.resource.health.persist is set), so the status alone cannot
// say which resource is unhealthy.
func liveConditions(c *kube.Client, app *unstructured.Unstructured) string {
	if app == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	var held []string
	for _, r := range resources {
		m, _ := r.(map[string]any)
		group, _ := m["group"].(string)
		version, _ := m["version"].(string)
		kind, _ := m["kind"].(string)
		ns, _ := m["namespace"].(string)
		name, _ := m["name"].(string)
		mapping, err := c.Mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind}, version)
		if err != nil {
			continue
		}
		obj, err := c.Dynamic.Resource(mapping.Resource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, cond := range conds {
			cm, _ := cond.(map[string]any)
			typ, _ := cm["type"].(string)
			status, _ := cm["status"].(string)
			if (status == "False" && typ != "Paused") || (status == "True" && strings.HasSuffix(typ, "Failure")) {
				held = append(held, fmt.Sprintf("%s %s/%s: %s %s (%v: %v)", kind, ns, name, typ, status, cm["reason"], cm["message"]))
			}
		}
	}
	if len(held) == 0 {
		return ""
	}
	return "; held back by " + strings.Join(held, "; ")
}
