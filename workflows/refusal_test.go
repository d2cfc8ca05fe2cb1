package workflows_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// lifeboatStates records every LifeboatState the run publishes.
func lifeboatStates(h *harness) *[]string {
	var states []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.SAState); ok {
			states = append(states, v)
		}
	})
	return &states
}

// unknownRunbook is a request the worker refuses: no such runbook.
func unknownRunbook(h *harness) workflows.Request {
	req := h.request(book("60m", twoLayers), workflows.ModeDrill, "alice")
	req.InlineRunbook, req.Runbook = "", "no-such-runbook"
	return req
}

// A schedule pauses only on a failed run: a scheduled drill the worker
// refuses (its runbook renamed, a grant refused after a key rotation) still
// fails, so its schedule pauses instead of being refused at every tick;
// the list says refused all the same.
func TestARefusedScheduledRunFailsSoItsSchedulePauses(t *testing.T) {
	h := newHarness(t)
	states := lifeboatStates(h)
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, failIfUnsuccessful(unknownRunbook(h)))
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.env.GetWorkflowError()
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae, "a failed run: its schedule pauses")
	assert.Contains(t, ae.Message(), `cannot start: no runbook named "no-such-runbook"`)
	var ce *temporal.CanceledError
	assert.False(t, errors.As(err, &ce))
	assert.Equal(t, []string{workflows.RunRefused}, *states)
	assert.Contains(t, h.currentDetails(), "**Refused:** cannot start: no runbook named")
}

// A start the worker could not answer — its resolve kept failing (the
// catalog volume not mounted) — is an outage to alert on, not a refusal of
// the request: it fails, as before, and does not join the refused starts.
func TestAStartTheWorkerCouldNotAnswerFailsAndIsNoRefusal(t *testing.T) {
	h := newHarness(t)
	states := lifeboatStates(h)
	h.env.OnActivity(workflows.ResolveActivity, mock.Anything, mock.Anything).Return(
		func(context.Context, runbooks.ResolveInput) (runbooks.Resolved, error) {
			return runbooks.Resolved{}, temporal.NewApplicationError("the catalog cannot be read: /catalog is not mounted", "CatalogUnreadable")
		})
	err := h.runErr(book("60m", twoLayers), workflows.ModeDrill)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the catalog cannot be read")
	var ce *temporal.CanceledError
	assert.False(t, errors.As(err, &ce), "not a refusal: %v", err)
	assert.NotContains(t, *states, workflows.RunRefused)
}

// The same with a timeout: the resolve never answered.
func TestAStartWhoseResolveTimedOutIsNoRefusal(t *testing.T) {
	h := newHarness(t)
	states := lifeboatStates(h)
	h.env.OnActivity(workflows.ResolveActivity, mock.Anything, mock.Anything).Return(
		runbooks.Resolved{}, temporal.NewTimeoutError(0, nil))
	err := h.runErr(book("60m", twoLayers), workflows.ModeDrill)
	require.Error(t, err)
	var ce *temporal.CanceledError
	assert.False(t, errors.As(err, &ce), "not a refusal: %v", err)
	assert.NotContains(t, *states, workflows.RunRefused)
}

// A cancellation that reaches the run while the worker refuses it must not
// leave another state published after "refused": the run would drop out of
// the refused starts and look stuck resolving. (The test environment
// delivers the cancellation first; when both arrive in one workflow task
// the refusal marks the run finished, so its abort publishes nothing.)
func TestACancellationAsTheStartIsRefusedLeavesItRefused(t *testing.T) {
	h := newHarness(t)
	states := lifeboatStates(h)
	h.env.OnActivity(workflows.ResolveActivity, mock.Anything, mock.Anything).Return(
		func(context.Context, runbooks.ResolveInput) (runbooks.Resolved, error) {
			h.env.CancelWorkflow()
			return runbooks.Resolved{}, temporal.NewNonRetryableApplicationError(`no runbook named "no-such-runbook" in the catalog`, "RunbookNotFound", nil)
		})
	err := h.runErr(book("60m", twoLayers), workflows.ModeDrill)
	var ce *temporal.CanceledError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "refused: cannot start: no runbook named")
	require.NotEmpty(t, *states)
	assert.Equal(t, workflows.RunRefused, (*states)[len(*states)-1], "the last state published: %v", *states)
}
