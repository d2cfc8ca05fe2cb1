package starter

import (
	"context"
	"fmt"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Identities is the lifeboat.identities activity: from the run's own
// history, the Temporal client identity the server recorded for its start
// and for each operator signal and accepted update, in history order (see
// workflows.MessageIdentity). The worker registers it with its own client.
func (s *Starter) Identities(ctx context.Context, workflowID, runID string) ([]workflows.MessageIdentity, error) {
	h, err := s.runHistory(ctx, workflowID, runID)
	if err != nil {
		return nil, err
	}
	return IdentitiesOf(h, s.DataConverter()), nil
}

// IdentitiesOf lists the start's and every operator message's recorded
// client identity in h. A payload that does not decode is listed with
// what is known (its name and identity).
func IdentitiesOf(h *historypb.History, dc converter.DataConverter) []workflows.MessageIdentity {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	var out []workflows.MessageIdentity
	var msg struct {
		Step        string `json:"step"`
		By          string `json:"by"`
		RequestedBy string `json:"requestedBy"`
	}
	for _, e := range h.GetEvents() {
		msg.Step, msg.By, msg.RequestedBy = "", "", ""
		switch {
		case e.GetWorkflowExecutionStartedEventAttributes() != nil:
			a := e.GetWorkflowExecutionStartedEventAttributes()
			_ = dc.FromPayloads(a.GetInput(), &msg)
			out = append(out, workflows.MessageIdentity{Name: "start", By: msg.RequestedBy, Identity: startIdentity(a)})
		case e.GetWorkflowExecutionSignaledEventAttributes() != nil:
			a := e.GetWorkflowExecutionSignaledEventAttributes()
			_ = dc.FromPayloads(a.GetInput(), &msg)
			id := a.GetIdentity()
			if x := a.GetExternalWorkflowExecution(); x != nil && x.GetWorkflowId() != "" {
				// The server's own identity says nothing: name the plan that forwarded it.
				id = "forwarded by plan run " + x.GetWorkflowId()
			}
			out = append(out, workflows.MessageIdentity{Name: a.GetSignalName(), Step: msg.Step, By: msg.By, Identity: id})
		case e.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil:
			req := e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			_ = dc.FromPayloads(req.GetInput().GetArgs(), &msg)
			out = append(out, workflows.MessageIdentity{Name: req.GetInput().GetName(), Step: msg.Step, By: msg.By, Identity: req.GetMeta().GetIdentity()})
		}
	}
	return out
}

// startIdentity is who started a run: the client identity the server
// recorded, or the plan run that started it as a member.
func startIdentity(a *historypb.WorkflowExecutionStartedEventAttributes) string {
	if p := a.GetParentWorkflowExecution(); p != nil {
		return "started by plan run " + p.GetWorkflowId()
	}
	return a.GetIdentity()
}

// StartIdentity reads the first event of a run's history — its start —
// and returns who started it (see IdentitiesOf), without reading the rest.
func (s *Starter) StartIdentity(ctx context.Context, workflowID, runID string) (string, error) {
	it := s.c.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	if !it.HasNext() {
		return "", fmt.Errorf("the history of %s is empty", workflowID)
	}
	e, err := it.Next()
	if err != nil {
		return "", fmt.Errorf("reading the start of %s: %w", workflowID, explain(workflowID, err))
	}
	a := e.GetWorkflowExecutionStartedEventAttributes()
	if a == nil {
		return "", fmt.Errorf("the first event of %s is not its start", workflowID)
	}
	return startIdentity(a), nil
}
