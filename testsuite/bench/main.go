// Command bench is `make bench`: it measures lifeboat against the bars of
// DESIGN §8 on a real Temporal dev server and prints each figure as a ratio
// next to its bar, against a baseline measured in the same run (a bare
// Temporal workflow doing the same activities), so a noisy machine moves
// both sides together. Kill -9 of a worker mid-step is covered by the
// integration test TestDurabilityOnTheDevServerAndACluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

func main() { os.Exit(runBench()) }

// runBench measures every bar and returns the exit code: 1 when one is missed.
func runBench() int {
	steps := flag.Int("steps", 50, "no-op steps for the overhead bar")
	drills := flag.Int("drills", 200, "concurrent drills")
	clusterDrills := flag.Int("cluster-drills", 1000, "concurrent drills on the real Temporal server")
	samples := flag.Int("samples", 20, "approval samples")
	reactions := flag.Int("reactions", 10, "reaction-latency samples per kind of wait")
	flag.Parse()
	ctx := context.Background()
	srv, err := testsuite.StartTemporal(ctx, testsuite.DevOptions{})
	check(err)
	defer func() { _ = srv.Stop() }()
	cfg := worker.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue, cfg.EvidenceDir = srv.HostPort, "lifeboat-bench", os.TempDir()
	// The bench drills the runbooks it generates as catalog text: each is
	// written into the catalog before its runs (a drill of inline text the
	// catalog lacks is only a re-enactment's).
	cfg.Catalog = []string{benchCatalog()}
	c, err := worker.Dial(cfg)
	check(err)
	defer c.Close()
	b := &bench{c: c, st: starter.New(c, cfg.Temporal.TaskQueue), catalog: cfg.Catalog[0], started: map[string]chan time.Time{}}
	w := worker.New(c, cfg, activities.NewWithFuncs(map[string]activities.StepFunc{
		activities.HTTPCheck: b.noop, activities.EvidenceStore: b.noop}), sdkworker.Options{MaxConcurrentActivityExecutionSize: 400})
	w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: "BareWorkflow"})
	w.RegisterActivityWithOptions(b.bareNoop, activity.RegisterOptions{Name: "noop"})
	w.RegisterWorkflowWithOptions(bareChain, workflow.RegisterOptions{Name: "BareChain"})
	w.RegisterActivityWithOptions(bareSleep, activity.RegisterOptions{Name: "sleep"})
	check(w.Start())
	defer w.Stop()

	fmt.Println("lifeboat bench — the speed and memory bars (ratio: lower is better; pass when ratio <= bar)")
	if os.Getenv("BENCH_ONLY_CLUSTER") != "" {
		check(testsuite.EnsureRig(ctx, os.Stdout))
		b.cluster(ctx, *clusterDrills)
		if failed {
			return 1
		}
		return 0
	}
	if os.Getenv("BENCH_ONLY_REPLAY") == "" && os.Getenv("BENCH_ONLY_RIG") == "" {
		b.overhead(ctx, *steps)
		b.parallel(ctx)
		b.approval(ctx, *samples)
		b.concurrent(ctx, *drills)
	}
	if os.Getenv("BENCH_ONLY_RIG") == "" {
		b.replayAndValidate(ctx)
	}
	if os.Getenv("BENCH_ONLY_REPLAY") == "" {
		// The rig's bars: its parts build once into the cache (make demo or
		// make test builds them too).
		check(testsuite.EnsureRig(ctx, os.Stdout))
		dir, err := os.MkdirTemp("", "lifeboat-bench-stack")
		check(err)
		stack, err := testsuite.StartStack(ctx, dir)
		check(err)
		defer stack.Stop()
		b.reaction(ctx, stack, *reactions)
		b.orchestration(ctx, srv, stack)
		stack.Stop()
		b.cluster(ctx, *clusterDrills)
	}
	if failed {
		return 1
	}
	return 0
}

type bench struct {
	c       client.Client
	st      *starter.Starter
	catalog string // the worker's catalog directory
	mu      sync.Mutex
	started map[string]chan time.Time // step id → when its activity started
}

// noop is every lifeboat action here: steps named sleep-* sleep 1s; a step
// whose id is being watched reports when it started.
func (b *bench) noop(_ context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	now := time.Now()
	b.mu.Lock()
	ch := b.started[in.WorkflowID+"/"+in.StepID]
	b.mu.Unlock()
	if ch != nil {
		ch <- now
	}
	if strings.HasPrefix(in.StepID, "sleep-") {
		time.Sleep(time.Second)
	}
	return runbooks.StepResult{Summary: "no-op"}, nil
}

func (b *bench) bareNoop(_ context.Context, key string) error {
	now := time.Now()
	b.mu.Lock()
	ch := b.started[key]
	b.mu.Unlock()
	if ch != nil {
		ch <- now
	}
	return nil
}

// bareChain runs one activity per duration, one after the other, each
// sleeping that long.
func bareChain(ctx workflow.Context, sleeps []time.Duration) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for _, d := range sleeps {
		if err := workflow.ExecuteActivity(ctx, "sleep", d).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func bareSleep(d time.Duration) error {
	time.Sleep(d)
	return nil
}

// bareWorkflow runs n no-op activities one after the other; with n < 0 it
// first waits for the "go" signal, then runs one.
func bareWorkflow(ctx workflow.Context, n int, key string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if n < 0 {
		workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
		n = 1
	}
	for i := 0; i < n; i++ {
		if err := workflow.ExecuteActivity(ctx, "noop", key).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) watch(key string) chan time.Time {
	ch := make(chan time.Time, 1)
	b.mu.Lock()
	b.started[key] = ch
	b.mu.Unlock()
	return ch
}

// request starts a run of yaml, a generated runbook, after writing it into
// the worker's catalog under its name: reviewed text, as a drill needs.
func (b *bench) request(yaml, mode string) workflows.Request {
	rb, err := runbooks.Parse([]byte(yaml), "bench runbook")
	check(err)
	check(os.WriteFile(filepath.Join(b.catalog, rb.Metadata.Name+".yaml"), []byte(yaml), 0o644))
	return workflows.Request{InlineRunbook: yaml, Mode: mode, RequestedBy: "bench"}
}

// benchCatalog writes a catalog holding a runbook of every name the bench
// drills inline.
func benchCatalog() string {
	dir, err := os.MkdirTemp("", "lifeboat-bench-catalog")
	check(err)
	for _, name := range []string{"overhead", "parallel", "approval", "concurrent", "thousand"} {
		check(os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(book(name, 1, "step-", false, false)), 0o644))
	}
	return dir
}

// book builds a runbook of n steps in the workloads layer; chained steps need
// the one before.
func book(name string, n int, prefix string, chained bool, gate bool) string {
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: %s, version: 1}\nspec:\n  scope: application\n  objectives: {rto: 4h}\n  approvers: {ic: [alice, bob]}\n  layers:\n    workloads:\n", name)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&s, "      - id: %s%d\n        action: http.check\n        with: {url: \"http://127.0.0.1:1/\"}\n", prefix, i)
		if chained && i > 0 {
			fmt.Fprintf(&s, "        needs: [%s%d]\n", prefix, i-1)
		}
		if gate {
			s.WriteString("        approval: {from: [ic]}\n")
		}
	}
	return s.String()
}

func (b *bench) runLifeboat(ctx context.Context, yaml, mode string) (record.Evidence, time.Duration) {
	t0 := time.Now()
	run, err := b.st.Start(ctx, b.request(yaml, mode))
	check(err)
	ev, err := b.st.Wait(ctx, run.WorkflowID)
	check(err)
	if ev.Outcome != "succeeded" {
		fail("run %s: %s %v", run.WorkflowID, ev.Outcome, ev.FailedChecks)
	}
	return ev, time.Since(t0)
}

func (b *bench) runBare(ctx context.Context, n int) time.Duration {
	t0 := time.Now()
	we, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "lifeboat-bench"}, "BareWorkflow", n, "")
	check(err)
	check(we.Get(ctx, nil))
	return time.Since(t0)
}

func (b *bench) overhead(ctx context.Context, n int) {
	yaml := book("overhead", n, "step-", true, false)
	b.runLifeboat(ctx, yaml, "drill") // warm up both paths
	b.runBare(ctx, n)
	var lb, bare []time.Duration
	for i := 0; i < 3; i++ {
		_, d := b.runLifeboat(ctx, yaml, "drill")
		lb = append(lb, d)
		bare = append(bare, b.runBare(ctx, n))
	}
	ml, mb := median(lb), median(bare)
	report("per-step overhead", fmt.Sprintf("%d sequential no-op steps: lifeboat %s vs bare workflow %s", n, ml, mb), float64(ml)/float64(mb), 1.15)
}

func (b *bench) parallel(ctx context.Context) {
	ev, _ := b.runLifeboat(ctx, book("parallel", 20, "sleep-", false, false), "drill")
	var first, last time.Time
	for _, s := range ev.Steps {
		if s.Started != nil && (first.IsZero() || s.Started.Before(first)) {
			first = *s.Started
		}
		if s.Ended != nil && s.Ended.After(last) {
			last = *s.Ended
		}
	}
	d := last.Sub(first)
	report("parallel steps", fmt.Sprintf("20 independent 1s steps in one layer took %s (critical path 1s)", d.Round(time.Millisecond)), d.Seconds()/1.0, 1.3)
}

func (b *bench) approval(ctx context.Context, n int) {
	var gated, bare []time.Duration
	for i := 0; i < n; i++ {
		run, err := b.st.Start(ctx, b.request(book("approval", 1, "gated-", false, true), "drill"))
		check(err)
		ch := b.watch(run.WorkflowID + "/gated-0")
		for {
			s, err := b.st.Status(ctx, run.WorkflowID)
			if err == nil && s.State == workflows.StateAwaitingApproval {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		sentAt := time.Now()
		_, err = b.st.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "gated-0", By: "alice"})
		check(err)
		gated = append(gated, (<-ch).Sub(sentAt))
		_, err = b.st.Wait(ctx, run.WorkflowID)
		check(err)

		key := fmt.Sprintf("bare-%d", i)
		bch := b.watch(key)
		we, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "lifeboat-bench"}, "BareWorkflow", -1, key)
		check(err)
		time.Sleep(50 * time.Millisecond)
		sent := time.Now()
		check(b.c.SignalWorkflow(ctx, we.GetID(), "", "go", nil))
		bare = append(bare, (<-bch).Sub(sent))
		check(we.Get(ctx, nil))
	}
	// Both measured from the moment the client sends: the approval update (its
	// validator, handler, then the gated step's activity) vs a signal that
	// makes a bare workflow schedule one activity.
	pg, pb := p95(gated), p95(bare)
	report("approval → step start", fmt.Sprintf("p95 %s update sent → gated step started vs %s signal sent → bare activity started (%d samples)", pg, pb, n), float64(pg)/float64(pb), 2)
}

// concurrent starts n drills of a 10-step runbook at once on one worker,
// then n bare workflows doing the same 10 activities: every drill must
// finish, and the wall time is compared.
func (b *bench) concurrent(ctx context.Context, n int) {
	req := b.request(book("concurrent", 10, "step-", true, false), "drill")
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := b.st.Start(ctx, req)
			if err != nil {
				return
			}
			if ev, err := b.st.Wait(ctx, run.WorkflowID); err == nil && ev.Outcome == "succeeded" {
				mu.Lock()
				done++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	lifeboat := time.Since(t0)
	report("concurrent drills", fmt.Sprintf("%d of %d drills of a 10-step runbook completed on one worker in %s (ratio = runs lost)", done, n, lifeboat.Round(time.Second)),
		float64(n-done), 0)
	t0 = time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.runBare(ctx, 10)
		}()
	}
	wg.Wait()
	bare := time.Since(t0)
	report("concurrent wall time", fmt.Sprintf("%d drills took %s vs %d bare workflows running the same 10 activities %s", n, lifeboat.Round(100*time.Millisecond), n, bare.Round(100*time.Millisecond)),
		float64(lifeboat)/float64(bare), concurrentBar)
}

// concurrentBar: a drill does more than its steps' activities (it resolves
// its runbook, identifies its signers and stores its evidence: 13 activities
// where the bare workflow runs 10, and workflow tasks that build the status
// and evidence), so 2.5 times the bare workflow's wall time is the bar.
const concurrentBar = 2.5

func (b *bench) replayAndValidate(ctx context.Context) {
	const n = 1000
	yaml := book("thousand", n, "step-", false, false)
	var validations []time.Duration
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		rb, err := runbooks.Parse([]byte(yaml), "thousand.yaml")
		check(err)
		if errs := runbooks.Validate(rb, activities.Catalogue()).Errors(); len(errs) > 0 {
			fail("the 1000-step runbook is invalid: %v", errs)
		}
		validations = append(validations, time.Since(t0))
	}
	v := median(validations)
	report("validate 1,000 steps", fmt.Sprintf("parse + validate took %s (median of 3)", v.Round(time.Microsecond)), float64(v)/float64(50*time.Millisecond), 1)

	ev, _ := b.runLifeboat(ctx, yaml, "drill")
	h, err := b.st.History(ctx, ev.WorkflowID)
	check(err)
	if f := os.Getenv("BENCH_SAVE_HISTORY"); f != "" {
		js, err := b.st.HistoryJSON(ctx, ev.WorkflowID)
		check(err)
		check(os.WriteFile(f, js, 0o644))
	}
	// The cost grows with the workflow tasks the live run happened to need
	// (each one wakes every step still open), so the figure names them; the
	// median of three replays of the same history damps the machine's noise.
	tasks := 0
	for _, e := range h.Events {
		if e.GetWorkflowTaskCompletedEventAttributes() != nil {
			tasks++
		}
	}
	r := replayTime(h, 3)
	report("replay 1,000 steps", fmt.Sprintf("replaying %d events (%d workflow tasks) took %s (median of 3; ratio = time / 0.25 s)", len(h.Events), tasks, r.Round(time.Millisecond)), r.Seconds()/0.25, 1)
}

// failed is set by a bar that is missed: make bench exits 1.
var failed bool

func report(name, detail string, ratio, bar float64) {
	verdict := "PASS"
	if ratio > bar {
		failed = true
		verdict = "MISS"
	}
	fmt.Printf("%-24s ratio %6.2f  bar %5.2f  %s  %s\n", name, ratio, bar, verdict, detail)
}

// replayTime is the median time of n replays of history h: lifeboat's
// workflow code and the SDK's, nothing of the server's.
func replayTime(h *historypb.History, n int) time.Duration {
	var took []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		check(starter.Replay(h, nil))
		took = append(took, time.Since(t0))
	}
	return median(took)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func p95(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*95+99)/100-1]
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
