package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// finishingWait bounds how long Evidence waits for a run whose steps have
// all ended while it stores its evidence and closes.
const finishingWait = 30 * time.Second

// Evidence rebuilds a finished run's evidence from its history on the server
// (see EvidenceFromHistory). A run whose steps have all ended is waited for
// (it is storing its evidence); a run still going is an error that says what
// it waits for.
func (s *Starter) Evidence(ctx context.Context, id string) (record.Evidence, error) {
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return record.Evidence{}, explain(id, err)
	}
	if d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st, _ := s.Status(ctx, id)
		if !st.Finished {
			waits := ""
			if len(st.Pending) > 0 {
				waits = "; it waits for: " + st.Pending[0].Message
			}
			return record.Evidence{}, fmt.Errorf("run %s is still running (state %s)%s. `lifeboat status %s` shows its progress", id, st.State, waits, id)
		}
		wctx, cancel := context.WithTimeout(ctx, finishingWait)
		defer cancel()
		_ = s.c.GetWorkflow(wctx, id, "").Get(wctx, nil) // its outcome is in the history
	}
	h, err := s.History(ctx, id)
	if err != nil {
		return record.Evidence{}, err
	}
	return EvidenceFromHistory(h, s.DataConverter())
}

// EvidenceFromHistory rebuilds a run's evidence from its event history alone,
// so the record survives the loss of the evidence sink. It is, in order: the
// result of the completed workflow; the evidence carried by an
// ErrUnsuccessful failure; or, for a run terminated after it assembled its
// evidence, the record it sent to evidence.store. When the worker sealed the
// final record, it is that record, seal included (see SealedFromHistory):
// the same JSON as the evidence file.
func EvidenceFromHistory(h *historypb.History, dc converter.DataConverter) (record.Evidence, error) {
	var ev record.Evidence
	if len(h.GetEvents()) == 0 {
		return ev, fmt.Errorf("the history is empty")
	}
	if rec, ok, err := SealedFromHistory(h, dc); err != nil {
		return ev, err
	} else if ok {
		return ev, json.Unmarshal(rec.JSON, &ev)
	}
	id := workflowIDOf(h)
	last := h.Events[len(h.Events)-1]
	switch last.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		res := last.GetWorkflowExecutionCompletedEventAttributes().GetResult()
		if err := dc.FromPayloads(res, &ev); err != nil {
			return ev, fmt.Errorf("run %s: decoding its result: %w", id, err)
		}
		if ev.WorkflowID != "" {
			return ev, nil
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		f := last.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		if app := f.GetApplicationFailureInfo(); app.GetType() == workflows.ErrUnsuccessful && app.GetDetails() != nil {
			if err := dc.FromPayloads(app.GetDetails(), &ev); err != nil {
				return ev, fmt.Errorf("run %s: decoding the evidence in its failure: %w", id, err)
			}
			return ev, nil
		}
		if stored, ok, err := lastStored(h, dc); ok || err != nil {
			return stored, err
		}
		return ev, fmt.Errorf("run %s never started its steps, so it has no evidence: %s", id, f.GetMessage())
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: // refused at its start (workflows.RefusedStarts)
		if why, refused := refusedAtStart(h, dc); refused {
			if stored, ok, err := lastStored(h, dc); ok || err != nil {
				return stored, err
			}
			return ev, fmt.Errorf("run %s never started its steps, so it has no evidence: %s", id, why)
		}
	}
	if stored, ok, err := lastStored(h, dc); ok || err != nil {
		return stored, err
	}
	return ev, fmt.Errorf("run %s ended (%s) before it assembled its evidence", id, last.GetEventType())
}

// lastStored is the evidence of the last evidence.store activity scheduled in h.
func lastStored(h *historypb.History, dc converter.DataConverter) (record.Evidence, bool, error) {
	for i := len(h.Events) - 1; i >= 0; i-- {
		a := h.Events[i].GetActivityTaskScheduledEventAttributes()
		if a == nil || a.GetActivityType().GetName() != workflows.StoreActivity {
			continue
		}
		ev, err := storeInput(a, dc)
		return ev, true, err
	}
	return record.Evidence{}, false, nil
}

// storeInput is the evidence a scheduled evidence.store was sent.
func storeInput(a *historypb.ActivityTaskScheduledEventAttributes, dc converter.DataConverter) (record.Evidence, error) {
	var in struct {
		Args struct {
			Evidence record.Evidence `json:"evidence"`
		} `json:"args"`
	}
	if err := dc.FromPayloads(a.GetInput(), &in); err != nil {
		return record.Evidence{}, fmt.Errorf("decoding the evidence sent to %s: %w", workflows.StoreActivity, err)
	}
	return in.Args.Evidence, nil
}

func workflowIDOf(h *historypb.History) string {
	for _, e := range h.Events {
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			return a.GetWorkflowId()
		}
	}
	return "?"
}
