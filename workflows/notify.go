package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// NotifyActivity is the action the workflow's own notifications go through.
const NotifyActivity = "notify.webhook"

// Notification kinds, the first words of each message.
const (
	NotifyApprovalNeeded    = "Approval needed"
	NotifyApprovalEscalated = "Approval escalated"
	NotifyStepPaused        = "Step failed and paused"
	NotifyRTOUsed           = "RTO budget"
	NotifyRTOBreached       = "RTO breached"
	NotifyRunFinished       = "Run finished"
)

// versionNotifications guards the workflow's own notifications (and the RTO
// 50 %/80 % timers they bring).
const versionNotifications = "run-notifications"

// notifier sends the run's notifications without ever blocking the run:
// each goes in its own goroutine, retried while the receiver is down for up
// to notifyWithin; the run waits for the ones in flight only before it builds
// its evidence.
type notifier struct {
	settings *runbooks.NotifySettings
	inFlight int
}

// notifyWithin bounds how long a notification is retried.
const notifyWithin = 2 * time.Minute

// setupNotifications turns notifications on for runs resolved with them.
// Runs recorded before they existed never call GetVersion (their resolved
// input has no settings), so they replay unchanged.
func (r *run) setupNotifications(ctx workflow.Context) {
	if r.resolved.Notify == nil {
		return
	}
	if workflow.GetVersion(ctx, versionNotifications, workflow.DefaultVersion, 1) == 1 {
		r.notifier = &notifier{settings: r.resolved.Notify}
	}
}

// notify posts a Slack-compatible message: kind, the run, text, and a link
// to the run in the Temporal UI. A failure to notify is an event, never a
// failure of the run.
func (r *run) notify(ctx workflow.Context, kind, text string) {
	n := r.notifier
	if n == nil {
		return
	}
	info := workflow.GetInfo(ctx)
	link := fmt.Sprintf("%s/namespaces/%s/workflows/%s", n.settings.UI, info.Namespace, r.workflowID)
	msg := fmt.Sprintf("*%s* — %s %s (%s): %s\n<%s|Open %s in the Temporal UI>",
		kind, r.rb().Metadata.Name, r.req.Mode, r.workflowID, text, link, r.workflowID)
	in := r.stepInput(ctx, "", map[string]any{"urlEnv": n.settings.URLEnv, "text": msg})
	n.inFlight++
	dctx, _ := workflow.NewDisconnectedContext(ctx) // an abort does not cancel it
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer func() { n.inFlight-- }()
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout:    20 * time.Second,
			ScheduleToCloseTimeout: notifyWithin,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second},
		})
		if err := workflow.ExecuteActivity(actx, NotifyActivity, in).Get(ctx, nil); err != nil {
			r.event(ctx, "notify-failed", "", "", fmt.Sprintf("%s notification not delivered within %s: %s", kind, notifyWithin, causeMessage(err)))
		}
	})
}

// awaitNotifications waits for the notifications in flight.
func (r *run) awaitNotifications(ctx workflow.Context) {
	if r.notifier != nil {
		_ = workflow.Await(ctx, func() bool { return r.notifier.inFlight == 0 })
	}
}

// rtoMilestones notifies when half and four fifths of the RTO are used.
func (r *run) rtoMilestones(ctx workflow.Context, rto time.Duration) {
	if r.notifier == nil {
		return
	}
	for _, share := range []float64{0.5, 0.8} {
		at := r.declaredAt.Add(time.Duration(float64(rto) * share))
		wait := at.Sub(workflow.Now(ctx))
		if wait <= 0 {
			continue // declared long ago: that milestone passed before the run started
		}
		workflow.Go(ctx, func(ctx workflow.Context) {
			if err := workflow.NewTimer(ctx, wait).Get(ctx, nil); err != nil {
				return // cancelled: the run ended first
			}
			st := r.status(ctx)
			r.notify(ctx, NotifyRTOUsed, fmt.Sprintf("%.0f%% of the %s RTO used; %s left (deadline %s), projected finish %s; state %s, layer %s",
				share*100, r.rb().Spec.Objectives.RTO, runbooks.Duration(st.Deadline.Sub(workflow.Now(ctx)).Round(time.Second)),
				st.Deadline.UTC().Format("15:04:05 UTC"), st.ProjectedFinish.UTC().Format("15:04:05 UTC"), st.State, st.Layer))
		})
	}
}
