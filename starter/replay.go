package starter

import (
	"fmt"
	"regexp"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// IncompatibleError says that today's workflow code cannot carry a recorded
// run, and at which event of its history it diverges.
type IncompatibleError struct {
	EventID int64  // 0 when the SDK did not name one
	Event   string // the event's type and what it names (activity, timer, marker)
	Err     error  // the replayer's own message
}

func (e *IncompatibleError) Error() string {
	if e.EventID == 0 {
		return fmt.Sprintf("today's code cannot replay this history: %v", e.Err)
	}
	return fmt.Sprintf("today's code diverges at event %d (%s): %v", e.EventID, e.Event, e.Err)
}

func (e *IncompatibleError) Unwrap() error { return e.Err }

// Replay replays a recorded history against today's RestoreWorkflow with the
// SDK's workflow replayer. nil means today's code still carries the run; an
// *IncompatibleError names the event where it does not.
//
// dc decodes the history's payloads: nil is the default converter; an
// encrypted history needs the codec's (worker.Config.DataConverter).
func Replay(h *historypb.History, dc converter.DataConverter) error {
	err := replay(h, dc)
	if err == nil {
		return nil
	}
	ie := &IncompatibleError{Err: err, EventID: eventNamedIn(h, err.Error())}
	if ie.EventID == 0 {
		ie.EventID = firstDivergentTask(h, dc)
	}
	if ie.EventID > 0 {
		ie.Event = describeEvent(h, ie.EventID)
	}
	return ie
}

func replay(h *historypb.History, dc converter.DataConverter) error {
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: dc})
	if err != nil {
		return err
	}
	r.RegisterWorkflowWithOptions(workflows.RestoreWorkflow, workflow.RegisterOptions{Name: workflows.RestoreWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.RecoveryPlanWorkflow, workflow.RegisterOptions{Name: workflows.RecoveryPlanWorkflowName})
	// The run's own workflow id, not the replayer's "ReplayId": signatures
	// name it, so a signed run replays only as itself.
	return r.ReplayWorkflowHistoryWithOptions(quietLogger{}, h, sdkworker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: workflowIDOf(h)}})
}

// The SDK's nondeterminism messages name the event by id or position, or by
// its type and activity/timer id.
var (
	eventNumber = regexp.MustCompile(`(?:event position|scheduleEventID:|scheduledEventID:|event ID)\s*(\d+)`)
	eventByID   = regexp.MustCompile(`history event is (\w+): \((?:ActivityId|TimerId):([^,)]+)`)
)

// eventNamedIn finds the event an SDK error message points at (0: none).
func eventNamedIn(h *historypb.History, msg string) int64 {
	if m := eventNumber.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	if m := eventByID.FindStringSubmatch(msg); m != nil {
		for _, e := range h.Events {
			id := e.GetActivityTaskScheduledEventAttributes().GetActivityId() + e.GetTimerStartedEventAttributes().GetTimerId()
			if e.GetEventType().String() == m[1] && id == m[2] {
				return e.GetEventId()
			}
		}
	}
	return 0
}

// firstDivergentTask finds, when the message names no event, the workflow
// task whose commands today's code no longer produces: the shortest failing
// prefix of whole workflow tasks. It returns that task's completion event.
func firstDivergentTask(h *historypb.History, dc converter.DataConverter) int64 {
	var cuts []int // prefixes that end just before a workflow task is scheduled
	for i, e := range h.Events {
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED && i > 0 {
			cuts = append(cuts, i)
		}
	}
	cuts = append(cuts, len(h.Events))
	fails := func(c int) bool { return replay(&historypb.History{Events: h.Events[:cuts[c]]}, dc) != nil }
	lo, hi := 0, len(cuts)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	for i := cuts[hi] - 1; i >= 0; i-- {
		if h.Events[i].GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return h.Events[i].GetEventId()
		}
	}
	return 0
}

// describeEvent names the event: its type and the activity, timer or marker it is about.
func describeEvent(h *historypb.History, id int64) string {
	for _, e := range h.GetEvents() {
		if e.GetEventId() != id {
			continue
		}
		what := e.GetEventType().String()
		switch {
		case e.GetActivityTaskScheduledEventAttributes() != nil:
			a := e.GetActivityTaskScheduledEventAttributes()
			what += fmt.Sprintf(" activity %s id %s", a.GetActivityType().GetName(), a.GetActivityId())
		case e.GetTimerStartedEventAttributes() != nil:
			what += " timer " + e.GetTimerStartedEventAttributes().GetTimerId()
		case e.GetMarkerRecordedEventAttributes() != nil:
			what += " marker " + e.GetMarkerRecordedEventAttributes().GetMarkerName()
		}
		return what
	}
	return "not in the history"
}

// quietLogger drops the replayer's log lines (its panics and stack traces
// for a diverging history); the error carries what an operator needs.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

var _ log.Logger = quietLogger{}
