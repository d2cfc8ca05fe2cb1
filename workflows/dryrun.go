package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRunActivity says what one step would change (activities.Registry.DryRun).
const DryRunActivity = "lifeboat.dryrun"

// DryRunLayer is the pseudo-layer shown while a dry run asks every step.
const DryRunLayer = "dry-run"

// dryRun asks every step, in layer order, what it would change, and
// changes nothing (Request.DryRun): terraform plans, server-side applies
// with DryRun=All, the records, pools and replica counts as they are and as
// the steps would set them. Steps ask in parallel: a dry run waits on
// nothing a step before it would have done.
func (r *run) dryRun(ctx workflow.Context) {
	r.layer = DryRunLayer
	r.publish(ctx)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute, HeartbeatTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	all := r.askSteps(ctx, actx, DryRunActivity, func(*step) bool { return true })
	d := &runbooks.DryRun{Plan: runbooks.MakePlan(r.rb())}
	for _, a := range all {
		var changes []runbooks.Change
		if err := a.answer.Get(ctx, &changes); err != nil {
			d.Errors = append(d.Errors, a.s.spec.ID+": "+causeMessage(err))
			continue
		}
		if len(changes) == 0 {
			d.Unchanged = append(d.Unchanged, a.s.spec.ID)
		}
		d.Changes = append(d.Changes, changes...)
	}
	r.dry = d
	r.layer = ""
}
