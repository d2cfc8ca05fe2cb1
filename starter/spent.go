package starter

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"go.temporal.io/api/workflowservice/v1"
)

// OtherChains is the lifeboat.startRuns activity: the run ids of every
// execution under workflowID that is not of the chain firstRunID begins
// (a reset, retry or continue-as-new keeps the first run id; a new start
// under the same id with AllowDuplicate or TerminateIfRunning does not).
// A signed start names its workflow id, not a run: a run whose workflow id
// already had another chain refuses its start's signature as spent. The
// worker registers it with its own client; it reads Temporal's visibility.
func (s *Starter) OtherChains(ctx context.Context, workflowID, firstRunID string) ([]string, error) {
	var out []string
	var token []byte
	for {
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowId = " + strconv.Quote(workflowID), NextPageToken: token, PageSize: 100})
		if err != nil {
			return nil, fmt.Errorf("listing the runs of %s in Temporal's visibility: %w", workflowID, err)
		}
		for _, e := range resp.GetExecutions() {
			run, first := e.GetExecution().GetRunId(), e.GetFirstRunId()
			if run == firstRunID || first == firstRunID {
				continue
			}
			if first == "" {
				// The dev server's visibility leaves the first run id out
				// (a reset's new run would look like another chain); the
				// run's own record has it.
				d, err := s.c.DescribeWorkflowExecution(ctx, workflowID, run)
				if err != nil {
					return nil, fmt.Errorf("describing run %s of %s: %w", run, workflowID, err)
				}
				first = d.GetWorkflowExecutionInfo().GetFirstRunId()
			}
			if cmp.Or(first, run) != firstRunID {
				out = append(out, run)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}
