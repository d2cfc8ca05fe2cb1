// Package argocd implements argocd.sync through the Application resource of
// the target cluster, as `argocd app sync` + `argocd app wait --health` do.
package argocd

import (
	"context"
	"encoding/json"
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
	// Poll is how often the wait looks again (default 1s).
	Poll time.Duration
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
	sync := map[string]any{"prune": args.Prune}
	if args.Revision != "" {
		sync["revision"] = args.Revision
	}
	patch, _ := json.Marshal(map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "lifeboat (" + in.WorkflowID + ")"}, "sync": sync}})
	requested := time.Now()
	if _, err := apps.Patch(ctx, args.App, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("argocd.sync: no Application %s in namespace %s of the target cluster (is Argo CD bootstrapped there?)", args.App, ns), "ApplicationNotFound", nil)
		}
		return runbooks.StepResult{}, fmt.Errorf("argocd.sync: requesting a sync of %s: %w", args.App, err)
	}
	ctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	poll := kube.PollEvery(a.Poll)
	var last *unstructured.Unstructured
	for {
		app, err := apps.Get(ctx, args.App, metav1.GetOptions{})
		if err == nil {
			last = app
			_, pending := app.Object["operation"]
			phase, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "phase")
			msg, _, _ := unstructured.NestedString(app.Object, "status", "operationState", "message")
			syncStatus, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
			revision, _, _ := unstructured.NestedString(app.Object, "status", "sync", "revision")
			if !pending {
				switch {
				case phase == "Failed" || phase == "Error":
					return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("argocd.sync: sync of %s %s: %s — fix the manifests in git (or the cluster) and retry the step", args.App, phase, msg), "SyncFailed", nil)
				case phase == "Succeeded" && syncStatus == "Synced" && health == "Healthy":
					return runbooks.StepResult{Summary: fmt.Sprintf("%s Synced and Healthy at %s after %s", args.App, revision, time.Since(requested).Round(time.Second)),
						Outputs: map[string]any{"revision": revision, "health": health}}, nil
				}
			}
			kube.Heartbeat(ctx, fmt.Sprintf("%s: operation %s, %s, %s", args.App, phase, syncStatus, health))
		} else if ctx.Err() == nil && !apierrors.IsNotFound(err) {
			return runbooks.StepResult{}, fmt.Errorf("argocd.sync: reading %s: %w", args.App, err)
		}
		select {
		case <-ctx.Done():
			return runbooks.StepResult{}, fmt.Errorf("argocd.sync: %s not Synced and Healthy after %s: %s", args.App, time.Since(requested).Round(time.Second), describe(last))
		case <-time.After(poll):
		}
	}
}

// describe names the application's state and its unhealthy resources.
func describe(app *unstructured.Unstructured) string {
	if app == nil {
		return "the Application could not be read"
	}
	syncStatus, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
	health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
	out := fmt.Sprintf("sync %s, health %s", syncStatus, health)
	resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	var bad []string
	for _, r := range resources {
		m, _ := r.(map[string]any)
		h, _, _ := unstructured.NestedString(m, "health", "status")
		if h != "" && h != "Healthy" {
			msg, _, _ := unstructured.NestedString(m, "health", "message")
			bad = append(bad, fmt.Sprintf("%s %s/%s %s (%s)", m["kind"], m["namespace"], m["name"], h, msg))
		}
	}
	if len(bad) > 0 {
		out += "; unhealthy: " + strings.Join(bad, "; ")
	}
	return out
}
