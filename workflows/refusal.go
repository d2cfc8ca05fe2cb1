package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// versionRefusedStart guards how a run the worker refuses before any step
// ran ends: it closes Canceled, not Failed — nothing was attempted, so the
// workflow list does not show a failed recovery — with LifeboatState
// "refused" and the reason as the cancellation's details and the current
// details. Older runs ended Failed with the same message.
const versionRefusedStart = "refused-start"

// RunRefused is the LifeboatState of a run the worker refused at its start
// (unknown or invalid runbook, a drill that could touch production, an
// unproven or spent start): nothing ran. The list of them is the visibility
// query RefusedStarts.
const RunRefused = "refused"

// RefusedStarts is the visibility query of the runs refused at their start.
const RefusedStarts = `LifeboatState = "refused"`

// refusedPrefix begins the details of a refused run's cancellation.
const refusedPrefix = "refused: "

// refuseStart ends a run refused before any step ran: err (the refusal, an
// application error saying what to fix) becomes a cancellation whose
// details are the reason, after the run says "refused" to the list and the
// reason to the run's page (the current details' pane shows about three
// lines: the reason comes first, the way on is one short line).
func refuseStart(ctx workflow.Context, err error) error {
	if workflow.GetVersion(ctx, versionRefusedStart, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return err
	}
	why := causeMessage(err)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SAState.ValueSet(RunRefused))
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Refused:** %s\n\nNothing ran. Fix it and start again.", why))
	return temporal.NewCanceledError(refusedPrefix + why)
}
