package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// cancelBook is a drill whose workloads layer holds a gated step and a step
// that never starts: a cancellation must end the first not-run, the second
// not-run, run the teardown and store the evidence.
const cancelBook = `  layers:
    storage:
      - id: restore
        action: velero.restore
        with: {target: dr, schedule: hourly, namespaces: [case-management]}
    workloads:
      - id: scale
        action: kube.scale
        approval: {from: [ic], min: 1, timeout: 10m, onTimeout: escalate}
        with: {target: dr, namespace: case-management, replicas: {case-api: 2}}
      - id: journey
        action: http.check
        needs: [scale]
        with: {url: "http://case-api/health"}
  drill:
    namespaceMappings: {case-management: drill-case}
    teardown:
      - id: drop
        action: kube.deleteNamespace
        with: {target: dr, namespace: drill-case}
`

func TestCancellationIsAnAbortThatTellsTheTruth(t *testing.T) {
	h := newHarness(t)
	h.res.Notify = &runbooks.NotifySettings{URLEnv: "HOOK", UI: "http://ui.example"}
	h.at(2*time.Minute, func() { h.env.CancelWorkflow() })
	ev := h.run(book("60m", cancelBook), workflows.ModeDrill)

	assert.Equal(t, workflows.OutcomeCancelled, ev.Outcome)
	assert.Contains(t, ev.OutcomeReason, "cancellation requested through Temporal")
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "restore").State)
	scale := stepOf(t, ev, "scale")
	assert.Equal(t, workflows.StateNotRun, scale.State, "a gate still waiting is not run, never passed")
	assert.Empty(t, scale.Approvals)
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "journey").State)
	assert.Equal(t, 0, h.rec.count("scale"))
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop").State, "the teardown runs after a cancellation")
	assert.Equal(t, 1, h.rec.count("drop"))
	assert.Equal(t, 1, h.rec.stored, "the evidence is stored")
	for _, text := range h.rec.notified {
		assert.False(t, strings.HasPrefix(text, "*"+workflows.NotifyStepPaused+"*"), "no pause alert for a cancelled run: %s", text)
		assert.False(t, strings.HasPrefix(text, "*"+workflows.NotifyApprovalEscalated+"*"), "no escalation for a cancelled run: %s", text)
	}
	require.NotEmpty(t, h.rec.notified)
	last := h.rec.notified[len(h.rec.notified)-1]
	assert.True(t, strings.HasPrefix(last, "*"+workflows.NotifyRunFinished+"*"), last)
	assert.Contains(t, last, "aborted")
	for _, e := range ev.Events {
		assert.NotEqual(t, "evidence-sink-failed", e.Kind, e.Text)
	}
}

func TestCancellationWhileAStepRunsEndsItAborted(t *testing.T) {
	h := newHarness(t)
	h.rec.block("restore")
	h.at(time.Second, func() { h.env.CancelWorkflow() })
	ev := h.run(book("60m", cancelBook), workflows.ModeDrill)

	assert.Equal(t, workflows.OutcomeCancelled, ev.Outcome)
	restore := stepOf(t, ev, "restore")
	assert.Equal(t, workflows.StateAborted, restore.State)
	assert.Equal(t, 1, restore.Attempts)
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "scale").State)
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop").State)
	for _, e := range ev.Events {
		assert.NotEqual(t, "paused", e.Kind, "a cancelled step does not pause: %s", e.Text)
	}
}

const needsAfterFailure = `  layers:
    network:
      - id: dr-network
        action: terraform.apply
        onFailure: continue
        with: {dir: infra/dr-network}
      - id: dns-ready
        action: http.check
        with: {url: "http://dns"}
    identity:
      - id: bindings
        action: kube.apply
        needs: [dr-network]
        with: {target: dr, path: manifests/identity}
      - id: can-read
        action: kube.canI
        needs: [bindings]
        with: {target: dr, as: "system:serviceaccount:case-management:case-api", verb: get, resource: secrets}
      - id: probe
        action: http.check
        needs: [dns-ready]
        with: {url: "http://probe"}
`

func TestNeedsMeansAfterASuccess(t *testing.T) {
	h := newHarness(t)
	h.rec.script["dr-network"] = nonRetryable("terraform: missing variable region")
	ev := h.run(book("60m", needsAfterFailure), workflows.ModeFailover)

	assert.Equal(t, workflows.RunFailed, ev.Outcome)
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "dr-network").State)
	bindings := stepOf(t, ev, "bindings")
	assert.Equal(t, workflows.StateBlocked, bindings.State, "kube.apply must not run after the terraform.apply it needs failed")
	assert.Contains(t, bindings.Error, `needs dr-network, which failed`)
	assert.Equal(t, 0, h.rec.count("bindings"))
	canRead := stepOf(t, ev, "can-read")
	assert.Equal(t, workflows.StateBlocked, canRead.State, "blocked propagates")
	assert.Contains(t, canRead.Error, "needs bindings, which blocked")
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "probe").State, "a step whose needs succeeded runs")
	assert.Contains(t, strings.Join(ev.FailedChecks, "\n"), "identity/bindings")
}

func TestNeedsCountAnOperatorSkipAsDone(t *testing.T) {
	h := newHarness(t)
	yaml := strings.Replace(book("60m", needsAfterFailure), "        onFailure: continue\n", "", 1)
	h.rec.script["dr-network"] = nonRetryable("terraform: missing variable region")
	h.at(time.Minute, func() {
		h.mustUpdate(workflows.MsgSkip, workflows.Skip{Step: "dr-network", By: "alice", Reason: "the network was built by hand"})
	})
	ev := h.run(yaml, workflows.ModeFailover)
	assert.Equal(t, workflows.StateSkipped, stepOf(t, ev, "dr-network").State)
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "bindings").State, "the operator took responsibility: the dependent step runs")
	assert.Equal(t, 1, h.rec.count("bindings"))
}

// slowTeardown is a drill whose teardown takes 70 minutes (a person
// acknowledges it), far beyond the 60m RTO.
const slowTeardown = `  layers:
    workloads:
      - id: scale
        action: kube.scale
        with: {target: dr, namespace: case-management, replicas: {case-api: 2}}
  drill:
    namespaceMappings: {case-management: drill-case}
    teardown:
      - id: confirm-cleanup
        action: manual.task
        with: {instructions: "check the drill bucket is empty"}
      - id: drop
        action: kube.deleteNamespace
        needs: [confirm-cleanup]
        with: {target: dr, namespace: drill-case}
`

func TestRTOClockStopsWhenRecoveryEndsNotAfterTeardown(t *testing.T) {
	h := newHarness(t)
	h.res.Notify = &runbooks.NotifySettings{URLEnv: "HOOK", UI: "http://ui.example"}
	h.at(70*time.Minute, func() {
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "confirm-cleanup", By: "alice"})
	})
	ev := h.run(book("60m", slowTeardown), workflows.ModeDrill)

	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.False(t, ev.RTOBreached, "a 70-minute teardown does not breach the RTO of a recovery that ended at once")
	assert.Less(t, time.Duration(ev.RTOActual), time.Minute, "actual RTO ends with the last recovery step")
	require.NotNil(t, ev.Teardown, "the teardown is timed on its own")
	assert.GreaterOrEqual(t, time.Duration(*ev.Teardown), 70*time.Minute)
	assert.NotContains(t, ev.Invariant, "RTO was breached", "the invariant is not refused for a slow cleanup")
	for _, text := range h.rec.notified {
		assert.False(t, strings.HasPrefix(text, "*"+workflows.NotifyRTOBreached+"*"), text)
		assert.False(t, strings.HasPrefix(text, "*"+workflows.NotifyRTOUsed+"*"), text)
	}
	for _, e := range ev.Events {
		assert.NotEqual(t, "rto-breached", e.Kind)
	}
	assert.Contains(t, ev.Markdown(), "| Teardown |")
}

// block makes the step's activity wait until it is cancelled (or 20s).
func (r *recorder) block(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocking[id] = true
}

func (r *recorder) waitCancelled(ctx context.Context, id string) {
	r.mu.Lock()
	b := r.blocking[id]
	r.mu.Unlock()
	if !b {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
	}
}

func TestADrillThatCouldTouchProductionIsRefusedBeforeAnythingRuns(t *testing.T) {
	for name, yaml := range map[string]string{
		"teardown deletes the production namespace": strings.Replace(book("60m", drillBook),
			"        with: {target: dr, namespace: drill-case}\n", "        with: {target: dr, namespace: case-management}\n", 1),
		"edge step not skipped": strings.Replace(book("60m", drillBook), "    skip: [shift]\n", "", 1),
		"no drill section":      book("60m", twoLayers+"    workloads:\n      - {id: scale, action: kube.scale, with: {target: dr, namespace: case-management, replicas: {a: 1}}}\n"),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			var states []string
			h.env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
				if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.SAState); ok {
					states = append(states, v)
				}
			})
			err := h.runErr(yaml, workflows.ModeDrill)
			require.Error(t, err)
			assert.Regexp(t, "cannot start: .*(invalid|cannot run as a drill)", err.Error())
			// Refused, not failed: the run closes Canceled (the list shows no
			// failed recovery), says "refused" to the list and why on its page.
			var canceled *temporal.CanceledError
			assert.ErrorAs(t, err, &canceled)
			assert.Equal(t, []string{workflows.RunRefused}, states)
			assert.Regexp(t, `(?s)^\*\*Refused:\*\* cannot start: .*(invalid|cannot run as a drill).*\n\nNothing ran\.`, h.currentDetails())
			h.rec.mu.Lock()
			defer h.rec.mu.Unlock()
			assert.Empty(t, h.rec.log, "nothing may run")
		})
	}
}

func TestDrillOverridesReachTheStep(t *testing.T) {
	h := newHarness(t)
	yaml := strings.Replace(book("60m", drillBook), "    skip: [shift]\n", "    with: {shift: {record: case.drill.example.com}}\n", 1)
	h.run(yaml, workflows.ModeDrill)
	assert.Equal(t, 1, h.rec.count("shift"))
	assert.Equal(t, "case.drill.example.com", h.rec.args["shift"]["record"], "the drill's non-production hostname")
	assert.Equal(t, "dr.example.com", h.rec.args["shift"]["to"])
}

func TestAnOperatorRetryIsCountedInTheStepInput(t *testing.T) {
	h := newHarness(t)
	h.rec.script["net"] = func(call int) (runbooks.StepResult, error) {
		if call == 1 {
			return nonRetryable("restore PartiallyFailed")(call)
		}
		return runbooks.StepResult{Summary: "ok"}, nil
	}
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "net", By: "alice"}) })
	h.at(2*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob"})) })
	ev := h.run(book("60m", pausedThenGated), workflows.ModeFailover)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 1, h.rec.inputs["net"].OperatorRetries, "the second try knows it is an operator's retry (a new Velero Restore, say)")
	assert.Equal(t, 0, h.rec.inputs["shift"].OperatorRetries)
}

// TestAMultiDayIncidentKeepsItsEvidenceBounded: 5,000 refused signals and
// 500 long notes, then the run completes and stores its evidence, well under
// Temporal's 2 MB payload limit.
const refusedSignals = 5000

func TestAMultiDayIncidentKeepsItsEvidenceBounded(t *testing.T) {
	h := newHarness(t)
	h.env.SetTestTimeout(2 * time.Minute)
	long := strings.Repeat("word ", 600) // 3,000 characters
	// In batches over time, as people would send them (the SDK's test
	// environment stalls on thousands of signals in one callback).
	for batch := 0; batch < refusedSignals/100; batch++ {
		h.at(time.Minute+time.Duration(batch)*time.Second, func() {
			for i := 0; i < 100; i++ {
				h.env.SignalWorkflow(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "mallory", Comment: long})
			}
			if batch < 5 {
				for i := 0; i < 100; i++ {
					h.env.SignalWorkflow(workflows.MsgNote, workflows.Note{By: "bob", Text: fmt.Sprintf("update %d: %s", batch*100+i, long)})
				}
			}
		})
	}
	h.at(2*time.Minute, func() {
		h.refused(workflows.MsgNote, workflows.Note{By: "bob", Text: "one too many"}, "holds 500 notes")
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "bob", Comment: long}))
		h.mustUpdate(workflows.MsgApprove, signed(h, workflows.Approve{Step: "shift", By: "carol"}))
	})
	ev := h.run(book("60m", gated), workflows.ModeFailover)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 1, h.rec.stored, "the evidence is stored")
	assert.Equal(t, refusedSignals, ev.RefusedSignals, "every refused signal is counted")
	refusedNotes := 0
	for _, n := range ev.Notes {
		assert.LessOrEqual(t, len([]rune(n.Text)), workflows.MaxText+80, "each text is capped")
		if strings.HasPrefix(n.Text, "refused ") {
			refusedNotes++
		}
	}
	assert.Equal(t, 500+workflows.KeptRefusals, len(ev.Notes), "every note, and the last refused signals")
	assert.Equal(t, workflows.KeptRefusals, refusedNotes)
	assert.LessOrEqual(t, len(stepOf(t, ev, "shift").Approvals[0].Comment), workflows.MaxText+80)
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	t.Logf("evidence after 5,000 refused signals and 500 notes: %d bytes", len(b))
	assert.Less(t, len(b), 1<<20, "well under the 2 MB payload limit")
	assert.Contains(t, ev.Markdown(), "5000 refused signal(s) in all")
}

func TestTeardownModeRunsOnlyTheDrillsTeardown(t *testing.T) {
	h := newHarness(t)
	h.recordedDrill("the-drill", book("60m", drillBook), workflows.ModeDrill)
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, workflows.Request{Mode: workflows.ModeTeardown, TeardownOf: "the-drill", RequestedBy: "alice", Reason: "clean up"})
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, "the-drill", h.rec.inputs["drop"].DrillRun, "the teardown acts for the drill whose namespaces it deletes")
	require.Len(t, ev.Steps, 1, "only the teardown")
	assert.Equal(t, "drop", ev.Steps[0].ID)
	assert.Equal(t, 1, h.rec.count("drop"))
	assert.Equal(t, "drill-case", h.rec.args["drop"]["namespace"])
	assert.Equal(t, workflows.ModeDrill, h.rec.inputs["drop"].Mode, "the action keeps it inside the drill")
	assert.Empty(t, ev.Level)
	assert.Contains(t, ev.Invariant, "only cleans up")
}
