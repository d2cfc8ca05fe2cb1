package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/velero"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// The bars measured on the local rig (real kube-apiserver, Velero, Argo CD):
// how fast a wait reacts to the state it waits for, and how much of example
// (a)'s failover is the engine's own time.

// pollEvery is the baseline: how every wait looked before they watched.
const pollEvery = time.Second

// reaction measures, for a Deployment becoming Available and a Velero
// Restore turning Completed, the time from the moment the API server shows
// the state (seen by the bench's own watch) to the moment the step's
// activity function returns — and, on the same changes, the time a 1 s poll
// (the old waits) took to notice.
func (b *bench) reaction(ctx context.Context, stack *testsuite.Stack, samples int) {
	ka := &kube.Actions{Source: &kube.KubeconfigSource{Default: stack.Kubeconfig}}
	va := &velero.Actions{Source: &kube.KubeconfigSource{Default: stack.Kubeconfig}}
	typed, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
	check(err)
	dyn, err := dynamic.NewForConfig(stack.DR.Kube.RESTConfig())
	check(err)
	targets := map[string]runbooks.Target{"dr": {KubeContext: stack.DR.Kube.Context}}
	const ns = "bench-reaction"
	_, err = typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	check(err)
	zero := int32(0)
	_, err = typed.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example/api:1"}}}}}}, metav1.CreateOptions{})
	check(err)
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	available := func(u *unstructured.Unstructured) bool {
		n, _, _ := unstructured.NestedInt64(u.Object, "status", "availableReplicas")
		return n == 1
	}

	var watchD, pollD []time.Duration
	for i := 0; i < samples; i++ {
		scale(ctx, typed, ns, 0)
		seen := observe(ctx, dyn, deployments, ns, "api", available)
		in := runbooks.StepInput{WorkflowID: "bench", StepID: "ready", Targets: targets, Args: map[string]any{"target": "dr", "namespace": ns, "names": []any{"api"}}}
		w, p := race(ctx, func(ctx context.Context) error { _, err := ka.WaitReady(ctx, in); return err },
			func(ctx context.Context) bool { return getIs(ctx, dyn, deployments, ns, "api", available) },
			func() { scale(ctx, typed, ns, 1) })
		at := <-seen
		watchD, pollD = append(watchD, w.Sub(at)), append(pollD, p.Sub(at))
	}
	reactionReport("reaction: Deployment", "a Deployment turning Available", watchD, pollD)

	restores := schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}
	completed := func(u *unstructured.Unstructured) bool {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return phase == "Completed"
	}
	watchD, pollD = nil, nil
	for i := 0; i < samples; i++ {
		in := runbooks.StepInput{WorkflowID: fmt.Sprintf("bench-restore-%d", i), RunID: "r", StepID: "restore", Mode: workflows.ModeDrill,
			NamespaceMappings: map[string]string{"case-management": fmt.Sprintf("bench-restore-%d", i)}, Targets: targets,
			Args: map[string]any{"target": "dr", "backup": stack.Backups[len(stack.Backups)-1].Name, "namespaces": []any{"case-management"}}}
		name := velero.RestoreName(in.WorkflowID, in.RunID, in.StepID, 0)
		seen := observe(ctx, dyn, restores, "velero", name, completed)
		w, p := race(ctx, func(ctx context.Context) error { _, err := va.Restore(ctx, in); return err },
			func(ctx context.Context) bool { return getIs(ctx, dyn, restores, "velero", name, completed) }, func() {})
		at := <-seen
		watchD, pollD = append(watchD, w.Sub(at)), append(pollD, p.Sub(at))
	}
	reactionReport("reaction: Velero Restore", "a Velero Restore turning Completed", watchD, pollD)
}

func reactionReport(name, what string, watch, poll []time.Duration) {
	for i := range watch {
		// Both watches get the same event: the step may return a hair before
		// the bench's own watch has seen it.
		watch[i] = max(watch[i], 0)
	}
	pw, pp := p95(watch), p95(poll)
	report(name, fmt.Sprintf("p95 %s from the API server showing %s to the step's activity returning (watch), vs %s for a %s poll on the same changes (%d samples; ratio = p95 / 100 ms)",
		pw.Round(100*time.Microsecond), what, pp.Round(time.Millisecond), pollEvery, len(watch)), float64(pw)/float64(100*time.Millisecond), 1)
}

// race runs the step's wait (an activity function, which watches) and the
// old wait (a poll every pollEvery) side by side, then calls change; it
// returns when each of them saw the state.
func race(ctx context.Context, wait func(context.Context) error, is func(context.Context) bool, change func()) (watched, polled time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		check(wait(ctx))
		watched = time.Now()
	}()
	go func() {
		defer wg.Done()
		for !is(ctx) {
			select {
			case <-ctx.Done():
				fail("the poll never saw the state")
			case <-time.After(pollEvery):
			}
		}
		polled = time.Now()
	}()
	// Both have looked once; then the change comes at a random moment of the
	// poll's second, as a real one would.
	time.Sleep(300*time.Millisecond + time.Duration(rand.Int64N(int64(pollEvery))))
	change()
	wg.Wait()
	return watched, polled
}

// observe reports when the API server first shows the object in the state
// (a watch of the bench's own, started before the change).
func observe(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, state func(*unstructured.Unstructured) bool) <-chan time.Time {
	out := make(chan time.Time, 1)
	w, err := dyn.Resource(gvr).Namespace(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	check(err)
	go func() {
		defer w.Stop()
		for e := range w.ResultChan() {
			if u, ok := e.Object.(*unstructured.Unstructured); ok && state(u) {
				out <- time.Now()
				return
			}
		}
	}()
	return out
}

func getIs(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name string, state func(*unstructured.Unstructured) bool) bool {
	u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	return err == nil && state(u)
}

// scale sets the bench Deployment's replicas and waits until it shows them.
func scale(ctx context.Context, c kubernetes.Interface, ns string, n int32) {
	check(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := c.AppsV1().Deployments(ns).GetScale(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = n
		_, err = c.AppsV1().Deployments(ns).UpdateScale(ctx, "api", s, metav1.UpdateOptions{})
		return err
	}))
	for {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
		check(err)
		if d.Status.AvailableReplicas == n && d.Status.Replicas == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// orchestration loses the rig's primary region (SIGKILL of its cluster,
// Velero and database), runs example (a) as a cross-cluster failover into
// the DR cluster at once, approving its gate at once, and measures the time
// in which no activity ran and no person was awaited (the engine's own
// time: workflow tasks, scheduling) over the run's actual RTO — and the
// time from the primary's death to the first step. The wait for a person
// is the gap that ends with an accepted approval.
func (b *bench) orchestration(ctx context.Context, srv *testsuite.DevServer, stack *testsuite.Stack) {
	example, err := os.ReadFile("runbooks/examples/case-management-region-failover.yaml")
	check(err)
	catalog, err := os.MkdirTemp("", "lifeboat-bench-rig")
	check(err)
	check(os.WriteFile(filepath.Join(catalog, "a.yaml"), stack.Runbook(example), 0o644))
	check(os.Setenv("BENCH_CF_TOKEN", testsuite.PlantedCFToken))
	cfg := worker.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue = srv.HostPort, "lifeboat-bench-rig"
	cfg.Catalog, cfg.EvidenceDir, cfg.BaseDir = []string{catalog}, filepath.Join(catalog, "evidence"), stack.BaseDir
	cfg.Kube.Kubeconfig, cfg.Terraform.Binary = stack.Kubeconfig, stack.Terraform
	cfg.Cloudflare = worker.CloudflareConfig{TokenEnv: "BENCH_CF_TOKEN", BaseURL: stack.Cloudflare.URL}
	cfg.Secrets.Dirs, cfg.Postgres = []string{stack.SecretsDir}, stack.DB.Instances()
	check(cfg.CheckWorker())
	c, err := worker.Dial(cfg)
	check(err)
	defer c.Close()
	w := worker.New(c, cfg, worker.Registry(cfg), sdkworker.Options{})
	check(w.Start())
	defer w.Stop()
	st := starter.New(c, cfg.Temporal.TaskQueue)
	stack.LoseRegion()
	died := stack.Primary.LostAt
	run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeFailover,
		RequestedBy: "carol", Reason: "bench: ca-central-1 is down", DeclaredAt: &died})
	check(err)
	for {
		s, err := st.Status(ctx, run.WorkflowID)
		if err == nil && s.State == workflows.StateAwaitingApproval {
			break
		}
		if err == nil && s.Finished {
			fail("the failover ended before its gate: %s", s.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = st.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "shift-traffic", By: "bob", Comment: "bench"})
	check(err)
	ev, err := st.Wait(ctx, run.WorkflowID)
	check(err)
	if ev.Outcome != "succeeded" {
		fail("example (a)'s failover %s: %s %v", run.WorkflowID, ev.Outcome, ev.FailedChecks)
	}
	// The actual RTO is the evidence's: declared → recovered (the last step
	// of the main layers ended); what follows (evidence, notifications) is
	// not part of it.
	total := time.Duration(ev.RTOActual)
	if os.Getenv("BENCH_TIMELINE") != "" {
		for _, s := range ev.Steps {
			fmt.Printf("  step %s: %s, %s, %d attempt(s)\n", s.ID, s.State, time.Duration(s.Duration).Round(100*time.Microsecond), s.Attempts)
		}
	}
	var first time.Time
	for _, s := range ev.Steps {
		if s.Started != nil && (first.IsZero() || s.Started.Before(first)) {
			first = *s.Started
		}
	}
	report("death to first step", fmt.Sprintf("from the SIGKILL of the primary region to the failover's first step in the DR cluster: %s (the start request, the worker's resolve and %d pre-flight checks; ratio = that / 10 s)",
		first.Sub(died).Round(time.Millisecond), len(ev.Prechecks)), float64(first.Sub(died))/float64(10*time.Second), 1)
	h, err := st.History(ctx, run.WorkflowID)
	check(err)
	idle, gaps, said := engineTime(h, ev.DeclaredAt, ev.DeclaredAt.Add(total))
	floor := b.bareFloor(ctx, gaps, ev.DeclaredAt.Add(total))
	report("orchestration share", fmt.Sprintf("example (a)'s cross-cluster failover on the rig (primary lost, restored in DR): %s of its actual RTO %s with no activity running and no person awaited (largest gaps: %s); lifeboat's own workflow code for the whole run takes %s (a replay of its history); the floor — a bare workflow with the same %d boundaries and busy stretches, on the same server right after — spends %s (%.2f %% of this RTO; lifeboat %.2f× it)",
		idle.Round(time.Millisecond), total.Round(time.Millisecond), said, replayTime(h, 5).Round(100*time.Microsecond),
		len(gaps), floor.Round(time.Millisecond), float64(floor)/float64(total)*100, float64(idle)/float64(floor)), float64(idle)/float64(total)/0.01, 1)
}

// bareFloor is what any Temporal workflow on regular activities spends
// between them here: a bare workflow runs one activity per busy stretch of
// lifeboat's run (the time between its gaps, up to end), each sleeping that
// stretch's length, one after the other on the same server, so it meets the
// same number of boundaries at the same pace (a faster chain would also meet
// the dev server's transfer-queue pacing, see docs/benchmarks.md). Its idle time is
// measured the way lifeboat's is.
func (b *bench) bareFloor(ctx context.Context, gaps []span, end time.Time) time.Duration {
	sleeps := make([]time.Duration, len(gaps))
	for i, g := range gaps {
		next := end
		if i+1 < len(gaps) {
			next = gaps[i+1].from
		}
		sleeps[i] = next.Sub(g.to)
	}
	we, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "lifeboat-bench"}, "BareChain", sleeps)
	check(err)
	check(we.Get(ctx, nil))
	h, err := b.st.History(ctx, we.GetID())
	check(err)
	var from, to time.Time
	for _, e := range h.Events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if from.IsZero() {
				from = e.GetEventTime().AsTime() // as lifeboat's clock starts
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			to = e.GetEventTime().AsTime()
		}
	}
	idle, _, _ := engineTime(h, from, to)
	return idle
}

// span is a stretch of time.
type span struct {
	from, to time.Time
}

// engineTime reads a run's history h: the time in [from, to] (the actual
// RTO: declared → ended) covered by no running activity (started → closed)
// and by no wait for a person (the gap that ends with an accepted update),
// the gaps in time order, and the largest of them, each named by the event
// that ended it.
func engineTime(h *historypb.History, from, to time.Time) (time.Duration, []span, string) {
	var busy []span
	started := map[int64]time.Time{}
	var lastBusy time.Time
	type event struct {
		at   time.Time
		what string
	}
	var events []event
	for _, e := range h.Events {
		at := e.GetEventTime().AsTime()
		events = append(events, event{at, strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_")})
		var closed int64
		switch {
		case e.GetActivityTaskStartedEventAttributes() != nil:
			started[e.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = at
		case e.GetActivityTaskCompletedEventAttributes() != nil:
			closed = e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
		case e.GetActivityTaskFailedEventAttributes() != nil:
			closed = e.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
		case e.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil:
			busy = append(busy, span{lastBusy, at}) // a person was awaited
		}
		if closed != 0 {
			busy = append(busy, span{started[closed], at})
		}
		for _, s := range busy {
			if s.to.After(lastBusy) {
				lastBusy = s.to
			}
		}
	}
	if os.Getenv("BENCH_TIMELINE") != "" {
		for _, e := range events {
			fmt.Printf("  %s %s\n", e.at.Sub(from).Round(100*time.Microsecond), e.what)
		}
	}
	// Walk [from, to] and collect what no busy span covers.
	sort.Slice(busy, func(i, j int) bool { return busy[i].from.Before(busy[j].from) })
	var gaps []span
	cursor := from
	for _, s := range busy {
		if s.from.After(cursor) {
			gaps = append(gaps, span{cursor, minTime(s.from, to)})
		}
		if s.to.After(cursor) {
			cursor = s.to
		}
		if !cursor.Before(to) {
			break
		}
	}
	if cursor.Before(to) {
		gaps = append(gaps, span{cursor, to})
	}
	var idle time.Duration
	by := map[string]time.Duration{}
	for _, g := range gaps {
		idle += max(g.to.Sub(g.from), 0)
		// Each piece of the gap goes to the event that ended it: what the
		// engine was waiting for then.
		at := g.from
		for _, e := range events {
			if !e.at.After(at) {
				continue
			}
			end := minTime(e.at, g.to)
			by[waitedFor(e.what)] += end.Sub(at)
			if at = end; !at.Before(g.to) {
				break
			}
		}
	}
	largest := slices.Clone(gaps)
	sort.Slice(largest, func(i, j int) bool { return largest[i].to.Sub(largest[i].from) > largest[j].to.Sub(largest[j].from) })
	var named []string
	for _, g := range largest[:min(3, len(largest))] {
		what := ""
		for _, e := range events {
			if !e.at.Before(g.to) {
				what = e.what
				break
			}
		}
		named = append(named, fmt.Sprintf("%s before %s", g.to.Sub(g.from).Round(100*time.Microsecond), strings.ToLower(what)))
	}
	var parts []string
	for what, d := range by {
		parts = append(parts, fmt.Sprintf("%s %s", d.Round(100*time.Microsecond), what))
	}
	sort.Strings(parts)
	return idle, gaps, strings.Join(named, ", ") + "; by what it waited for: " + strings.Join(parts, ", ")
}

// waitedFor names what the engine waited for before a history event.
func waitedFor(event string) string {
	switch event {
	case "WorkflowTaskScheduled", "WorkflowTaskStarted":
		return "Temporal handing the worker a workflow task"
	case "WorkflowTaskCompleted", "UpsertWorkflowSearchAttributes", "ActivityTaskScheduled", "TimerStarted", "TimerCanceled", "MarkerRecorded":
		return "the workflow task (lifeboat's code, the SDK, the server's commit)"
	case "ActivityTaskStarted":
		return "an activity's dispatch"
	}
	return "other (" + event + ")"
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
