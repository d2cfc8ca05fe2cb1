package testsuite

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ApplicationGVR is Argo CD's Application resource.
var ApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// ArgoCDNamespace is where Applications live.
const ArgoCDNamespace = "argocd"

// ArgoCDSim stands in for the Argo CD application controller (which needs a
// git server): each Application's desired state is registered with
// SetManifests (the simulator's "repository"). A requested sync (the
// Application's operation field, as `argocd app sync` sets it) applies those
// Deployments into the destination namespace, moves operationState Running →
// Succeeded and sync to Synced, and reports health from the real cluster:
// Healthy when every Deployment is ready, Degraded when a pod crash-loops,
// Progressing otherwise — with per-resource health as Argo CD does.
type ArgoCDSim struct {
	dyn    dynamic.Interface
	typed  kubernetes.Interface
	mu     sync.Mutex
	repo   map[string][]*unstructured.Unstructured
	cancel context.CancelFunc
	done   chan struct{}
}

// StartArgoCDSim installs the Application CRD and starts the simulator.
func StartArgoCDSim(ctx context.Context, cfg *rest.Config) (*ArgoCDSim, error) {
	dyn, typed, err := simClients(ctx, cfg, "argocd.yaml", ArgoCDNamespace)
	if err != nil {
		return nil, err
	}
	loop, cancel := context.WithCancel(context.Background())
	s := &ArgoCDSim{dyn: dyn, typed: typed, repo: map[string][]*unstructured.Unstructured{}, cancel: cancel, done: make(chan struct{})}
	go s.loop(loop)
	return s, nil
}

// Stop ends the simulation.
func (s *ArgoCDSim) Stop() {
	s.cancel()
	<-s.done
}

// AddApplication creates an Application deploying Deployments into namespace.
func (s *ArgoCDSim) AddApplication(ctx context.Context, name, namespace string, deployments ...*unstructured.Unstructured) error {
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": name, "namespace": ArgoCDNamespace},
		"spec": map[string]any{"project": "default",
			"source":      map[string]any{"repoURL": "https://git.example.com/platform/apps.git", "path": name, "targetRevision": "main"},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": namespace}},
		"status": map[string]any{"sync": map[string]any{"status": "OutOfSync"}, "health": map[string]any{"status": "Missing"}},
	}}
	if _, err := s.dyn.Resource(ApplicationGVR).Namespace(ArgoCDNamespace).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo[name] = deployments
	return nil
}

func (s *ArgoCDSim) loop(ctx context.Context) {
	defer close(s.done)
	for {
		if list, err := s.dyn.Resource(ApplicationGVR).Namespace(ArgoCDNamespace).List(ctx, metav1.ListOptions{}); err == nil {
			for i := range list.Items {
				s.reconcile(ctx, &list.Items[i])
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (s *ArgoCDSim) reconcile(ctx context.Context, app *unstructured.Unstructured) {
	ns, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
	s.mu.Lock()
	manifests := s.repo[app.GetName()]
	s.mu.Unlock()
	if op, ok := app.Object["operation"].(map[string]any); ok {
		revision, _, _ := unstructured.NestedString(op, "sync", "revision")
		if revision == "" {
			revision = "4f2a9c1"
		}
		delete(app.Object, "operation")
		phase, msg := "Succeeded", "successfully synced (all tasks run)"
		if err := s.sync(ctx, ns, manifests); err != nil {
			phase, msg = "Failed", err.Error()
		}
		_ = unstructured.SetNestedMap(app.Object, map[string]any{"phase": phase, "message": msg,
			"startedAt": time.Now().UTC().Format(time.RFC3339), "finishedAt": time.Now().UTC().Format(time.RFC3339),
			"syncResult": map[string]any{"revision": revision}}, "status", "operationState")
		if phase == "Succeeded" {
			_ = unstructured.SetNestedMap(app.Object, map[string]any{"status": "Synced", "revision": revision}, "status", "sync")
		}
	}
	health, resources := s.health(ctx, ns, manifests)
	_ = unstructured.SetNestedField(app.Object, health, "status", "health", "status")
	_ = unstructured.SetNestedSlice(app.Object, resources, "status", "resources")
	_, _ = s.dyn.Resource(ApplicationGVR).Namespace(ArgoCDNamespace).Update(ctx, app, metav1.UpdateOptions{})
}

func (s *ArgoCDSim) sync(ctx context.Context, ns string, manifests []*unstructured.Unstructured) error {
	if _, err := s.typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, m := range manifests {
		o := m.DeepCopy()
		o.SetNamespace(ns)
		gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		if _, err := s.dyn.Resource(gvr).Namespace(ns).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "argocd-controller", Force: true}); err != nil {
			return fmt.Errorf("one or more objects failed to apply: %v", err)
		}
	}
	return nil
}

// health reads the synced Deployments' real state.
func (s *ArgoCDSim) health(ctx context.Context, ns string, manifests []*unstructured.Unstructured) (string, []any) {
	overall := "Healthy"
	var resources []any
	for _, m := range manifests {
		h, msg := "Missing", "not deployed"
		if d, err := s.typed.AppsV1().Deployments(ns).Get(ctx, m.GetName(), metav1.GetOptions{}); err == nil {
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			switch {
			case d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want:
				h, msg = "Healthy", ""
			case s.crashLooping(ctx, ns, d.Spec.Selector.MatchLabels):
				h, msg = "Degraded", fmt.Sprintf("Deployment %q exceeded its progress deadline: pods in CrashLoopBackOff", d.Name)
			default:
				h, msg = "Progressing", fmt.Sprintf("Waiting for rollout to finish: %d of %d updated replicas are available...", d.Status.ReadyReplicas, want)
			}
		}
		resources = append(resources, map[string]any{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns, "name": m.GetName(),
			"status": "Synced", "health": map[string]any{"status": h, "message": msg}})
		overall = worse(overall, h)
	}
	return overall, resources
}

func (s *ArgoCDSim) crashLooping(ctx context.Context, ns string, labels map[string]string) bool {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})
	pods, err := s.typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return false
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
				return true
			}
		}
	}
	return false
}

// worse orders health as Argo CD does: Degraded > Missing > Progressing > Healthy.
func worse(a, b string) string {
	rank := map[string]int{"Healthy": 0, "Progressing": 1, "Missing": 2, "Degraded": 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
