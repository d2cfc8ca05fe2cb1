package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

const pausedThenGated = `  layers:
    network:
      - id: net
        action: http.check
        with: {url: "http://a"}
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic], min: 1}
        with: {zone: example.com, record: case.example.com, to: dr.example.com}
`

func TestRunNotifiesApprovalPauseRTOMilestonesAndTheEnd(t *testing.T) {
	require.Equal(t, activities.NotifyWebhook, workflows.NotifyActivity, "the workflow package names the registered action without importing the registry")
	h := newHarness(t)
	h.res.Notify = &runbooks.NotifySettings{URLEnv: "HOOK", UI: "http://ui.example"}
	h.rec.script["net"] = func(call int) (runbooks.StepResult, error) {
		if call == 1 {
			return nonRetryable("the DR VPC is not peered yet")(call)
		}
		return runbooks.StepResult{Summary: "ok"}, nil
	}
	h.rec.failNotify = 2 // the receiver is down for the first two posts
	h.at(5*time.Minute, func() { h.mustUpdate(workflows.MsgRetry, workflows.Retry{Step: "net", By: "alice"}) })
	h.at(70*time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "bob"}) })
	ev := h.run(book("60m", pausedThenGated), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)

	kinds := []string{workflows.NotifyStepPaused, workflows.NotifyApprovalNeeded, workflows.NotifyRTOUsed, workflows.NotifyRTOUsed,
		workflows.NotifyRTOBreached, workflows.NotifyRunFinished}
	require.Len(t, h.rec.notified, len(kinds), "%q", h.rec.notified)
	for i, k := range kinds {
		text := h.rec.notified[i]
		assert.True(t, strings.HasPrefix(text, "*"+k+"*"), "notification %d is %q, want %s", i, text, k)
		assert.Contains(t, text, "<http://ui.example/namespaces/default-test-namespace/workflows/default-test-workflow-id|Open", "a link to the run in the UI")
	}
	assert.Contains(t, h.rec.notified[0], "net is paused (the DR VPC is not peered yet")
	assert.Contains(t, h.rec.notified[1], "lifeboat approve default-test-workflow-id shift --as NAME")
	assert.Contains(t, h.rec.notified[1], "signal approve with the JSON that lifeboat sign approve default-test-workflow-id shift --as NAME prints")
	assert.Contains(t, h.rec.notified[2], "50% of the 1h RTO used")
	assert.Contains(t, h.rec.notified[3], "80% of the 1h RTO used")
	assert.Contains(t, h.rec.notified[5], "succeeded in 1h10m")
	assert.Contains(t, h.rec.notified[5], "(RTO breached)")
	for _, e := range ev.Events {
		assert.NotEqual(t, "notify-failed", e.Kind, "retried until the receiver answered: %s", e.Text)
	}
}

func TestNotificationsAreOffWithoutAWebhookAndNeverFailTheRun(t *testing.T) {
	h := newHarness(t)
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "bob"}) })
	ev := h.run(book("60m", pausedThenGated), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome)
	assert.Empty(t, h.rec.notified)

	h = newHarness(t)
	h.res.Notify = &runbooks.NotifySettings{URLEnv: "HOOK", UI: "http://ui.example"}
	h.rec.failNotify = 1000 // the receiver never answers
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "shift", By: "bob"}) })
	ev = h.run(book("60m", pausedThenGated), workflows.ModeFailover)
	assert.Equal(t, "succeeded", ev.Outcome, "a notification that cannot be delivered does not fail the run")
	var failed int
	for _, e := range ev.Events {
		if e.Kind == "notify-failed" {
			failed++
		}
	}
	assert.Equal(t, 2, failed, "approval needed and run finished, each recorded as not delivered: %+v", ev.Events)
}
