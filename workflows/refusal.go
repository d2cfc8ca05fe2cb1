package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// versionRefusedStart guards how a run the worker refuses before any step
// ran ends: it closes Canceled, not Failed — nothing was attempted, so the
// workflow list does not show a failed recovery — with LifeboatState
// "refused" and the reason as the cancellation's details and the current
// details. Older runs ended Failed with the same message.
//
// Two starts that fail stay Failed: a request with FailIfUnsuccessful (a
// schedule pauses only on a failed run, and a refused scheduled drill must
// pause its schedule; LifeboatState still says refused), and a start the
// worker could not answer (a resolve or signature-check activity that timed
// out or kept failing: an outage to alert on, not a refusal of the request).
const versionRefusedStart = "refused-start"

// RunRefused is the LifeboatState of a run the worker refused at its start
// (unknown or invalid runbook, a drill that could touch production, an
// unproven or spent start): nothing ran. The list of them is the visibility
// query RefusedStarts.
const RunRefused = "refused"

// RefusedStarts is the visibility query of the runs refused at their start.
const RefusedStarts = `LifeboatState = "refused"`

// RefusedPrefix begins the details of a refused run's cancellation.
const RefusedPrefix = "refused: "

// refusedDetailChars bounds the reason in the current details, a pane of
// about three lines (the whole reason is the run's result).
const refusedDetailChars = 240

// refuseStart ends a run refused before any step ran: err (the refusal, an
// application error saying what to fix) becomes a cancellation whose
// details are the reason, after the run says "refused" to the list and the
// reason to the run's page. done runs first, once the version says so: the
// run is over, and nothing else (an abort by a cancellation that arrived in
// the same workflow task) may publish another state after this one.
func refuseStart(ctx workflow.Context, req Request, err error, done func()) error {
	if workflow.GetVersion(ctx, versionRefusedStart, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return err
	}
	if done != nil {
		done()
	}
	why := causeMessage(err)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SAState.ValueSet(RunRefused))
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Refused:** %s\n\nNothing ran. Fix it and start again.", capTextAt(why, refusedDetailChars)))
	if req.FailIfUnsuccessful {
		return err
	}
	return temporal.NewCanceledError(RefusedPrefix + why)
}

// refuse is refuseStart for a run: a start the worker could not answer
// (r.unanswered) is no refusal and fails as it did.
func (r *run) refuse(ctx workflow.Context, err error) error {
	if r.unanswered {
		return err
	}
	return refuseStart(ctx, r.req, err, func() { r.finished = true })
}

// answered tells whether an activity's failure is the worker's answer (a
// non-retryable application error: no such runbook, invalid, refused)
// rather than no answer at all (a timeout, a retryable error that kept
// failing: the catalog unreadable, visibility down).
func answered(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable()
}
