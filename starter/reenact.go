package starter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// ResolvedFromHistory returns the runbook a run resolved (its exact text and
// content hash), as recorded in its history.
func ResolvedFromHistory(h *historypb.History, dc converter.DataConverter) (runbooks.Resolved, error) {
	var res runbooks.Resolved
	var scheduled int64
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.ResolveActivity {
			scheduled = e.GetEventId()
		}
		if a := e.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled != 0 && a.GetScheduledEventId() == scheduled {
			if err := dc.FromPayloads(a.GetResult(), &res); err != nil {
				return res, fmt.Errorf("decoding the resolved runbook: %w", err)
			}
			return res, res.Parse()
		}
	}
	return res, fmt.Errorf("the history holds no resolved runbook (the run never started its steps)")
}

// Teardown starts the teardown (spec.drill.teardown only) of a past drill
// that was terminated or whose worker was lost, from the runbook text its
// history recorded, requested by `by`.
func (s *Starter) Teardown(ctx context.Context, pastID, by string) (Run, error) {
	res, mode, err := s.Recorded(ctx, pastID)
	if err != nil {
		return Run{}, fmt.Errorf("run %s cannot be torn down: %w", pastID, err)
	}
	if mode != workflows.ModeDrill {
		return Run{}, fmt.Errorf("run %s is a %s, not a drill: only a drill has a teardown", pastID, mode)
	}
	// The worker reads the teardown from the drill's own history (TeardownOf).
	return s.Start(ctx, workflows.Request{Mode: workflows.ModeTeardown, TeardownOf: pastID, RequestedBy: by,
		Reason: fmt.Sprintf("teardown of drill %s (%s, %s)", pastID, res.Runbook.Metadata.Name, res.Hash)})
}

// Recorded is what a past run recorded in its history: the runbook it
// resolved and the mode it was started in. The worker reads a drill's
// teardown with it (activities.Resolver.Drills).
//
// The latest run of id may be a start refused under an id an earlier run
// used (the UI's and the temporal CLI's starts allow a closed id again):
// then the newest earlier run of the id that got past its start is the
// record — the drill that ran, whose teardown is due.
func (s *Starter) Recorded(ctx context.Context, id string) (runbooks.Resolved, string, error) {
	h, err := s.OwnHistory(ctx, id)
	if err != nil {
		return runbooks.Resolved{}, "", err
	}
	if _, refused := refusedAtStart(h, s.DataConverter()); refused {
		if res, mode, ok := s.earlierRecorded(ctx, id, h); ok {
			return res, mode, nil
		}
	}
	return RecordedFromHistory(h, s.DataConverter())
}

// earlierRecorded is the record of the newest run of id before the one
// latest holds that got past its start, if any.
func (s *Starter) earlierRecorded(ctx context.Context, id string, latest *historypb.History) (runbooks.Resolved, string, bool) {
	list, err := s.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", id)})
	if err != nil {
		return runbooks.Resolved{}, "", false
	}
	runs := list.GetExecutions()
	slices.SortFunc(runs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return b.GetStartTime().AsTime().Compare(a.GetStartTime().AsTime())
	})
	// A lifeboat run never continues as new: its original run id is its own.
	skip := latest.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId()
	for _, run := range runs {
		runID := run.GetExecution().GetRunId()
		if runID == skip {
			continue
		}
		h, err := s.runHistory(ctx, id, runID)
		if err != nil || s.own(id, h) != nil {
			continue
		}
		if res, mode, err := RecordedFromHistory(h, s.DataConverter()); err == nil {
			return res, mode, true
		}
	}
	return runbooks.Resolved{}, "", false
}

// RecordedFromHistory is Recorded of a history: the runbook the run
// resolved and its mode. A run refused at its start is no such record, even
// when it had resolved its runbook before a later check refused it: nothing
// ran, so nothing of it needs tearing down.
func RecordedFromHistory(h *historypb.History, dc converter.DataConverter) (runbooks.Resolved, string, error) {
	if why, ok := refusedAtStart(h, dc); ok {
		return runbooks.Resolved{}, "", fmt.Errorf("it was refused at its start, so nothing ran: %s", why)
	}
	res, err := ResolvedFromHistory(h, dc)
	if err != nil {
		return res, "", err
	}
	var req workflows.Request
	if first := h.GetEvents(); len(first) > 0 {
		if a := first[0].GetWorkflowExecutionStartedEventAttributes(); a != nil {
			_ = dc.FromPayloads(a.GetInput(), &req)
		}
	}
	return res, req.Mode, nil
}

// refusedAtStart is the reason a run closed refused at its start: Canceled
// with workflows.RefusedPrefix, or (a scheduled run, or a run of a worker
// before the refused-start version) Failed saying "cannot start: …".
func refusedAtStart(h *historypb.History, dc converter.DataConverter) (string, bool) {
	events := h.GetEvents()
	if len(events) == 0 {
		return "", false
	}
	last := events[len(events)-1]
	if a := last.GetWorkflowExecutionCanceledEventAttributes(); a != nil {
		var why string
		if a.GetDetails() != nil && dc.FromPayloads(a.GetDetails(), &why) == nil {
			return strings.CutPrefix(why, workflows.RefusedPrefix)
		}
	}
	if a := last.GetWorkflowExecutionFailedEventAttributes(); a != nil {
		msg := a.GetFailure().GetMessage()
		return msg, strings.HasPrefix(msg, "cannot start: ")
	}
	return "", false
}

// Reenactment is a drill started from a past run's runbook text.
type Reenactment struct {
	Run  Run
	Then record.Evidence
}

// Reenact starts a drill of the exact runbook text a past run used — pinned by
// the content hash recorded in its history, not today's catalog file — with
// the same runbook and parameters, requested by `by`.
func (s *Starter) Reenact(ctx context.Context, pastID, by string) (Reenactment, error) {
	h, err := s.History(ctx, pastID)
	if err != nil {
		return Reenactment{}, err
	}
	then, err := EvidenceFromHistory(h, s.DataConverter())
	if err != nil {
		return Reenactment{}, fmt.Errorf("run %s cannot be re-enacted: %w", pastID, err)
	}
	res, err := ResolvedFromHistory(h, s.DataConverter())
	if err != nil {
		return Reenactment{}, fmt.Errorf("run %s cannot be re-enacted: %w", pastID, err)
	}
	if got := runbooks.HashOf([]byte(res.Source)); got != then.Runbook.Hash || res.Source == "" {
		return Reenactment{}, fmt.Errorf("run %s recorded runbook text whose hash %s is not the %s its evidence names: the history is not trustworthy for a re-enactment", pastID, got, then.Runbook.Hash)
	}
	req := workflows.Request{Mode: workflows.ModeDrill, InlineRunbook: res.Source, ReenactmentOf: pastID, RequestedBy: by,
		Reason: fmt.Sprintf("re-enactment of %s (%s of %s v%d, %s)", pastID, then.Mode, then.Runbook.Name, then.Runbook.Version, then.Runbook.Hash)}
	if runbooks.KindOf([]byte(res.Source)) == runbooks.PlanKind {
		if req.PinnedMembers, err = s.memberTexts(ctx, then); err != nil {
			return Reenactment{}, fmt.Errorf("plan run %s cannot be re-enacted: %w", pastID, err)
		}
		req.InlineRunbook, req.InlinePlan = "", res.Source
	}
	run, err := s.Start(ctx, req)
	if err != nil {
		return Reenactment{}, err
	}
	return Reenactment{Run: run, Then: then}, nil
}

// Failback starts the failback of a finished failover, requested by `by`
// for reason. The worker builds the failback from the failover's own record
// in history (the client only names it); the runbook name is read here so
// the run is listed and signed under it.
func (s *Starter) Failback(ctx context.Context, failoverID, by, reason string) (Run, error) {
	h, err := s.History(ctx, failoverID)
	if err != nil {
		return Run{}, err
	}
	ev, err := EvidenceFromHistory(h, s.DataConverter())
	if err != nil {
		return Run{}, fmt.Errorf("run %s cannot be failed back: %w", failoverID, err)
	}
	if ev.Mode != workflows.ModeFailover {
		return Run{}, fmt.Errorf("run %s is a %s: only a failover is failed back", failoverID, ev.Mode)
	}
	return s.Start(ctx, workflows.Request{Runbook: ev.Runbook.Name, Mode: workflows.ModeFailback, FailbackOf: failoverID,
		RequestedBy: by, Reason: reason})
}

// memberTexts reads, from each member run of a plan run, the runbook text it
// ran, checked against the hash the plan's evidence names for it. A member
// that never started recorded none: the re-enactment reads today's.
func (s *Starter) memberTexts(ctx context.Context, plan record.Evidence) (map[string]string, error) {
	out := map[string]string{}
	if plan.Plan == nil {
		return out, nil
	}
	for _, m := range plan.Plan.Members {
		if m.WorkflowID == "" {
			continue
		}
		h, err := s.History(ctx, m.WorkflowID)
		if err != nil {
			return nil, err
		}
		res, err := ResolvedFromHistory(h, s.DataConverter())
		if err != nil {
			continue // refused before it resolved: nothing ran
		}
		if m.Hash != "" && runbooks.HashOf([]byte(res.Source)) != m.Hash {
			return nil, fmt.Errorf("member run %s recorded a text whose hash is not the %s the plan's evidence names", m.WorkflowID, m.Hash)
		}
		out[m.Runbook] = res.Source
	}
	return out, nil
}
