package starter

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// RunFilter selects past runs.
type RunFilter struct {
	Runbook string // "" = every runbook
	Mode    string // "" = every mode
	Limit   int    // 0 = 50
}

// PastRun is one finished run and its evidence, rebuilt from history.
type PastRun struct {
	WorkflowID string           `json:"workflowId"`
	Runbook    string           `json:"runbook"`
	Mode       string           `json:"mode"`
	Started    time.Time        `json:"started"`
	Closed     time.Time        `json:"closed"`
	Evidence   *record.Evidence `json:"evidence,omitempty"`
	Problem    string           `json:"problem,omitempty"` // why there is no evidence
}

// runsQuery is the visibility query of lifeboat's runs (restore and plan
// runs): the open ones, or the finished ones.
func runsQuery(open bool) string {
	status := "ExecutionStatus != 'Running'"
	if open {
		status = "ExecutionStatus = 'Running'"
	}
	return fmt.Sprintf("(WorkflowType = '%s' OR WorkflowType = '%s') AND %s", workflows.RestoreWorkflowName, workflows.RecoveryPlanWorkflowName, status)
}

// query is the visibility query of the filter.
func (f RunFilter) query() (string, error) {
	q := runsQuery(false)
	for _, c := range []struct{ key, v string }{{workflows.SARunbook.GetName(), f.Runbook}, {workflows.SAMode.GetName(), f.Mode}} {
		if c.v == "" {
			continue
		}
		if strings.ContainsAny(c.v, `'"\`) {
			return "", fmt.Errorf("%q: a runbook or mode name has no quotes", c.v)
		}
		q += fmt.Sprintf(" AND %s = '%s'", c.key, c.v)
	}
	return q, nil
}

// PastRuns lists finished runs, newest first, each with its evidence rebuilt
// from its history (so the list does not depend on the evidence sink).
func (s *Starter) PastRuns(ctx context.Context, f RunFilter) ([]PastRun, error) {
	q, err := f.query()
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var out []PastRun
	var token []byte
	for len(out) < limit {
		resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token, PageSize: int32(limit)})
		if err != nil {
			return nil, fmt.Errorf("listing runs: %w", err)
		}
		for _, e := range resp.Executions {
			if len(out) == limit {
				break
			}
			id := e.GetExecution().GetWorkflowId()
			run := PastRun{WorkflowID: id, Started: e.GetStartTime().AsTime(), Closed: e.GetCloseTime().AsTime(),
				Runbook: keyword(e.GetSearchAttributes(), workflows.SARunbook), Mode: keyword(e.GetSearchAttributes(), workflows.SAMode)}
			h, err := s.History(ctx, id)
			if err == nil {
				var ev record.Evidence
				if ev, err = EvidenceFromHistory(h, s.DataConverter()); err == nil {
					run.Evidence = &ev
				}
			}
			if err != nil {
				run.Problem = err.Error()
			}
			out = append(out, run)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}

// RunSummary is one run as visibility lists it (no history read).
type RunSummary struct {
	WorkflowID string    `json:"workflowId"`
	Runbook    string    `json:"runbook"`
	Mode       string    `json:"mode"`
	Started    time.Time `json:"started"`
}

// Runs lists up to limit runs (restore runs and plan runs), newest first:
// the open ones when open is true, else the finished ones. It reads only
// visibility, so it is quick enough for shell completion.
func (s *Starter) Runs(ctx context.Context, open bool, limit int) ([]RunSummary, error) {
	resp, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: runsQuery(open), PageSize: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	var out []RunSummary
	for _, e := range resp.Executions {
		sa := e.GetSearchAttributes()
		out = append(out, RunSummary{WorkflowID: e.GetExecution().GetWorkflowId(), Started: e.GetStartTime().AsTime(),
			Runbook: keyword(sa, workflows.SARunbook), Mode: keyword(sa, workflows.SAMode)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}
