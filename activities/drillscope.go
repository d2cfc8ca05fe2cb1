package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// drillScoped is the runtime half of the drill guard for the actions whose
// drill safety is an override (runbooks.DrillOverrideOrSkip: terraform.apply,
// argocd.sync, cloudflare.*): in a drill or a teardown such a step runs
// only pointed away from production — spec.drill.with replaced one of the
// arguments the action declares for it — and is refused, inside the
// activity and before any call, otherwise. The validator refuses such a
// runbook before the run starts; this refuses it again wherever a step
// input comes from, so a new path to an activity cannot skip the check.
// (Actions that map namespaces guard their namespaces themselves:
// kube.GuardDrillNamespaces.)
func drillScoped(spec runbooks.ActionSpec, fn StepFunc) StepFunc {
	if spec.Drill != runbooks.DrillOverrideOrSkip {
		return fn
	}
	return func(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
		if (in.Drill() || in.Mode == "teardown") && !slices.ContainsFunc(spec.DrillOverrides, func(arg string) bool {
			return slices.Contains(in.DrillOverridden, arg)
		}) {
			return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"%s refused in a %s: it changes %s and step %s is not pointed away from production (spec.drill.with.%s.%s); nothing was changed. Skip the step in the drill (spec.drill.skip) or override it",
				spec.Name, in.Mode, spec.Effect, in.StepID, in.StepID, strings.Join(spec.DrillOverrides, "|")), "DrillScope", nil)
		}
		return fn(ctx, in)
	}
}
