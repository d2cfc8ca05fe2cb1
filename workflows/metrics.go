package workflows

import (
	"math"

	"go.temporal.io/sdk/workflow"
)

// Metrics the workflow emits through the worker's metrics handler (the
// handler is replay-aware: nothing is emitted while a history replays).
const (
	// MetricStepDuration times each step from its first attempt to its end,
	// tagged action, outcome (its final state), runbook and mode.
	MetricStepDuration = "lifeboat_step_duration"
	// MetricRTORemaining is each open run's RTO budget left, in seconds
	// (negative once breached), tagged workflow_id, runbook and mode.
	MetricRTORemaining = "lifeboat_rto_remaining_seconds"
	// MetricApprovalsWaiting counts each open run's steps awaiting approval.
	MetricApprovalsWaiting = "lifeboat_approvals_waiting"
	// MetricRunState is 1 for each open run, tagged with its state: count by
	// state for runs by state.
	MetricRunState = "lifeboat_run_state"
	// MetricRunsFinished counts finished runs by runbook, mode and outcome.
	MetricRunsFinished = "lifeboat_runs_finished"
)

// runMetrics updates the run's gauges (state is its liveState); when the run has finished they are
// dropped (a NaN update) and the finished counter counts it once.
func (r *run) runMetrics(ctx workflow.Context, state string) {
	if !r.ready || r.metricsDone || workflow.IsReplaying(ctx) {
		return
	}
	h := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		"workflow_id": r.workflowID, "runbook": r.rb().Metadata.Name, "mode": r.req.Mode})
	if state != r.metricState && r.metricState != "" {
		h.WithTags(map[string]string{"state": r.metricState}).Gauge(MetricRunState).Update(math.NaN())
	}
	if r.finished {
		r.metricsDone = true
		h.Gauge(MetricRTORemaining).Update(math.NaN())
		h.Gauge(MetricApprovalsWaiting).Update(math.NaN())
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
			"runbook": r.rb().Metadata.Name, "mode": r.req.Mode, "outcome": r.state}).Counter(MetricRunsFinished).Inc(1)
		return
	}
	r.metricState = state
	h.WithTags(map[string]string{"state": state}).Gauge(MetricRunState).Update(1)
	h.Gauge(MetricRTORemaining).Update(r.declaredAt.Add(r.rb().Spec.Objectives.RTO.D()).Sub(workflow.Now(ctx)).Seconds())
	waiting := 0
	for _, s := range r.order {
		if s.state == StateAwaitingApproval {
			waiting++
		}
	}
	h.Gauge(MetricApprovalsWaiting).Update(float64(waiting))
}

// stepMetric records an ended step's duration (zero for one that never ran).
func (r *run) stepMetric(ctx workflow.Context, s *step) {
	var d = s.ended.Sub(s.started)
	if s.started.IsZero() || s.ended.IsZero() {
		d = 0
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		"action": s.spec.Action, "outcome": s.state, "runbook": r.rb().Metadata.Name, "mode": r.req.Mode,
	}).Timer(MetricStepDuration).Record(d)
}
