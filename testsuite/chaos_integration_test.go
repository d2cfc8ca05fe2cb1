//go:build integration

package testsuite_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// The chaos property test is the part of issue 24's property test that
// needs a real server: Temporal resets and worker restarts. Each seeded
// sequence generates a runbook (3–5 side-effecting steps, one behind a gate
// with a random quorum and separation, random needs), starts it as alice's
// signed failover, and then, until it ends, restarts the worker, resets the
// run to a random completed workflow task, and sends approvals — signed by
// an approver, by the requester, unsigned, as updates or signals — in a
// seeded order. The invariants: the run ends; a gate that passed had its
// proven quorum under its separation rule; no step's side effect happened
// more often than once per run the resets made; each ending of the run left
// one record and the evidence directory verifies (signatures and chain); the
// final run's history replays and yields the same outcome.
var chaosRuns = flag.Int("chaos.n", 5, "sequences of the chaos property test")

func TestPropertyResetsAndWorkerRestartsKeepTheGuarantees(t *testing.T) {
	t.Parallel() // its own dev server (and rig): it overlaps the other slow tests
	for seed := uint64(1); seed <= uint64(*chaosRuns); seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { chaosSequence(t, seed) })
	}
}

// effects counts each step's side effects (requests to /effect/STEP).
type effects struct {
	mu   sync.Mutex
	hits map[string]int
}

func (e *effects) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.hits[strings.TrimPrefix(r.URL.Path, "/effect/")]++
	e.mu.Unlock()
	fmt.Fprintln(w, "ok")
}

func (e *effects) count(step string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[step]
}

func chaosSequence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 24))
	r := setup(t)
	fx := &effects{hits: map[string]int{}}
	svc := httptest.NewServer(fx)
	t.Cleanup(svc.Close)

	n := 3 + rng.IntN(3)
	gated := rng.IntN(n)
	minApprovals, separate := 1+rng.IntN(2), rng.IntN(2) == 0
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: chaos, version: 1}\nspec:\n  scope: application\n  objectives: {rto: 30m}\n  approvers:\n    ic: [alice, bob, dan]\n  layers:\n    workloads:\n")
	var steps []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%d", i)
		fmt.Fprintf(&b, "      - id: %s\n        action: http.check\n        with: {url: \"%s/effect/%s\"}\n        timeout: 10s\n        retry: {attempts: 1}\n", id, svc.URL, id)
		if i > 0 && rng.IntN(2) == 0 {
			fmt.Fprintf(&b, "        needs: [%s]\n", steps[rng.IntN(len(steps))])
		}
		if i == gated {
			fmt.Fprintf(&b, "        approval: {from: [ic], min: %d, separate: %t}\n", minApprovals, separate)
		}
		steps = append(steps, id)
	}
	require.NoError(t, os.WriteFile(filepath.Join(r.cfg.Catalog[0], "chaos.yaml"), []byte(b.String()), 0o644))

	var mu sync.Mutex
	var w sdkworker.Worker
	startWorker := func() {
		mu.Lock()
		defer mu.Unlock()
		w = worker.New(r.client, r.cfg, worker.Registry(r.cfg), sdkworker.Options{})
		require.NoError(t, w.Start())
	}
	startWorker()
	t.Cleanup(func() { mu.Lock(); w.Stop(); mu.Unlock() })

	ctx := context.Background()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "chaos", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "chaos"})
	require.NoError(t, err)
	var log []string
	resets := 0
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; ; i++ {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		d, err := r.client.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		require.NoError(t, err)
		if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			break
		}
		if time.Now().After(deadline) {
			log = append(log, "abort: time is up")
			_, _ = r.starter.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "chaos sequence over"})
			deadline = time.Now().Add(time.Minute)
			continue
		}
		switch pick := rng.IntN(10); {
		case pick < 3: // a worker restart: a new worker replays the run
			log = append(log, "worker restart")
			mu.Lock()
			w.Stop()
			mu.Unlock()
			startWorker()
		case pick < 6 && resets < 2: // a reset to a random completed workflow task of the current run
			var points []int64
			it := r.client.GetWorkflowHistory(ctx, run.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				require.NoError(t, err)
				if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
					points = append(points, e.GetEventId())
				}
			}
			if len(points) == 0 {
				continue
			}
			to := points[rng.IntN(len(points))]
			_, err := r.client.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
				Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: run.WorkflowID, RunId: d.GetWorkflowExecutionInfo().GetExecution().GetRunId()},
				Reason: "chaos", WorkflowTaskFinishEventId: to, RequestId: fmt.Sprintf("chaos-%d-%d", seed, i)})
			if err == nil {
				resets++
				log = append(log, fmt.Sprintf("reset to event %d", to))
			}
		default: // a decision for what the run waits on
			st, err := r.starter.Status(ctx, run.WorkflowID)
			if err != nil || len(st.Pending) == 0 || st.Pending[0].Kind != "approval" {
				continue
			}
			by := []string{"alice", "bob", "dan"}[rng.IntN(3)]
			msg := workflows.Approve{Step: st.Pending[0].Step, By: by}
			how := rng.IntN(4) // 0-1 signed update, 2 signed signal, 3 unsigned signal
			log = append(log, fmt.Sprintf("approve %s by %s (how %d)", msg.Step, by, how))
			switch how {
			case 0, 1:
				_, _ = r.starter.Approve(ctx, run.WorkflowID, msg)
			case 2:
				_ = r.starter.Signal(ctx, run.WorkflowID, workflows.MsgApprove, msg)
			default:
				_ = r.client.SignalWorkflow(ctx, run.WorkflowID, "", workflows.MsgApprove, msg)
			}
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d: gate on s%d (min %d, separate %t)\nrunbook:\n%s\nsequence:\n  %s", seed, gated, minApprovals, separate, b.String(), strings.Join(log, "\n  "))
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ev, err := r.starter.Wait(wctx, run.WorkflowID)
	require.NoError(t, err, "the run ends with its evidence")
	t.Logf("seed %d: %s after %d step(s) of chaos, %d reset(s): %s", seed, ev.Outcome, len(log), resets, strings.Join(log, "; "))

	// A gate that passed had its proven quorum under its separation rule.
	for _, s := range ev.Steps {
		if s.ID != steps[gated] || s.State != workflows.StateSucceeded {
			continue
		}
		need := minApprovals
		if separate && ev.RequestProof == nil && need < 2 {
			need = 2
		}
		var who []string
		for _, a := range s.Approvals {
			if a.Decision == "approved" && a.Proof != nil && !(separate && a.By == ev.RequestedBy) && !slices.Contains(who, a.By) {
				who = append(who, a.By)
			}
		}
		require.GreaterOrEqual(t, len(who), need, "gate %s passed with proven approvals %v: %+v", s.ID, who, s.Approvals)
	}
	// No side effect more often than once per run the resets made.
	for _, s := range steps {
		require.LessOrEqual(t, fx.count(s), 1+resets, "step %s's side effect", s)
	}
	require.NotNil(t, ev.RequestProof, "alice's signed start stays proven across resets and restarts")

	// Every ending left one record, and only endings did; the directory
	// verifies. A run a reset cut off (Terminated) may have stored its final
	// record just before: that record stays, and the reset run's goes
	// beside it.
	executions := func(status string) int {
		list, err := r.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = '%s'", run.WorkflowID, status)})
		require.NoError(t, err)
		return len(list.GetExecutions())
	}
	completed, cut := executions("Completed"), executions("Terminated")
	records, err := filepath.Glob(filepath.Join(r.cfg.EvidenceDir, "lifeboat-chaos-*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(records), completed, "one record per ending: %v", records)
	require.LessOrEqual(t, len(records), completed+cut, "one record per ending (%d completed, %d cut off by a reset): %v", completed, cut, records)
	r.verifiesAndReplays(t, run.WorkflowID, ev) // the final run's history
}
