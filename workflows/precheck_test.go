package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

const precheckBook = `  layers:
    network:
      - {id: net, action: http.check, with: {url: "http://net"}}
    storage:
      - {id: restore, action: velero.restore, with: {target: dr, backup: nightly, namespaces: [cm]}}
  drill:
    namespaceMappings: {cm: drill-cm}
`

// backupMissing is a velero.restore pre-check that fails like the real one
// for a backup Velero does not have, and records the arguments it saw.
func backupMissing(seen *runbooks.StepInput) activities.PrecheckFunc {
	return func(_ context.Context, in runbooks.StepInput) []runbooks.CheckResult {
		*seen = in
		return []runbooks.CheckResult{runbooks.Pass("may create restores.velero.io in velero", "allowed"),
			runbooks.Fail("backup nightly exists", "Velero has no backup nightly in namespace velero", "name an existing backup (velero backup get)")}
	}
}

// A failed pre-flight check stops a drill before its first step, naming
// the check and the fix; only an approver's override with a reason lets it
// go on, and the evidence records the check and the override.
func TestAFailedPrecheckStopsTheDrillUntilAnApproverOverridesIt(t *testing.T) {
	h := newHarness(t)
	var seen runbooks.StepInput
	h.reg.SetPrecheck(activities.VeleroRestore, backupMissing(&seen))
	h.at(time.Minute, func() {
		st := h.status()
		assert.Equal(t, workflows.StatePrecheckFailed, st.State)
		require.Len(t, st.Pending, 1)
		p := st.Pending[0]
		assert.Equal(t, "restore#2", p.Step)
		assert.Contains(t, p.Message, "pre-flight check restore#2 failed: backup nightly exists — Velero has no backup nightly in namespace velero; fix: name an existing backup")
		assert.Equal(t, 0, h.rec.count("net"), "nothing ran")
		h.refused(workflows.MsgOverride, workflows.Override{Check: "restore#2", By: "mallory", Reason: "yolo"}, "only an approver may override")
		h.refused(workflows.MsgOverride, workflows.Override{Check: "restore#2", By: "bob"}, "give a reason")
		h.refused(workflows.MsgOverride, workflows.Override{Check: "restore#1", By: "bob", Reason: "x"}, "passed: there is nothing to override")
		h.mustUpdate(workflows.MsgOverride, workflows.Override{Check: "restore#2", By: "bob", Reason: "the backup is being copied; it will be there"})
	})
	ev := h.run(book("60m", precheckBook), workflows.ModeDrill)
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Equal(t, 1, h.rec.count("net"))
	assert.Equal(t, []string{"drill-cm"}, []string{seen.NamespaceMappings["cm"]}, "the check saw the drill's mappings")
	require.Len(t, ev.Prechecks, 2)
	require.NotNil(t, ev.Prechecks[1].Override)
	assert.Equal(t, "bob", ev.Prechecks[1].Override.By)
	assert.Contains(t, ev.Markdown(), "restore#2 backup nightly exists: FAILED — Velero has no backup nightly in namespace velero; **overridden** by bob (signed): check restore#2 (backup nightly exists) overridden: the backup is being copied")
	assert.Contains(t, ev.Markdown(), "1 of 2 passed.")
}

// An abort at a failed check ends the run with nothing run; a run that
// only checks (lifeboat precheck) ends after the checks, failed.
func TestAbortAtAFailedPrecheckAndAPrecheckOnlyRun(t *testing.T) {
	h := newHarness(t)
	var seen runbooks.StepInput
	h.reg.SetPrecheck(activities.VeleroRestore, backupMissing(&seen))
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "no backup, no drill"}) })
	ev := h.run(book("60m", precheckBook), workflows.ModeDrill)
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	assert.Equal(t, 0, h.rec.count("net"))
	assert.Equal(t, workflows.StateNotRun, stepOf(t, ev, "restore").State)

	h = newHarness(t)
	h.reg.SetPrecheck(activities.VeleroRestore, backupMissing(&seen))
	req := h.request(book("60m", precheckBook), workflows.ModeDrill, "alice")
	req.PrecheckOnly = true
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	ev = h.result()
	assert.Equal(t, workflows.RunFailed, ev.Outcome)
	assert.Equal(t, 0, h.rec.count("net"))
	assert.Contains(t, ev.FailedChecks, "pre-flight check restore#2 (backup nightly exists): Velero has no backup nightly in namespace velero")
}

// Phase 0 is one lifeboat.prechecks activity for all the steps; a step
// whose checks could not run (here its check panics) fails "checks ran"
// with the reason, and the other steps keep their own results.
func TestPrechecksRunAsOneActivityAndAStepThatCannotBeCheckedSaysWhy(t *testing.T) {
	h := newHarness(t)
	h.reg.SetPrecheck(activities.VeleroRestore, func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		panic("the API server's answer made no sense")
	})
	h.reg.SetPrecheck(activities.HTTPCheck, func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		return []runbooks.CheckResult{runbooks.Pass("net answers", "200 OK")}
	})
	var started []string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started = append(started, info.ActivityType.Name)
	})
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "fix the check first"}) })
	ev := h.run(book("60m", precheckBook), workflows.ModeDrill)
	assert.Equal(t, workflows.RunAborted, ev.Outcome)
	n := 0
	for _, name := range started {
		switch name {
		case workflows.PrechecksActivity:
			n++
		case workflows.PrecheckActivity:
			t.Errorf("a step was checked by its own activity: %v", started)
		}
	}
	assert.Equal(t, 1, n, "activities started: %v", started)
	require.Len(t, ev.Prechecks, 2)
	assert.Equal(t, "net", ev.Prechecks[0].Step)
	assert.True(t, ev.Prechecks[0].OK, "%+v", ev.Prechecks[0])
	assert.Equal(t, "restore", ev.Prechecks[1].Step)
	assert.False(t, ev.Prechecks[1].OK)
	assert.Equal(t, "checks ran", ev.Prechecks[1].Name)
	assert.Contains(t, ev.Prechecks[1].Message, "the check of velero.restore panicked: the API server's answer made no sense")
}
