package testsuite_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// refusedAtStart are the histories of starts the worker refused, by the
// beginning of their names, with what their refusal says: before the
// refused-start version such a run closed Failed, since it closes Canceled
// (a scheduled one still fails, to pause its schedule); none has evidence.
var refusedAtStart = map[string]string{
	"tabletop-refused-unknown-runbook":     `cannot start: no runbook named "approve-by-updat" in the catalog (did you mean "approve-by-update"?)`,
	"drill-refused-bad-request":            `"mode" is missing`,
	"plan-refused-without-plan":            `"plan" is missing`,
	"drill-refused-declared-in-the-future": "is in the future",
	"scheduled-drill-refused-fails":        `cannot start: no runbook named "approve-by-updat"`,
}

func goldenHistories(t *testing.T) []string {
	files, err := filepath.Glob("histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no golden histories in testsuite/histories")
	return files
}

// TestGoldenHistoriesReplay replays every history recorded from real runs on
// the dev server (LIFEBOAT_RECORD_HISTORIES=1 make integration) against
// today's workflow code: a non-deterministic change fails here. Each history
// also yields its evidence (lifeboat evidence HISTORY.json), but for a run
// refused at its start (refusedAtStart), which has none and says why.
func TestGoldenHistoriesReplay(t *testing.T) {
	for _, f := range goldenHistories(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			h, err := starter.LoadHistoryFile(f)
			require.NoError(t, err)
			require.NoError(t, starter.Replay(h, nil))
			ev, err := starter.EvidenceFromHistory(h, converter.GetDefaultDataConverter())
			for prefix, why := range refusedAtStart {
				if strings.HasPrefix(filepath.Base(f), prefix) {
					assert.ErrorContains(t, err, `never started its steps, so it has no evidence: `)
					assert.ErrorContains(t, err, why)
					return
				}
			}
			require.NoError(t, err)
			assert.Contains(t, []string{"succeeded", "failed", "aborted", workflows.OutcomeCancelled}, ev.Outcome)
			assert.NotEmpty(t, ev.Runbook.Hash)
		})
	}
}

// TestReplayNamesTheEventOfAnIncompatibleHistory edits a recorded history so
// that its first runbook step ran another action: the replay must fail and
// name that event.
func TestReplayNamesTheEventOfAnIncompatibleHistory(t *testing.T) {
	h, err := starter.LoadHistoryFile("histories/drill-approved-by-update.json")
	require.NoError(t, err)
	var edited int64
	for _, e := range h.Events {
		a := e.GetActivityTaskScheduledEventAttributes()
		if a != nil && a.GetActivityType().GetName() == "http.check" {
			a.ActivityType.Name = "http.checkAgain"
			edited = e.GetEventId()
			break
		}
	}
	require.NotZero(t, edited)
	err = starter.Replay(h, nil)
	var ie *starter.IncompatibleError
	require.True(t, errors.As(err, &ie), "want an IncompatibleError, got %v", err)
	assert.Equal(t, edited, ie.EventID, ie.Error())
	assert.Contains(t, ie.Error(), "ActivityTaskScheduled activity http.checkAgain")
}

// TestReplayCatchesAReorderedLayer changes the restore order in code (edge
// before workloads) without workflow.GetVersion: every recorded run that
// has steps in both layers can no longer be replayed.
func TestReplayCatchesAReorderedLayer(t *testing.T) {
	saved := append(runbooks.LayerOrder[:0:0], runbooks.LayerOrder...)
	t.Cleanup(func() { copy(runbooks.LayerOrder, saved) })
	n := len(runbooks.LayerOrder)
	require.Equal(t, "edge", runbooks.LayerOrder[n-1].Name)
	runbooks.LayerOrder[n-2], runbooks.LayerOrder[n-1] = runbooks.LayerOrder[n-1], runbooks.LayerOrder[n-2]

	h, err := starter.LoadHistoryFile("histories/drill-approved-by-update.json")
	require.NoError(t, err)
	err = starter.Replay(h, nil)
	var ie *starter.IncompatibleError
	require.True(t, errors.As(err, &ie), "a reordered layer must not replay, got %v", err)
	assert.Contains(t, ie.Error(), "TMPRL1100")
	t.Log(ie.Error())
	assert.NotZero(t, ie.EventID)
}

// TestAWaitForAPersonIsATimerTheUIShows reads a recorded run (since
// versionWaitMarker): while its gate waited, a timer named what it waits
// for and the command — the line the Temporal UI's History tab draws — ran,
// and was cancelled once bob approved; the RTO timer is named its deadline.
func TestAWaitForAPersonIsATimerTheUIShows(t *testing.T) {
	h, err := starter.LoadHistoryFile("histories/drill-approved-by-update-wait-marker.json")
	require.NoError(t, err)
	dc := converter.GetDefaultDataConverter()
	started := map[string]string{}
	var cancelled []string
	for _, e := range h.Events {
		if a := e.GetTimerStartedEventAttributes(); a != nil {
			var summary string
			if p := e.GetUserMetadata().GetSummary(); p != nil {
				require.NoError(t, dc.FromPayload(p, &summary))
			}
			started[a.GetTimerId()] = summary
		}
		if a := e.GetTimerCanceledEventAttributes(); a != nil {
			cancelled = append(cancelled, started[a.GetTimerId()])
		}
	}
	var wait, rto string
	for _, s := range started {
		switch {
		case strings.HasPrefix(s, "WAITING: "):
			wait = s
		case strings.HasPrefix(s, "RTO "):
			rto = s
		}
	}
	assert.Regexp(t, `^WAITING: announce waits for approval — lifeboat approve lifeboat-approve-by-update-drill-[0-9a-f]{6} announce --as NAME$`, wait)
	assert.Contains(t, cancelled, wait, "the marker ends with the wait")
	assert.Regexp(t, `^RTO 10m: deadline \d\d:\d\d:\d\d UTC$`, rto)
}
