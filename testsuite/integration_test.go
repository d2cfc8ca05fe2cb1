//go:build integration

package testsuite_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"

	"github.com/lifeboat-dr/lifeboat/devserver/gobuild"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// rig is one dev server, one catalog and one evidence directory for the package.
type rig struct {
	srv      *testsuite.DevServer
	cfg      worker.Config
	client   client.Client
	starter  *starter.Starter
	service  *service
	webhooks *atomic.Int32
}

// service is the demo HTTP service the runbooks check; /slow answers after
// a delay on its first request only.
type service struct {
	*httptest.Server
	slowHits atomic.Int32
	hits     chan string
	broken   atomic.Bool // /flaky answers 503 while set
}

func newService() *service {
	s := &service{hits: make(chan string, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.hits <- r.URL.Path:
		default:
		}
		if r.URL.Path == "/slow" && s.slowHits.Add(1) == 1 {
			time.Sleep(8 * time.Second)
		}
		if r.URL.Path == "/down" || (r.URL.Path == "/flaky" && s.broken.Load()) {
			http.Error(w, "database not reachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok: case-api healthy")
	}))
	return s
}

const approvalBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: %s, version: 1, description: the demo service}
spec:
  scope: application
  objectives: {rto: 10m, rpo: 15m}
  approvers:
    incident-commander: [alice, bob]
  layers:
    workloads:
      - id: health
        action: http.check
        with: {url: "%s/health", expectBody: healthy}
        timeout: 30s
    edge:
      - id: announce
        action: notify.webhook
        approval: {from: [incident-commander], separate: true}
        with: {url: "%s/hook", text: "{runbook} {mode}: traffic moved"}
        timeout: 30s
`

const slowBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: slow-step, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    workloads:
      - id: slow
        action: http.check
        with: {url: "%s/slow"}
        timeout: 5s
        retry: {attempts: 3, backoff: 1s}
`

// failingBook's drill always fails and aborts.
const failingBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: failing-drill, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    workloads:
      - id: service-up
        action: http.check
        with: {url: "%s/down"}
        timeout: 10s
        retry: {attempts: 1}
        onFailure: abort
`

// pausingBook's check fails while the service is broken and pauses for an
// operator; its drill teardown always runs.
const pausingBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: %s, version: 1, description: the demo service}
spec:
  scope: application
  objectives: {rto: 10m}
  approvers:
    incident-commander: [alice, bob]
  layers:
    storage:
      - id: db-reachable
        action: http.check
        with: {url: "%s/flaky"}
        timeout: 10s
        retry: {attempts: 1}
    workloads:
      - id: open-doors
        action: notify.webhook
        approval: {from: [incident-commander]}
        with: {url: "%s/hook", text: "{runbook}: open"}
        timeout: 30s
  drill:
    teardown:
      - id: clean-up
        action: notify.webhook
        with: {url: "%s/hook", text: "{runbook}: drill over, cleaned up"}
        timeout: 30s
`

func setup(t *testing.T) *rig {
	t.Helper()
	r := &rig{srv: testsuite.Temporal(t), service: newService(), webhooks: &atomic.Int32{}}
	t.Cleanup(r.service.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.webhooks.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog")
	require.NoError(t, os.MkdirAll(cat, 0o755))
	for _, name := range []string{"approve-by-update", "approve-by-signal", "refused-update"} {
		doc := fmt.Sprintf(approvalBook, name, r.service.URL, hook.URL)
		require.NoError(t, os.WriteFile(filepath.Join(cat, name+".yaml"), []byte(doc), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(cat, "slow.yaml"), []byte(fmt.Sprintf(slowBook, r.service.URL)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cat, "failing.yaml"), []byte(fmt.Sprintf(failingBook, r.service.URL)), 0o644))
	for _, name := range []string{"paused-then-retried", "teardown-after-abort", "rejected-then-approved"} {
		doc := fmt.Sprintf(pausingBook, name, r.service.URL, hook.URL, hook.URL)
		require.NoError(t, os.WriteFile(filepath.Join(cat, name+".yaml"), []byte(doc), 0o644))
	}
	r.cfg = worker.Defaults()
	r.cfg.Temporal.Address = r.srv.HostPort
	r.cfg.Temporal.TaskQueue = "lifeboat-it-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	r.cfg.Catalog = []string{cat}
	r.cfg.EvidenceDir = filepath.Join(dir, "evidence")
	// Everyone signs with their own key, as the CLI does; mallory has none.
	r.cfg.Signatures = worker.SignaturesConfig{AllowedSigners: filepath.Join(dir, "allowed_signers"), KeyDir: filepath.Join(dir, "keys"),
		WorkerKey: filepath.Join(dir, "keys", starter.WorkerKeyName)}
	require.NoError(t, starter.WriteDemoKeys(r.cfg.Signatures.KeyDir, r.cfg.Signatures.AllowedSigners, []string{"alice", "bob", "carol", "dan"}))
	require.NoError(t, r.cfg.CheckWorker())
	c, err := worker.Dial(r.cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	r.client, r.starter = c, starter.New(c, r.cfg.Temporal.TaskQueue).WithKeys(starter.KeyDir(r.cfg.Signatures.KeyDir))
	return r
}

func (r *rig) startWorker(t *testing.T) sdkworker.Worker {
	w := worker.New(r.client, r.cfg, worker.Registry(r.cfg), sdkworker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

// waitFor polls the run's status until cond holds.
func (r *rig) waitFor(t *testing.T, id string, what string, cond func(workflows.Status) bool) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := r.starter.Status(context.Background(), id)
		if err == nil && cond(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("run %s: timed out waiting for %s", id, what)
	return workflows.Status{}
}

// record writes the run's history to testsuite/histories/NAME.json when
// LIFEBOAT_RECORD_HISTORIES=1 (golden histories replayed by make test).
func (r *rig) record(t *testing.T, id, name string) { recordHistory(t, r.starter, id, name) }

// recordHistory writes a run's history to testsuite/histories/NAME.json
// when LIFEBOAT_RECORD_HISTORIES=1.
func recordHistory(t *testing.T, st *starter.Starter, id, name string) {
	t.Helper()
	if os.Getenv("LIFEBOAT_RECORD_HISTORIES") != "1" {
		return
	}
	b, err := st.HistoryJSON(context.Background(), id)
	require.NoError(t, err)
	// LIFEBOAT_RECORD_SUFFIX records a new workflow version's histories
	// beside the old ones, which must go on replaying.
	require.NoError(t, os.WriteFile(filepath.Join("histories", name+os.Getenv("LIFEBOAT_RECORD_SUFFIX")+".json"), b, 0o644))
}

func awaitingApproval(st workflows.Status) bool { return st.State == workflows.StateAwaitingApproval }

// verifiesAndReplays checks what run id left: its evidence directory passes
// lifeboat evidence verify (signatures and chain; the output is returned),
// and its history, as the server holds it, replays to the same evidence.
func (r *rig) verifiesAndReplays(t *testing.T, id string, ev record.Evidence) string {
	t.Helper()
	cmd := exec.Command(buildLifeboat(t), "evidence", "verify", r.cfg.EvidenceDir)
	cmd.Env = append(os.Environ(), "LIFEBOAT_ALLOWED_SIGNERS="+r.cfg.Signatures.AllowedSigners)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	h, err := r.starter.History(context.Background(), id)
	require.NoError(t, err)
	require.NoError(t, starter.Replay(h, nil))
	replayed, err := starter.EvidenceFromHistory(h, converter.GetDefaultDataConverter())
	require.NoError(t, err)
	require.Equal(t, ev.ID, replayed.ID)
	require.Equal(t, ev.Outcome, replayed.Outcome)
	return string(out)
}

func TestIntegration(t *testing.T) {
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()

	t.Run("approve through an update", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-update", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		assert.Regexp(t, `^lifeboat-approve-by-update-drill-[0-9a-f]{6}$`, run.WorkflowID)
		st := r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		require.Len(t, st.Pending, 1)
		assert.Contains(t, st.Pending[0].Message, "lifeboat approve "+run.WorkflowID+" announce --as NAME")

		before := r.webhooks.Load()
		approved := time.Now()
		reply, err := r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "bob", Comment: "go"})
		require.NoError(t, err)
		assert.Contains(t, reply.Message, "the step starts now")
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		resumed := stepOf(t, ev, "announce").Started.Sub(approved)
		t.Logf("approval → gated step started: %s", resumed)
		assert.Less(t, resumed, 3*time.Second, "the run should resume right after the approval")
		assert.Equal(t, before+1, r.webhooks.Load())

		assert.Equal(t, "succeeded", ev.Outcome)
		assert.Equal(t, "bob", stepOf(t, ev, "announce").Approvals[0].By)
		assert.Contains(t, stepOf(t, ev, "health").Summary, "→ 200")
		// the evidence is the result, in the sink, and the same through starter.Evidence
		got, err := r.starter.Evidence(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, ev.ID, got.ID)
		stored, err := os.ReadFile(storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID))
		require.NoError(t, err)
		assert.Contains(t, string(stored), `"outcome": "succeeded"`)
		md, err := os.ReadFile(strings.TrimSuffix(storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID), ".json") + ".md")
		require.NoError(t, err)
		assert.Contains(t, string(md), "workloads/health")
		r.record(t, run.WorkflowID, "drill-approved-by-update")
	})

	t.Run("approve through signals", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-signal", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		// alice requested the run and the gate demands separation: refused, recorded as a note
		require.NoError(t, r.starter.Signal(ctx, run.WorkflowID, workflows.MsgApprove, workflows.Approve{Step: "announce", By: "alice"}))
		r.waitFor(t, run.WorkflowID, "refused signal noted", awaitingApproval)
		require.NoError(t, r.starter.Signal(ctx, run.WorkflowID, workflows.MsgNote, workflows.Note{By: "bob", Text: "primary region confirmed down"}))
		require.NoError(t, r.starter.Signal(ctx, run.WorkflowID, workflows.MsgApprove, workflows.Approve{Step: "announce", By: "bob"}))
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", ev.Outcome)
		require.Len(t, ev.Notes, 2)
		assert.Contains(t, ev.Notes[0].Text, "separation of duties")
		assert.Equal(t, "primary region confirmed down", ev.Notes[1].Text)
		assert.Equal(t, "bob", stepOf(t, ev, "announce").Approvals[0].By)
		r.record(t, run.WorkflowID, "failover-approved-by-signal-after-refusal")
	})

	t.Run("a refused update leaves the run waiting", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "refused-update", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "announce", By: "mallory"})
		var refused *starter.RefusedError
		require.True(t, errors.As(err, &refused), "want a RefusedError, got %v", err)
		assert.Contains(t, refused.Message, "mallory is not in the approver groups of step announce (incident-commander: alice, bob)")
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "nope", By: "bob"})
		assert.ErrorContains(t, err, `unknown step "nope"`)
		time.Sleep(300 * time.Millisecond)
		st, err := r.starter.Status(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.StateAwaitingApproval, st.State)
		_, err = r.starter.Abort(ctx, run.WorkflowID, workflows.Abort{By: "bob", Reason: "test over"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "aborted", ev.Outcome)
		assert.Empty(t, stepOf(t, ev, "announce").Approvals, "the refused approval must leave no trace on the gate")
		r.record(t, run.WorkflowID, "failover-refused-update-then-abort")
	})

	t.Run("a failed step pauses and is retried", func(t *testing.T) {
		r.service.broken.Store(true)
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "paused-then-retried", Mode: workflows.ModeFailover, RequestedBy: "carol", Reason: "it"})
		require.NoError(t, err)
		st := r.waitFor(t, run.WorkflowID, "the paused step", func(s workflows.Status) bool { return s.State == workflows.StatePaused })
		require.NotEmpty(t, st.Pending)
		assert.Contains(t, st.Pending[0].Message, "lifeboat retry|skip "+run.WorkflowID+" db-reachable")
		assert.NotContains(t, st.Pending[0].Message, "retryable: true", "the operator sees the cause, not the SDK's wrapping")
		r.service.broken.Store(false)
		_, err = r.starter.Retry(ctx, run.WorkflowID, workflows.Retry{Step: "db-reachable", By: "carol"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "open-doors", By: "bob"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", ev.Outcome)
		assert.Equal(t, 2, stepOf(t, ev, "db-reachable").Attempts)
		r.record(t, run.WorkflowID, "failover-paused-then-retried")
	})

	t.Run("a rejected approval, then retried and approved", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "rejected-then-approved", Mode: workflows.ModeFailover, RequestedBy: "carol", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		_, err = r.starter.Reject(ctx, run.WorkflowID, workflows.Reject{Step: "open-doors", By: "alice", Reason: "data not verified yet"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "the rejected step paused", func(s workflows.Status) bool { return s.State == workflows.StatePaused })
		_, err = r.starter.Retry(ctx, run.WorkflowID, workflows.Retry{Step: "open-doors", By: "alice"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate again", awaitingApproval)
		_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "open-doors", By: "bob", Comment: "verified"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", ev.Outcome)
		approvals := stepOf(t, ev, "open-doors").Approvals
		require.Len(t, approvals, 2)
		assert.Equal(t, "rejected", approvals[0].Decision)
		assert.Equal(t, "approved", approvals[1].Decision)
		r.record(t, run.WorkflowID, "failover-rejected-then-approved")
	})

	t.Run("a drill aborted at its gate still tears down", func(t *testing.T) {
		before := r.webhooks.Load()
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeDrill, RequestedBy: "carol", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
		_, err = r.starter.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "drill window over"})
		require.NoError(t, err)
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "aborted", ev.Outcome)
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "clean-up").State)
		assert.Equal(t, before+1, r.webhooks.Load(), "only the teardown webhook was sent")
		r.record(t, run.WorkflowID, "drill-teardown-after-abort")
	})

	t.Run("a tabletop run is acknowledged step by step", func(t *testing.T) {
		before := r.webhooks.Load()
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeTabletop, RequestedBy: "carol", Reason: "paper drill"})
		require.NoError(t, err)
		for _, id := range []string{"db-reachable", "open-doors"} {
			if id == "open-doors" { // a tabletop rehearses the approval too
				r.waitFor(t, run.WorkflowID, "approval gate", awaitingApproval)
				_, err = r.starter.Approve(ctx, run.WorkflowID, workflows.Approve{Step: id, By: "alice"})
				require.NoError(t, err)
			}
			r.waitFor(t, run.WorkflowID, id+" awaiting ack", func(s workflows.Status) bool {
				for _, p := range s.Pending {
					if p.Step == id && p.Kind == "acknowledgement" {
						return true
					}
				}
				return false
			})
			_, err = r.starter.Ack(ctx, run.WorkflowID, workflows.Ack{Step: id, By: "bob", Comment: "walked through"})
			require.NoError(t, err)
		}
		ev, err := r.starter.Wait(ctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", ev.Outcome)
		assert.Equal(t, before, r.webhooks.Load(), "a tabletop run executes nothing")
		decisions := stepOf(t, ev, "open-doors").Approvals
		require.Len(t, decisions, 2)
		assert.Equal(t, "approved", decisions[0].Decision)
		assert.Equal(t, "acknowledged", decisions[1].Decision)
		r.record(t, run.WorkflowID, "tabletop-acknowledged")
	})

	t.Run("a plan's members: one approved through the member, one forwarded by the plan", func(t *testing.T) {
		plan := "apiVersion: lifeboat/v1\nkind: RecoveryPlan\nmetadata: {name: it-region, version: 1}\nspec:\n  scope: region\n" +
			"  objectives: {rto: 1h, mtd: 4h}\n  members:\n    - runbook: approve-by-update\n    - runbook: teardown-after-abort\n      after: [approve-by-update]\n"
		require.NoError(t, os.WriteFile(filepath.Join(r.cfg.Catalog[0], "it-region.yaml"), []byte(plan), 0o644))
		run, err := r.starter.Start(ctx, workflows.Request{Plan: "it-region", Mode: workflows.ModeDrill, RequestedBy: "alice", Reason: "it"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "the first member's gate", awaitingApproval)
		first := r.starter.Route(ctx, run.WorkflowID, "announce")
		assert.Equal(t, run.WorkflowID+".approve-by-update", first)
		_, err = r.starter.Approve(ctx, first, workflows.Approve{Step: "announce", By: "bob"})
		require.NoError(t, err)
		r.waitFor(t, run.WorkflowID, "the second member's gate", func(s workflows.Status) bool {
			return awaitingApproval(s) && len(s.Pending) == 1 && s.Pending[0].Step == "open-doors"
		})
		// Sent to the plan, signed for the member (the starter routes the signature): the plan forwards it.
		require.NoError(t, r.starter.Signal(ctx, run.WorkflowID, workflows.MsgApprove, workflows.Approve{Step: "open-doors", By: "bob"}))
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		ev, err := r.starter.Wait(wctx, run.WorkflowID)
		require.NoError(t, err)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
		require.NotNil(t, ev.Plan)
		require.Len(t, ev.Plan.Members, 2)
		for _, m := range ev.Plan.Members {
			member, err := r.starter.Wait(wctx, m.WorkflowID)
			require.NoError(t, err)
			assert.Equal(t, workflows.RunSucceeded, member.Outcome, m.WorkflowID)
			assert.Equal(t, ev.DeclaredAt, member.DeclaredAt, "a member's clock runs from the plan's declaration")
		}
		r.record(t, run.WorkflowID, "plan-drill-member-approved-and-forwarded")
		r.record(t, run.WorkflowID+".teardown-after-abort", "plan-member-drill-forwarded-approval")
	})

	t.Run("a teardown builds only on a drill of this worker's task queue", func(t *testing.T) {
		// A "drill" on another task queue (another program, or someone's own worker): never ours to read.
		other := starter.New(r.client, "someone-elses-queue")
		foreign, err := other.Start(ctx, workflows.Request{Runbook: "teardown-after-abort", Mode: workflows.ModeDrill, RequestedBy: "mallory", Reason: "not ours"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.client.TerminateWorkflow(context.Background(), foreign.WorkflowID, "", "test over") })
		run, err := r.starter.Start(ctx, workflows.Request{Mode: workflows.ModeTeardown, TeardownOf: foreign.WorkflowID, RequestedBy: "carol", Reason: "it"})
		require.NoError(t, err)
		_, err = r.starter.Wait(ctx, run.WorkflowID)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `on task queue "someone-elses-queue", not a lifeboat run of this worker's task queue`)
	})

	t.Run("unknown runbook fails fast with the name", func(t *testing.T) {
		run, err := r.starter.Start(ctx, workflows.Request{Runbook: "approve-by-updat", Mode: workflows.ModeDrill})
		require.NoError(t, err)
		_, err = r.starter.Wait(ctx, run.WorkflowID)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `no runbook named "approve-by-updat" in the catalog (did you mean "approve-by-update"?)`)
	})
}

// TestScheduledDrillPausesOnFailure: a schedule created with pause-on-failure
// pauses itself when its drill fails, and the failed run still has evidence.
func TestScheduledDrillPausesOnFailure(t *testing.T) {
	r := setup(t)
	r.startWorker(t)
	ctx := context.Background()
	_, err := r.starter.CreateSchedule(ctx, starter.ScheduleRequest{Runbook: "failing-drill", Mode: workflows.ModeFailover, Cron: "0 3 1 * *"})
	assert.ErrorContains(t, err, "never a real failover")
	id, err := r.starter.CreateSchedule(ctx, starter.ScheduleRequest{Runbook: "failing-drill", Mode: workflows.ModeDrill, Cron: "0 3 1 * *", PauseOnFailure: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.starter.DeleteSchedule(ctx, id) })
	_, err = r.starter.CreateSchedule(ctx, starter.ScheduleRequest{Runbook: "failing-drill", Mode: workflows.ModeDrill, Cron: "0 3 1 * *"})
	assert.ErrorContains(t, err, "exists: `lifeboat drill delete "+id+"` first")
	require.NoError(t, r.starter.TriggerSchedule(ctx, id))

	var info starter.ScheduleInfo
	for deadline := time.Now().Add(60 * time.Second); !info.Paused; time.Sleep(200 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the schedule did not pause after its drill failed: %+v", info)
		info, err = r.starter.DescribeSchedule(ctx, id)
		require.NoError(t, err)
	}
	require.NotNil(t, info.LastRun)
	assert.Equal(t, "aborted", info.LastRun.Result)
	ev, err := r.starter.Evidence(ctx, info.LastRun.WorkflowID)
	require.NoError(t, err, "a failed scheduled run keeps its evidence in its failure")
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "service-up").State)
	assert.Contains(t, ev.Reason, "scheduled drill")
	stored, err := os.ReadFile(storedEvidence(t, r.cfg.EvidenceDir, info.LastRun.WorkflowID))
	require.NoError(t, err)
	assert.Contains(t, string(stored), `"outcome": "aborted"`)
}

// TestWorkerKilledMidStepRunFinishes kills -9 a worker process while a step
// runs; a new worker picks the step up after its timeout and the run finishes.
func TestWorkerKilledMidStepRunFinishes(t *testing.T) {
	r := setup(t)
	bin := buildLifeboat(t)
	startProc := func() *exec.Cmd {
		cmd := exec.Command(bin, "worker")
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE="+r.cfg.Temporal.TaskQueue,
			"LIFEBOAT_CATALOG="+strings.Join(r.cfg.Catalog, ":"), "LIFEBOAT_EVIDENCE_DIR="+r.cfg.EvidenceDir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	first := startProc()
	ctx := context.Background()
	run, err := r.starter.Start(ctx, workflows.Request{Runbook: "slow-step", Mode: workflows.ModeFailover, RequestedBy: "alice", Reason: "kill test"})
	require.NoError(t, err)
	select {
	case p := <-r.service.hits:
		require.Equal(t, "/slow", p)
	case <-time.After(60 * time.Second):
		t.Fatal("the slow step never reached the service")
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	second := startProc()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })

	ev, err := r.starter.Wait(ctx, run.WorkflowID)
	require.NoError(t, err)
	s := stepOf(t, ev, "slow")
	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Equal(t, workflows.StateSucceeded, s.State)
	assert.Equal(t, 2, s.Attempts, "the attempt on the killed worker timed out and the second one succeeded")
	_, err = os.Stat(storedEvidence(t, r.cfg.EvidenceDir, run.WorkflowID))
	assert.NoError(t, err, "the new worker stored the evidence")
}

// TestCLIRefusesAnApproverOutsideTheGroup drives the real binary.
func TestCLIRefusesAnApproverOutsideTheGroup(t *testing.T) {
	r := setup(t)
	r.startWorker(t)
	bin := buildLifeboat(t)
	env := []string{"LIFEBOAT_ADDRESS=" + r.cfg.Temporal.Address, "LIFEBOAT_TASK_QUEUE=" + r.cfg.Temporal.TaskQueue,
		"LIFEBOAT_KEY_DIR=" + r.cfg.Signatures.KeyDir, "LIFEBOAT_ALLOWED_SIGNERS=" + r.cfg.Signatures.AllowedSigners}
	cliWith := func(extra []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(os.Environ(), env...), extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cli := func(args ...string) (string, error) { return cliWith(nil, args...) }
	out, err := cli("failover", "approve-by-update", "--reason", "cli test", "--as", "alice", "--output", "json")
	require.NoError(t, err, out)
	id := between(out, `"workflowId": "`, `"`)
	r.waitFor(t, id, "approval gate", awaitingApproval)

	// At 3 AM: lifeboat approve <TAB> in bash lists the open runs, newest
	// first; after the run id only the steps waiting for approval; --as
	// <TAB> the people who may approve that step.
	assert.Eventually(t, func() bool {
		runs := bashComplete(t, bin, env, "approve", "")
		return len(runs) > 0 && strings.HasPrefix(runs[0], id)
	}, 10*time.Second, 200*time.Millisecond, "approve <TAB> lists the open run first")
	assert.Equal(t, []string{"announce"}, bashComplete(t, bin, env, "approve", id, ""))
	assert.Empty(t, bashComplete(t, bin, env, "ack", id, ""), "no step waits for an acknowledgement")
	assert.Equal(t, []string{"bob"}, bashComplete(t, bin, env, "approve", id, "announce", "--as", ""))

	out, err = cli("approve", id, "announce", "--as", "mallory")
	require.Error(t, err)
	assert.Equal(t, 1, err.(*exec.ExitError).ExitCode())
	assert.Contains(t, out, "refused: mallory is not in the approver groups")

	// carol's key, used to approve as bob (the one approver of this gate):
	// refused, and the run keeps waiting.
	out, err = cliWith([]string{"LIFEBOAT_SIGNING_KEY=" + filepath.Join(r.cfg.Signatures.KeyDir, "carol")}, "approve", id, "announce", "--as", "bob")
	require.Error(t, err)
	assert.Contains(t, out, "refused: signature does not prove the decision: the key that signed is carol's, not bob's")

	out, err = cli("status", id)
	require.NoError(t, err, out)
	assert.Contains(t, out, "WAITING: step announce needs 1 signed approval(s)", "alice signed her start, so one other signer suffices")

	out, err = cli("approve", id, "announce", "--as", "bob", "--comment", "looks good")
	require.NoError(t, err, out)
	assert.Contains(t, out, "approval 1 of 1 recorded; the step starts now")
	_, err = r.starter.Wait(context.Background(), id)
	require.NoError(t, err)

	out, err = cli("evidence", id, "-o", "md")
	require.NoError(t, err, out)
	assert.Contains(t, out, "approved by bob (signed)", "the CLI signed bob's approval with bob's key")
	r.record(t, id, "failover-cli-signed-forgery-refused")
	assert.Contains(t, out, "| Requested by | alice (signed)", "and alice's start")
	assert.Contains(t, out, "| Outcome | **succeeded** |")
}

// storedEvidence is the evidence file of the latest run of a workflow id
// in the sink ("" when there is none).
func storedEvidence(t *testing.T, dir, workflowID string) string {
	t.Helper()
	runs, err := evidence.NewDirSink(dir).Runs(workflowID)
	if err != nil {
		t.Logf("no evidence of %s: %v", workflowID, err)
		return ""
	}
	return runs[len(runs)-1]
}

// evidenceFiles are every file of an evidence directory: records,
// signatures, Markdown and chain positions (none may be empty of a run).
func evidenceFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files, "no evidence in %s", dir)
	return files
}

// bashComplete is what bash offers for `lifeboat ARGS<TAB>` with lifeboat's
// completion script loaded, as in an interactive shell with Debian's
// bash-completion (make tools installs it); the last arg is the word being typed.
func bashComplete(t *testing.T, bin string, env []string, args ...string) []string {
	t.Helper()
	words := append([]string{bin}, args...)
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	script := fmt.Sprintf(`source /usr/share/bash-completion/bash_completion
source <(%q completion bash)
COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE=%q; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
__start_lifeboat
printf '%%s\n' "${COMPREPLY[@]}"`, bin, strings.Join(quoted, " "), len(words)-1, strings.Join(words, " "))
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // compopt's complaints outside a real <TAB>
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var offered []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			offered = append(offered, l)
		}
	}
	return offered
}

func buildLifeboat(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.bin = filepath.Join(binDir, "lifeboat")
		args := append(append([]string{"build"}, gobuild.VCSFlags("..")...), "-o", built.bin, "github.com/lifeboat-dr/lifeboat/cmd/lifeboat")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.bin
}

// built is the lifeboat binary the tests share: built once per test binary
// (into binDir, which TestMain removes), not once per test.
var built struct {
	once sync.Once
	bin  string
	err  error
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

func stepOf(t *testing.T, ev record.Evidence, id string) record.StepRecord {
	t.Helper()
	for _, s := range ev.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s", id)
	return record.StepRecord{}
}
