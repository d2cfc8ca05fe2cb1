package starter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Schedule policy choices for drills (documented in docs/operating.md):
//   - overlap: skip — a drill still running when the next one is due is not
//     doubled up; the skipped slot is counted by Temporal.
//   - catch-up window: one hour — after a server outage a drill that missed
//     its slot by less than an hour still runs; older slots are dropped rather
//     than starting a drill at a time nobody expects.
const (
	ScheduleOverlap       = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
	ScheduleCatchupWindow = time.Hour
)

// scheduleMemoKey holds a ScheduleRequest in the schedule's memo, so listing
// shows the runbook and mode without decoding the action's arguments.
const scheduleMemoKey = "lifeboat"

// ScheduleRequest asks for a recurring drill or tabletop of one runbook.
type ScheduleRequest struct {
	Runbook        string `json:"runbook"`
	Mode           string `json:"mode"`
	Cron           string `json:"cron"`
	PauseOnFailure bool   `json:"pauseOnFailure"`
	RequestedBy    string `json:"requestedBy,omitempty"`
	// TimeZone is an IANA name the cron is read in (default UTC).
	TimeZone string `json:"timeZone,omitempty"`
	// Plan: Runbook names a recovery plan (each run a RecoveryPlanWorkflow).
	Plan bool `json:"plan,omitempty"`
}

// ScheduleID is the id of the schedule of runbook in mode.
func ScheduleID(runbook, mode string) string { return fmt.Sprintf("lifeboat-%s-%s", mode, runbook) }

// ScheduleInfo is one schedule as `lifeboat drill schedules` lists it.
type ScheduleInfo struct {
	ID             string      `json:"id"`
	Runbook        string      `json:"runbook"`
	Mode           string      `json:"mode"`
	Cron           string      `json:"cron"`
	PauseOnFailure bool        `json:"pauseOnFailure"`
	Paused         bool        `json:"paused"`
	Note           string      `json:"note,omitempty"`
	NextRuns       []time.Time `json:"nextRuns,omitempty"`
	LastRun        *LastRun    `json:"lastRun,omitempty"`
	Running        []string    `json:"running,omitempty"`
}

// LastRun is the most recent run a schedule started.
type LastRun struct {
	WorkflowID string    `json:"workflowId"`
	At         time.Time `json:"at"`
	// Result is the run's LifeboatState (succeeded, failed, aborted, or a
	// running state).
	Result string `json:"result"`
}

// Check returns a clear error for a schedule request that cannot work.
func (r ScheduleRequest) Check() error {
	switch {
	case r.Runbook == "":
		return errors.New("schedule: name the runbook to drill")
	case r.Mode != workflows.ModeDrill && r.Mode != workflows.ModeTabletop:
		return fmt.Errorf("schedule: --mode %q: a schedule runs drill or tabletop, never a real failover", r.Mode)
	case strings.TrimSpace(r.Cron) == "":
		return errors.New(`schedule: --cron is missing, e.g. --cron "0 3 1 * *" (03:00 UTC on the 1st of each month)`)
	case len(strings.Fields(r.Cron)) != 5 && !strings.HasPrefix(r.Cron, "@"):
		return fmt.Errorf(`schedule: --cron %q: use five fields "minute hour day-of-month month day-of-week", e.g. "0 3 1 * *"`, r.Cron)
	}
	if r.TimeZone != "" {
		if _, err := time.LoadLocation(r.TimeZone); err != nil {
			return fmt.Errorf("schedule: --tz %q is not an IANA time zone (e.g. Europe/Berlin)", r.TimeZone)
		}
	}
	return nil
}

// CreateSchedule creates the schedule of a recurring drill. Every run it
// starts is a RestoreWorkflow with its own id (the schedule id, "-scheduled-"
// and the scheduled time) and its own evidence.
func (s *Starter) CreateSchedule(ctx context.Context, r ScheduleRequest) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	id := ScheduleID(r.Runbook, r.Mode)
	req := workflows.Request{Runbook: r.Runbook, Mode: r.Mode, RequestedBy: cmp.Or(r.RequestedBy, "schedule"),
		Reason: fmt.Sprintf("scheduled %s (%s, %s)", r.Mode, id, r.Cron), FailIfUnsuccessful: r.PauseOnFailure}
	if r.Plan {
		req.Runbook, req.Plan = "", r.Runbook
	}
	runs := fmt.Sprintf("lifeboat-%s-%s-scheduled", r.Runbook, r.Mode)
	// The owner signs a grant for the schedule's runs (see workflows.ScheduleGrant).
	if key, err := keyFor(s.keys, req.RequestedBy); err != nil {
		return "", fmt.Errorf("signing the schedule's grant as %s: %w", req.RequestedBy, err)
	} else if key != nil {
		req.Grant = &workflows.ScheduleGrant{Workflows: runs, SignedAt: signingTime()}
		if req.Grant.Signature, err = proof.SignDecision(workflows.GrantDecision(req), key); err != nil {
			return "", err
		}
	}
	_, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   id,
		Spec: client.ScheduleSpec{CronExpressions: []string{r.Cron}, TimeZoneName: r.TimeZone},
		Action: &client.ScheduleWorkflowAction{
			ID: runs, Workflow: req.WorkflowType(),
			Args: []any{req}, TaskQueue: s.taskQueue, StaticSummary: fmt.Sprintf("scheduled %s of %s", r.Mode, r.Runbook),
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SARunbook.ValueSet(r.Runbook),
				workflows.SAMode.ValueSet(r.Mode), workflows.SAState.ValueSet(workflows.RunResolving)),
		},
		Overlap:        ScheduleOverlap,
		CatchupWindow:  ScheduleCatchupWindow,
		PauseOnFailure: r.PauseOnFailure,
		Memo:           map[string]any{scheduleMemoKey: r},
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return id, fmt.Errorf("schedule %s exists: `lifeboat drill delete %s` first to change it", id, id)
	}
	if err != nil {
		return id, fmt.Errorf("creating schedule %s: %w", id, err)
	}
	return id, nil
}

// Schedules lists lifeboat's schedules with their next runs and last result.
func (s *Starter) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	it, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, err
	}
	var out []ScheduleInfo
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(e.ID, "lifeboat-") {
			continue
		}
		info, err := s.DescribeSchedule(ctx, e.ID)
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				continue // deleted since the list was read
			}
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DescribeSchedule returns one schedule.
func (s *Starter) DescribeSchedule(ctx context.Context, id string) (ScheduleInfo, error) {
	d, err := s.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if err != nil {
		return ScheduleInfo{}, scheduleError(id, err)
	}
	info := ScheduleInfo{ID: id, NextRuns: d.Info.NextActionTimes}
	if f := d.Memo.GetFields()[scheduleMemoKey]; f != nil {
		var r ScheduleRequest
		if err := s.DataConverter().FromPayload(f, &r); err == nil {
			info.Runbook, info.Mode, info.Cron, info.PauseOnFailure = r.Runbook, r.Mode, r.Cron, r.PauseOnFailure
		}
	}
	if st := d.Schedule.State; st != nil {
		info.Paused, info.Note = st.Paused, st.Note
	}
	for _, w := range d.Info.RunningWorkflows {
		info.Running = append(info.Running, w.WorkflowID)
	}
	if n := len(d.Info.RecentActions); n > 0 {
		a := d.Info.RecentActions[n-1]
		if a.StartWorkflowResult != nil {
			info.LastRun = &LastRun{WorkflowID: a.StartWorkflowResult.WorkflowID, At: a.ActualTime,
				Result: s.runState(ctx, a.StartWorkflowResult.WorkflowID)}
		}
	}
	return info, nil
}

// runState is a run's LifeboatState, or the workflow status when it has none.
func (s *Starter) runState(ctx context.Context, id string) string {
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "unknown"
	}
	info := d.GetWorkflowExecutionInfo()
	if state := keyword(info.GetSearchAttributes(), workflows.SAState); state != "" {
		return state
	}
	return strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// PauseSchedule pauses a schedule with a note.
func (s *Starter) PauseSchedule(ctx context.Context, id, note string) error {
	return scheduleError(id, s.c.ScheduleClient().GetHandle(ctx, id).Pause(ctx, client.SchedulePauseOptions{Note: note}))
}

// UnpauseSchedule resumes a schedule.
func (s *Starter) UnpauseSchedule(ctx context.Context, id, note string) error {
	return scheduleError(id, s.c.ScheduleClient().GetHandle(ctx, id).Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}))
}

// TriggerSchedule starts the schedule's drill now (skipped if one is running).
func (s *Starter) TriggerSchedule(ctx context.Context, id string) error {
	return scheduleError(id, s.c.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: ScheduleOverlap}))
}

// DeleteSchedule deletes a schedule; runs it started are not touched.
func (s *Starter) DeleteSchedule(ctx context.Context, id string) error {
	return scheduleError(id, s.c.ScheduleClient().GetHandle(ctx, id).Delete(ctx))
}

// keyword reads a keyword search attribute ("" when unset). Search
// attributes are never encoded by a payload codec, so the default converter
// reads them whatever converter the client uses.
func keyword(sa *commonpb.SearchAttributes, key temporal.SearchAttributeKeyKeyword) string {
	var v string
	if f := sa.GetIndexedFields()[key.GetName()]; f != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(f, &v)
	}
	return v
}

func scheduleError(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no schedule %s (`lifeboat drill schedules` lists them): %w", id, err)
	}
	return err
}
