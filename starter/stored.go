package starter

import (
	"context"
	"fmt"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
)

// StoredRecords lists what Temporal says was stored: for every finished
// lifeboat run of this starter's task queue (every run id, resets
// included), the final evidence record its history shows the worker
// stored — where, and the very bytes. An auditor compares it with the
// evidence store (evidence.Report.CrossCheck): a record deleted together
// with its chain position and head is still missed here.
func (s *Starter) StoredRecords(ctx context.Context) ([]evidence.StoredByRun, error) {
	q := runsQuery(false) + fmt.Sprintf(" AND TaskQueue = '%s'", s.taskQueue)
	var out []evidence.StoredByRun
	var token []byte
	for {
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token, PageSize: 200})
		if err != nil {
			return nil, fmt.Errorf("listing finished runs: %w", err)
		}
		for _, e := range resp.Executions {
			id, runID := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			h, err := s.runHistory(ctx, id, runID)
			if err != nil {
				return nil, err
			}
			rec, ok, err := SealedFromHistory(h, s.DataConverter())
			if err != nil {
				return nil, fmt.Errorf("run %s (%s): %w", id, runID, err)
			}
			if ok {
				out = append(out, evidence.StoredByRun{Run: id + " (" + runID + ")", Location: rec.Location, JSON: rec.JSON})
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}
