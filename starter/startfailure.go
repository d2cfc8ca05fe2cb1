package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// StartFailedError says a run ended without starting its runbook: an unknown
// or invalid runbook, a drill that could touch production, an action the
// worker cannot run (the worker refused it: the run closed Canceled, or
// Failed on older workers), or a run terminated or timed out while it was
// resolving.
type StartFailedError struct {
	WorkflowID string
	Reason     string
	// Refused is true when the worker refused the run (it closed Canceled,
	// LifeboatState refused); false when the run failed or ended without an
	// answer.
	Refused bool
}

func (e *StartFailedError) Error() string {
	return fmt.Sprintf("run %s did not start: %s", e.WorkflowID, e.Reason)
}

// startFailure returns a *StartFailedError when the run has closed without
// its evidence, nil while it runs or when it ended with evidence.
func (s *Starter) startFailure(ctx context.Context, id string) *StartFailedError {
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil
	}
	var ev record.Evidence
	err = s.c.GetWorkflow(ctx, id, "").Get(ctx, &ev)
	if ok, _ := unsuccessfulEvidence(err, &ev); err == nil || ok {
		return nil
	}
	reason, refused := err.Error(), false
	var ae *temporal.ApplicationError
	var te *temporal.TerminatedError
	var to *temporal.TimeoutError
	var ce *temporal.CanceledError
	switch {
	case errors.As(err, &ae):
		// A refused scheduled run fails (its schedule pauses) and says
		// refused to the list.
		reason, refused = ae.Message(), stateOf(d.GetWorkflowExecutionInfo()) == workflows.RunRefused
	case errors.As(err, &ce):
		reason = "cancelled before it resolved its runbook"
		if why, ok := refusal(err); ok {
			reason, refused = why, true
		}
	case errors.As(err, &te):
		reason = "terminated before it resolved its runbook"
	case errors.As(err, &to):
		reason = "timed out before it resolved its runbook"
	}
	return &StartFailedError{WorkflowID: id, Reason: reason, Refused: refused}
}

// stateOf is the run's LifeboatState search attribute ("" when unset).
func stateOf(info *workflowpb.WorkflowExecutionInfo) string {
	var state string
	if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SAState.GetName()]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &state)
	}
	return state
}

// refusal is the reason the worker refused a run at its start, when err is
// that run's ending: a cancellation whose details say "refused: …"
// (workflows.RefusedStarts).
func refusal(err error) (string, bool) {
	var ce *temporal.CanceledError
	var why string
	if !errors.As(err, &ce) || !ce.HasDetails() || ce.Details(&why) != nil {
		return "", false
	}
	return strings.CutPrefix(why, workflows.RefusedPrefix)
}

// AwaitStart waits (up to the context's deadline) until the run has resolved
// its runbook or ended; a run the worker refused returns *StartFailedError.
func (s *Starter) AwaitStart(ctx context.Context, id string) error {
	for {
		st, err := s.Status(ctx, id)
		var failed *StartFailedError
		if errors.As(err, &failed) {
			return err
		}
		if err == nil && st.State != workflows.RunResolving {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // still resolving (no worker yet?): status tells later
		case <-time.After(200 * time.Millisecond):
		}
	}
}
