package starter

import (
	"context"
	"fmt"
	"os"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// History returns a run's full event history (the latest run of the id).
func (s *Starter) History(ctx context.Context, id string) (*historypb.History, error) {
	return s.runHistory(ctx, id, "")
}

// OwnHistory is History for a run a worker builds on — a teardown's drill,
// a failback's failover, a re-enactment's past run: it must be a lifeboat
// run (RestoreWorkflow or RecoveryPlanWorkflow) of this starter's task
// queue, so a run driven by another worker (or a workflow of another
// program) in the same namespace cannot pose as one.
func (s *Starter) OwnHistory(ctx context.Context, id string) (*historypb.History, error) {
	h, err := s.History(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.own(id, h); err != nil {
		return nil, err
	}
	return h, nil
}

// own says why h, a history of run id, is not a lifeboat run of this
// starter's task queue (nil when it is).
func (s *Starter) own(id string, h *historypb.History) error {
	var a *historypb.WorkflowExecutionStartedEventAttributes
	if evs := h.GetEvents(); len(evs) > 0 {
		a = evs[0].GetWorkflowExecutionStartedEventAttributes()
	}
	typ, queue := a.GetWorkflowType().GetName(), a.GetTaskQueue().GetName()
	if a == nil || (typ != workflows.RestoreWorkflowName && typ != workflows.RecoveryPlanWorkflowName) || queue != s.taskQueue {
		return fmt.Errorf("run %s is a %q on task queue %q, not a lifeboat run of this worker's task queue %q: a worker builds only on its own runs", id, typ, queue, s.taskQueue)
	}
	return nil
}

// runHistory returns the full event history of one run ("": the latest).
func (s *Starter) runHistory(ctx context.Context, id, runID string) (*historypb.History, error) {
	it := s.c.GetWorkflowHistory(ctx, id, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", id, explain(id, err))
		}
		h.Events = append(h.Events, ev)
	}
	return h, nil
}

// HistoryJSON returns a run's full event history as JSON, in the format the
// SDK's workflow replayer (and `temporal workflow show --output json`) reads.
func (s *Starter) HistoryJSON(ctx context.Context, id string) ([]byte, error) {
	h, err := s.History(ctx, id)
	if err != nil {
		return nil, err
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
}

// LoadHistoryFile reads a history exported as JSON (HistoryJSON, or
// `temporal workflow show --output json`).
func LoadHistoryFile(path string) (*historypb.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s is not a workflow history in JSON (export one with `temporal workflow show -w ID --output json`): %w", path, err)
	}
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("%s holds no history events", path)
	}
	return h, nil
}
