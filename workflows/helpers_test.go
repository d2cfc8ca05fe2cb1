package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// recorder is a fake action backend: it logs starts and ends and lets each
// step's behaviour be scripted.
type recorder struct {
	mu      sync.Mutex
	log     []string
	calls   map[string]int
	args    map[string]map[string]any
	inputs  map[string]runbooks.StepInput
	script  map[string]func(call int) (runbooks.StepResult, error)
	barrier map[string]*sync.WaitGroup
	// notified holds the texts of the run's own notifications (no step id);
	// the first failNotify of them fail as if the receiver were down.
	notified   []string
	failNotify int
	// blocking steps wait inside their activity until cancelled; stored
	// counts evidence.store calls.
	blocking map[string]bool
	stored   int
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}, args: map[string]map[string]any{}, inputs: map[string]runbooks.StepInput{},
		script: map[string]func(int) (runbooks.StepResult, error){}, barrier: map[string]*sync.WaitGroup{},
		blocking: map[string]bool{}}
}

func (r *recorder) action(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	if in.StepID == "" {
		return r.notification(in)
	}
	r.mu.Lock()
	r.calls[in.StepID]++
	call := r.calls[in.StepID]
	r.args[in.StepID] = in.Args
	r.inputs[in.StepID] = in
	r.log = append(r.log, "start:"+in.StepID)
	fn := r.script[in.StepID]
	wg := r.barrier[in.StepID]
	r.mu.Unlock()
	if wg != nil { // wait until every step of the barrier has started
		wg.Done()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError("barrier: parallel steps did not start together", "Barrier", nil)
		}
	}
	r.waitCancelled(ctx, in.StepID)
	if ctx.Err() != nil {
		r.mu.Lock()
		r.log = append(r.log, "cancelled:"+in.StepID)
		r.mu.Unlock()
		return runbooks.StepResult{}, ctx.Err()
	}
	res, err := runbooks.StepResult{Summary: "ok " + in.StepID}, error(nil)
	if fn != nil {
		res, err = fn(call)
	}
	r.mu.Lock()
	r.log = append(r.log, "end:"+in.StepID)
	r.mu.Unlock()
	return res, err
}

func (r *recorder) notification(in runbooks.StepInput) (runbooks.StepResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNotify > 0 {
		r.failNotify--
		return runbooks.StepResult{}, fmt.Errorf("notify.webhook: 503 from the receiver")
	}
	r.notified = append(r.notified, fmt.Sprint(in.Args["text"]))
	return runbooks.StepResult{Summary: "posted"}, nil
}

// parallel makes the given steps wait for each other inside the activity: it
// only completes if they really run at the same time.
func (r *recorder) parallel(ids ...string) {
	wg := &sync.WaitGroup{}
	wg.Add(len(ids))
	for _, id := range ids {
		r.barrier[id] = wg
	}
}

func (r *recorder) index(entry string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.log {
		if e == entry {
			return i
		}
	}
	return -1
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

// fails returns a script failing the first n calls (retryable), then succeeding.
func fails(n int) func(int) (runbooks.StepResult, error) {
	return func(call int) (runbooks.StepResult, error) {
		if call <= n {
			return runbooks.StepResult{}, fmt.Errorf("transient failure %d", call)
		}
		return runbooks.StepResult{Summary: "recovered"}, nil
	}
}

func nonRetryable(msg string) func(int) (runbooks.StepResult, error) {
	return func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(msg, "ConfigError", nil)
	}
}

// harness is a test workflow environment with the real resolver and fakes.
type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	// identities is what the fake lifeboat.identities activity reads back
	// from "history".
	identities []workflows.MessageIdentity
	rec        *recorder
	res        *activities.Resolver
	reg        *activities.Registry
	sent       []*sent
	// otherChains is what the fake lifeboat.startRuns activity finds: runs
	// of other chains under the test workflow id.
	otherChains []string
}

var start = time.Date(2026, 6, 15, 2, 0, 0, 0, time.UTC)

// fakeActions are the actions the fake registry implements.
var fakeActions = []string{activities.HTTPCheck, activities.NotifyWebhook, activities.VeleroRestore,
	activities.KubeScale, activities.KubeWaitReady, activities.KubeDeleteNamespace, activities.KubeApply,
	activities.KubeCanI, activities.CloudflareDNSSwitch, activities.TerraformApply}

func newHarness(t *testing.T, implemented ...string) *harness {
	s := &testsuite.WorkflowTestSuite{}
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.SetTestTimeout(30 * time.Second)
	h := &harness{t: t, env: env, rec: newRecorder()}
	if implemented == nil {
		implemented = fakeActions
	}
	impls := map[string]activities.StepFunc{}
	for _, name := range implemented {
		impls[name] = h.rec.action
	}
	reg := activities.NewWithFuncs(impls)
	h.reg = reg
	env.RegisterWorkflowWithOptions(workflows.RestoreWorkflow, workflow.RegisterOptions{Name: workflows.RestoreWorkflowName})
	// Inline runbooks run as reviewed catalog text: request writes each
	// into this catalog (a failover of any other inline text is refused).
	res := &activities.Resolver{Registry: reg, Signers: testSigners, Dirs: []string{t.TempDir()}}
	h.res = res
	env.RegisterActivityWithOptions(res.Resolve, activity.RegisterOptions{Name: workflows.ResolveActivity})
	env.RegisterActivityWithOptions(func(context.Context, string, string) ([]workflows.MessageIdentity, error) {
		return h.identities, nil
	}, activity.RegisterOptions{Name: workflows.IdentitiesActivity})
	for name, fn := range reg.Activities() {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	env.RegisterActivityWithOptions(func(context.Context, string, string) ([]string, error) {
		return h.otherChains, nil
	}, activity.RegisterOptions{Name: workflows.StartRunsActivity})
	env.RegisterActivityWithOptions(reg.Precheck, activity.RegisterOptions{Name: workflows.PrecheckActivity})
	env.RegisterActivityWithOptions(reg.Prechecks, activity.RegisterOptions{Name: workflows.PrechecksActivity})
	env.RegisterActivityWithOptions(reg.DryRun, activity.RegisterOptions{Name: workflows.DryRunActivity})
	env.RegisterActivityWithOptions(func(context.Context, runbooks.StepInput) (runbooks.StepResult, error) {
		h.rec.mu.Lock()
		h.rec.stored++
		h.rec.mu.Unlock()
		return runbooks.StepResult{Summary: "stored"}, nil
	}, activity.RegisterOptions{Name: workflows.StoreActivity})
	return h
}

// run executes the workflow on an inline runbook and returns its evidence.
func (h *harness) run(yaml, mode string) record.Evidence {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, h.request(yaml, mode, "alice"))
	return h.result()
}

// result is the evidence of the run just executed, after checking every update.
func (h *harness) result() record.Evidence {
	h.t.Helper()
	require.True(h.t, h.env.IsWorkflowCompleted())
	require.NoError(h.t, h.workflowError())
	h.verifyUpdates()
	var ev record.Evidence
	require.NoError(h.t, h.env.GetWorkflowResult(&ev))
	return ev
}

// runErr executes the workflow and returns its error.
func (h *harness) runErr(yaml, mode string) error {
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, h.request(yaml, mode, "alice"))
	require.True(h.t, h.env.IsWorkflowCompleted())
	return h.workflowError()
}

// workflowError is the run's error, a refused start's reason included: the
// run closes Canceled, whose error text is only "canceled", with the reason
// in its details.
func (h *harness) workflowError() error {
	err := h.env.GetWorkflowError()
	var ce *temporal.CanceledError
	var why string
	if errors.As(err, &ce) && ce.HasDetails() && ce.Details(&why) == nil {
		return fmt.Errorf("%w: %s", err, why)
	}
	return err
}

// request is a request for the inline runbook yaml, whose text the
// catalog holds too (as a reviewed runbook's would be).
func (h *harness) request(yaml, mode, by string) workflows.Request {
	h.t.Helper()
	require.NoError(h.t, os.WriteFile(filepath.Join(h.res.Dirs[0], "runbook.yaml"), []byte(yaml), 0o644))
	return workflows.Request{InlineRunbook: yaml, Mode: mode, RequestedBy: by, Reason: "test"}
}

// at schedules fn at mock time d after start.
func (h *harness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

// sent is one update and what the workflow did with it (known after the run).
type sent struct {
	name     string
	want     string // "" = must be accepted, else a substring of the refusal
	accepted bool
	refused  error
}

// mustUpdate sends an update that must be accepted (checked after the run).
func (h *harness) mustUpdate(name string, arg any) { h.send(name, arg, "") }

// refused sends an update whose validator must refuse it with want in the message.
func (h *harness) refused(name string, arg any, want string) { h.send(name, arg, want) }

func (h *harness) send(name string, arg any, want string) {
	arg = h.autoSign(arg)
	u := &sent{name: name, want: want}
	h.sent = append(h.sent, u)
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, len(h.sent)), &testsuite.TestUpdateCallback{
		OnAccept:   func() { u.accepted = true },
		OnReject:   func(err error) { u.refused = err },
		OnComplete: func(any, error) {},
	}, arg)
}

// verifyUpdates checks every update sent against what was wanted.
func (h *harness) verifyUpdates() {
	h.t.Helper()
	for i, u := range h.sent {
		if u.want == "" {
			assert.True(h.t, u.accepted, "update %d (%s) was not accepted: %v", i, u.name, u.refused)
			continue
		}
		if assert.Error(h.t, u.refused, "update %d (%s) should be refused", i, u.name) {
			assert.Contains(h.t, u.refused.Error(), u.want, "update %d (%s)", i, u.name)
		}
	}
}

func (h *harness) status() workflows.Status {
	v, err := h.env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(h.t, err)
	var st workflows.Status
	require.NoError(h.t, v.Get(&st))
	return st
}

func stepOf(t *testing.T, ev record.Evidence, id string) record.StepRecord {
	t.Helper()
	for _, s := range ev.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in evidence", id)
	return record.StepRecord{}
}

// unsigned wraps a message the harness must send as it is: without it,
// send signs every unsigned decision of a person with a test key (a worker
// with allowed signers counts only proven decisions).
type unsigned struct{ msg any }

// autoSign signs arg for the test run as its sender would with the CLI,
// unless it is wrapped in unsigned, already signed, or from someone the
// allowed signers do not know.
func (h *harness) autoSign(arg any) any {
	if u, ok := arg.(unsigned); ok {
		return u.msg
	}
	m, ok := arg.(workflows.Signable)
	if !ok || m.Proof().Signature != "" || m.Actor() == "mallory" || testKeys[m.Actor()] == nil {
		return arg
	}
	at := h.env.Now()
	sig, err := proof.SignDecision(workflows.MessageDecision(testWorkflowID, testRunID, m, at), testKeys[m.Actor()])
	if err != nil {
		h.t.Fatal(err)
	}
	return workflows.WithSigned(m, workflows.Signed{SignedAt: &at, Signature: sig})
}

// recordedRun makes the resolver's record reader find run id: it resolved
// text (a failover that succeeded).
func (h *harness) recordedRun(id, text string) {
	h.res.Records = func(_ context.Context, want string) (runbooks.Resolved, record.Evidence, error) {
		if want != id {
			return runbooks.Resolved{}, record.Evidence{}, fmt.Errorf("workflow %s not found", want)
		}
		hash := runbooks.HashOf([]byte(text))
		return runbooks.Resolved{Source: text, Hash: hash}, record.Evidence{WorkflowID: id, Mode: workflows.ModeFailover, Outcome: "succeeded",
			Runbook: record.RunbookRef{Hash: hash}}, nil
	}
}

// recordedDrill makes the resolver find run id in "history": it resolved
// text and was started in mode.
func (h *harness) recordedDrill(id, text, mode string) {
	h.res.Drills = func(_ context.Context, want string) (runbooks.Resolved, string, error) {
		if want != id {
			return runbooks.Resolved{}, "", fmt.Errorf("workflow %s not found", want)
		}
		return runbooks.Resolved{Source: text, Hash: runbooks.HashOf([]byte(text))}, mode, nil
	}
}
