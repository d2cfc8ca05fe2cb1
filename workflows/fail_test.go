package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// A scheduled drill with --pause-on-failure asks the run to fail when it did
// not succeed (so Temporal pauses the schedule); the evidence travels in the
// failure's details.
func TestFailIfUnsuccessfulFailsWithTheEvidence(t *testing.T) {
	h := newHarness(t)
	h.rec.script["broken"] = nonRetryable("bad config")
	h.at(time.Minute, func() { h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "bob", Reason: "drill failed"}) })
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, failIfUnsuccessful(h.request(book("60m", pausing), workflows.ModeDrill, "schedule")))
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.workflowError()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want an application error, got %v", err)
	assert.Equal(t, workflows.ErrUnsuccessful, ae.Type())
	assert.Contains(t, ae.Error(), "drill of test-book aborted: aborted by bob: drill failed")
	var ev record.Evidence
	require.NoError(t, ae.Details(&ev))
	assert.Equal(t, "aborted", ev.Outcome)
	assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "broken").State)
}

func TestFailIfUnsuccessfulCompletesASuccessfulRun(t *testing.T) {
	h := newHarness(t)
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, failIfUnsuccessful(h.request(book("60m", twoLayers), workflows.ModeDrill, "")))
	require.NoError(t, h.workflowError())
	var ev record.Evidence
	require.NoError(t, h.env.GetWorkflowResult(&ev))
	assert.Equal(t, "succeeded", ev.Outcome)
}

func failIfUnsuccessful(req workflows.Request) workflows.Request {
	req.FailIfUnsuccessful = true
	return req
}
