package starter_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// A drill that resolved its runbook and was then refused (its signature,
// its declaredAt) ran nothing: lifeboat teardown of it — from the CLI or
// the worker, which both read the drill's record here — is refused with
// the reason, while the drill that ran is torn down as before.
func TestARunRefusedAtItsStartHasNothingToTearDown(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	ran, err := starter.LoadHistoryFile("../testsuite/histories/drill-teardown-after-abort-wait-marker.json")
	require.NoError(t, err)
	res, mode, err := starter.RecordedFromHistory(ran, dc)
	require.NoError(t, err)
	assert.Equal(t, workflows.ModeDrill, mode)
	assert.NotEmpty(t, res.Source)

	endAs := func(last *historypb.HistoryEvent) *historypb.History {
		events := append([]*historypb.HistoryEvent{}, ran.GetEvents()[:len(ran.GetEvents())-1]...)
		return &historypb.History{Events: append(events, last)}
	}
	canceledWith := func(why string) *historypb.History {
		details, err := dc.ToPayloads(why)
		require.NoError(t, err)
		return endAs(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionCanceledEventAttributes{
				WorkflowExecutionCanceledEventAttributes: &historypb.WorkflowExecutionCanceledEventAttributes{Details: details}}})
	}
	canceled := canceledWith(workflows.RefusedPrefix + "cannot start: declaredAt 2030-01-01T00:00:00Z is in the future")
	_, _, err = starter.RecordedFromHistory(canceled, dc)
	assert.ErrorContains(t, err, "refused at its start, so nothing ran: cannot start: declaredAt")

	failed := endAs(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
			WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{
				Failure: &failurepb.Failure{Message: "cannot start: the start's signature is refused: bad signature"}}}})
	_, _, err = starter.RecordedFromHistory(failed, dc)
	assert.ErrorContains(t, err, "refused at its start", "a scheduled run's refusal, or one by a worker before the refused-start version")

	cancelled := canceledWith("operator went home")
	_, mode, err = starter.RecordedFromHistory(cancelled, dc)
	require.NoError(t, err, "a cancellation that is no refusal keeps its record")
	assert.Equal(t, workflows.ModeDrill, mode)
}
