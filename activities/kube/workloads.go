package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"

	"github.com/lifeboat-dr/lifeboat/activities/attempt"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// ScaleArgs are kube.scale's arguments.
type ScaleArgs struct {
	Target    string         `json:"target"`
	Namespace string         `json:"namespace"`
	Replicas  map[string]int `json:"replicas"`
}

// Scale sets replica counts of Deployments (or StatefulSets) through their
// scale subresource, returning the previous counts for a failback step.
// Setting the same count again is a no-op (idempotent).
func (a *Actions) Scale(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args ScaleArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	if err := GuardDrillNamespaces(ctx, c, in, "kube.scale", false, args.Namespace); err != nil {
		return runbooks.StepResult{}, err
	}
	// The replicas before the run: read for every workload before anything
	// changes, on the first attempt, and carried to retries (which would
	// otherwise read what the first attempt wrote).
	before := map[string]int{}
	if !attempt.Carried(ctx, &before) {
		for _, name := range sortedKeys(args.Replicas) {
			_, n, err := readScale(ctx, c, args.Namespace, name)
			if err != nil {
				return runbooks.StepResult{}, notFoundOr(err, args.Namespace, name)
			}
			before[name] = int(n)
		}
		attempt.Record(ctx, before)
	}
	previous := map[string]any{}
	var done []string
	for _, name := range sortedKeys(args.Replicas) {
		want := int32(args.Replicas[name])
		var kind string
		// Controllers write the same objects: re-read and retry on a conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var err error
			kind, _, err = scaleOne(ctx, c, args.Namespace, name, want)
			return err
		})
		if err != nil {
			return runbooks.StepResult{}, notFoundOr(err, args.Namespace, name)
		}
		previous[name] = before[name]
		done = append(done, fmt.Sprintf("%s/%s %d→%d", kind, name, before[name], want))
	}
	return runbooks.StepResult{Summary: "scaled " + strings.Join(done, ", "), Outputs: map[string]any{"previousReplicas": previous}}, nil
}

func notFoundOr(err error, ns, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("kube.scale: no Deployment or StatefulSet %s/%s (has the workload been restored yet?)", ns, name)
	}
	return classify("kube.scale", err)
}

// readScale reads one workload's kind and replicas.
func readScale(ctx context.Context, c *Client, ns, name string) (string, int32, error) {
	kind, sc, _, err := getScale(ctx, c, ns, name)
	if err != nil {
		return kind, 0, err
	}
	return kind, sc.Spec.Replicas, nil
}

// getScale finds a Deployment, else a StatefulSet, by name: its kind, scale
// and how to update it.
func getScale(ctx context.Context, c *Client, ns, name string) (string, *autoscalingv1.Scale, func(*autoscalingv1.Scale) error, error) {
	apps := c.Typed.AppsV1()
	sc, err := apps.Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return "deployment", sc, func(s *autoscalingv1.Scale) error {
			_, err := apps.Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
			return err
		}, err
	}
	sc, err = apps.StatefulSets(ns).GetScale(ctx, name, metav1.GetOptions{})
	return "statefulset", sc, func(s *autoscalingv1.Scale) error {
		_, err := apps.StatefulSets(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		return err
	}, err
}

// scaleOne sets one workload's replicas (Deployment first, then StatefulSet)
// and returns its kind and previous count; a same-count call changes nothing.
func scaleOne(ctx context.Context, c *Client, ns, name string, want int32) (string, int32, error) {
	kind, sc, update, err := getScale(ctx, c, ns, name)
	if err != nil {
		return kind, 0, err
	}
	before := sc.Spec.Replicas
	if before == want {
		return kind, before, nil
	}
	sc.Spec.Replicas = want
	return kind, before, update(sc)
}

// WaitArgs are kube.waitReady's arguments.
type WaitArgs struct {
	Target    string   `json:"target"`
	Namespace string   `json:"namespace"`
	Names     []string `json:"names"`
}

// The workload resources kube.waitReady watches.
var (
	deploymentsGVR  = appsv1.SchemeGroupVersion.WithResource("deployments")
	statefulSetsGVR = appsv1.SchemeGroupVersion.WithResource("statefulsets")
	daemonSetsGVR   = appsv1.SchemeGroupVersion.WithResource("daemonsets")
)

// WaitReady waits, by watching them, until the namespace's Deployments,
// StatefulSets and DaemonSets (or the named ones) are ready, heartbeating
// while it waits. When the step's timeout comes it fails naming what is not
// ready and why, pod by pod.
func (a *Actions) WaitReady(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args WaitArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := a.clientFor(in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	ctx, cancel := BeforeDeadline(ctx)
	defer cancel()
	start := time.Now()
	var ready, notReady []string
	var selectors []labels.Selector
	watched := []Watched{{GVR: deploymentsGVR, Namespace: args.Namespace}, {GVR: statefulSetsGVR, Namespace: args.Namespace}, {GVR: daemonSetsGVR, Namespace: args.Namespace}}
	err = WaitFor(ctx, c, watched, func(objs [][]*unstructured.Unstructured) (bool, error) {
		var err error
		ready, notReady, selectors, err = readiness(args, objs[0], objs[1], objs[2])
		return err == nil && len(notReady) == 0 && len(ready) > 0, err
	}, func() {
		heartbeat(ctx, fmt.Sprintf("%d ready, waiting for %s", len(ready), strings.Join(notReady, ", ")))
	})
	switch {
	case err == nil:
		return runbooks.StepResult{Summary: fmt.Sprintf("%d workload(s) ready in %s after %s", len(ready), args.Namespace, time.Since(start).Round(time.Millisecond)),
			Outputs: map[string]any{"ready": ready}}, nil
	case ctx.Err() == nil:
		return runbooks.StepResult{}, classify("kube.waitReady", err)
	case len(ready) == 0 && len(notReady) == 0:
		return runbooks.StepResult{}, fmt.Errorf("kube.waitReady: no workloads in %s after %s (has the restore run, or is the namespace right?)", args.Namespace, time.Since(start).Round(time.Second))
	}
	return runbooks.StepResult{}, fmt.Errorf("kube.waitReady: not ready after %s in %s: %s%s", time.Since(start).Round(time.Second),
		args.Namespace, strings.Join(notReady, ", "), a.podReport(context.Background(), c, args.Namespace, selectors))
}

// readiness sorts the watched workloads into ready and not ready (with their
// counts), and returns the selectors of the ones not ready.
func readiness(args WaitArgs, deps, sts, dss []*unstructured.Unstructured) (ready, notReady []string, selectors []labels.Selector, err error) {
	want := map[string]bool{}
	for _, n := range args.Names {
		want[n] = true
	}
	seen := map[string]bool{}
	add := func(kind, name string, ok bool, have, total int32, sel *metav1.LabelSelector) {
		if len(want) > 0 && !want[name] {
			return
		}
		seen[name] = true
		if ok {
			ready = append(ready, kind+"/"+name)
			return
		}
		notReady = append(notReady, fmt.Sprintf("%s/%s (%d/%d ready)", kind, name, have, total))
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			selectors = append(selectors, s)
		}
	}
	for _, u := range deps {
		d, err := As[appsv1.Deployment](u)
		if err != nil {
			return nil, nil, nil, err
		}
		want := replicas(d.Spec.Replicas)
		ok := d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want && d.Status.ReadyReplicas == want && d.Status.AvailableReplicas == want
		add("deployment", d.Name, ok, d.Status.ReadyReplicas, want, d.Spec.Selector)
	}
	for _, u := range sts {
		s, err := As[appsv1.StatefulSet](u)
		if err != nil {
			return nil, nil, nil, err
		}
		want := replicas(s.Spec.Replicas)
		add("statefulset", s.Name, s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == want, s.Status.ReadyReplicas, want, s.Spec.Selector)
	}
	for _, u := range dss {
		ds, err := As[appsv1.DaemonSet](u)
		if err != nil {
			return nil, nil, nil, err
		}
		st := ds.Status
		add("daemonset", ds.Name, st.ObservedGeneration >= ds.Generation && st.NumberReady == st.DesiredNumberScheduled, st.NumberReady, st.DesiredNumberScheduled, ds.Spec.Selector)
	}
	sort.Strings(ready)
	sort.Strings(notReady)
	for _, n := range args.Names {
		if !seen[n] {
			notReady = append(notReady, n+" (not found)")
		}
	}
	return ready, notReady, selectors, nil
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// podReport names the pods of not-ready workloads that are not ready, and why.
func (a *Actions) podReport(ctx context.Context, c *Client, ns string, selectors []labels.Selector) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pods, err := c.Typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var lines []string
	for _, p := range pods.Items {
		match := false
		for _, s := range selectors {
			match = match || s.Matches(labels.Set(p.Labels))
		}
		if !match || podReady(&p) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s", p.Name, podReason(&p)))
	}
	if len(lines) == 0 {
		return ""
	}
	return "; pods not ready: " + strings.Join(lines, "; ")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReason(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return fmt.Sprintf("%s (container %s, %d restarts)", w.Reason, cs.Name, cs.RestartCount)
		}
	}
	if p.Spec.NodeName == "" {
		return "Pending: not scheduled"
	}
	return string(p.Status.Phase)
}
