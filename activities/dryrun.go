package activities

import (
	"context"
	"fmt"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRunFunc says what a step would change, changing nothing: terraform
// plans, server-side applies with DryRun=All, reads of the records, pools
// and replica counts a step would set. Each action that changes something
// registers one in New.
type DryRunFunc = func(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error)

// DryRun is the lifeboat.dryrun activity: one step's changes. A read-only
// action changes nothing (no changes, no error); an action that changes
// something without a dry run of its own is described from its arguments.
func (r *Registry) DryRun(ctx context.Context, in runbooks.PrecheckInput) ([]runbooks.Change, error) {
	var out []runbooks.Change
	var err error
	if fn, ok := r.dryruns[in.Action]; ok {
		out, err = fn(ctx, in.StepInput)
	} else {
		out = r.describe(in)
	}
	if err != nil {
		return nil, fmt.Errorf("%s", r.secrets.Scrub(failure.Message(err)))
	}
	for i := range out {
		out[i].Step, out[i].Action = in.StepID, in.Action
		out[i].Before, out[i].After = r.secrets.Scrub(out[i].Before), r.secrets.Scrub(out[i].After)
		out[i].What, out[i].Note = r.secrets.Scrub(out[i].What), r.secrets.Scrub(out[i].Note)
	}
	return out, nil
}

// describe is the change of an action without a dry run of its own.
func (r *Registry) describe(in runbooks.PrecheckInput) []runbooks.Change {
	spec, _ := r.Action(in.Action)
	switch {
	case spec.Human:
		return []runbooks.Change{{What: "a person does it", After: fmt.Sprint(in.Args["instructions"])}}
	case in.Action == NotifyWebhook:
		to := secrets.RedactURLs(fmt.Sprint(in.Args["url"]))
		if env, ok := in.Args["urlEnv"].(string); ok {
			to = "$" + env
		}
		return []runbooks.Change{{What: "a message to " + to, After: fmt.Sprint(in.Args["text"])}}
	case in.Action == EvidenceStore:
		return []runbooks.Change{{What: "the evidence so far, in the worker's evidence directory"}}
	case spec.Effect == runbooks.EffectReadOnly:
		return nil
	}
	return []runbooks.Change{{What: in.Action + " with its arguments", Note: "this action has no dry run: it changes " + string(spec.Effect)}}
}

// SetDryRun declares (or replaces) an action's dry run: for registries built
// with NewWithFuncs, whose actions are fakes.
func (r *Registry) SetDryRun(action string, fn DryRunFunc) *Registry {
	r.dryruns[action] = fn
	return r
}
