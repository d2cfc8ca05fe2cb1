package terraform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DryRun is terraform.apply as `terraform plan` (state not locked, plan
// file in a temporary directory): each resource it would create, change or
// destroy, and the outputs it would have (sensitive ones left out).
func (a *Actions) DryRun(ctx context.Context, in runbooks.StepInput) ([]runbooks.Change, error) {
	var args ApplyArgs
	if err := in.DecodeArgs(&args); err != nil {
		return nil, err
	}
	tf, dir, err := a.terraform(args.Dir)
	if err != nil {
		return nil, err
	}
	stop := keepAlive(ctx, "terraform plan in "+dir)
	defer stop()
	if err := a.prepare(ctx, tf, dir); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "lifeboat-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	planFile := filepath.Join(tmp, "plan")
	opts := []tfexec.PlanOption{tfexec.Out(planFile), tfexec.Lock(false)}
	for _, k := range sortedKeys(args.Vars) {
		opts = append(opts, tfexec.Var(k+"="+varValue(args.Vars[k])))
	}
	for _, f := range args.VarFiles {
		opts = append(opts, tfexec.VarFile(f))
	}
	if _, err := tf.Plan(ctx, opts...); err != nil {
		return nil, classify(dir, err)
	}
	plan, err := tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return nil, classify(dir, err)
	}
	var out []runbooks.Change
	for _, rc := range plan.ResourceChanges {
		if rc.Change == nil || rc.Change.Actions.NoOp() || rc.Change.Actions.Read() {
			continue
		}
		out = append(out, runbooks.Change{What: rc.Address, After: actionsText(rc.Change.Actions)})
	}
	names := make([]string, 0, len(plan.OutputChanges))
	for n := range plan.OutputChanges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		oc := plan.OutputChanges[n]
		if oc == nil || oc.Actions.NoOp() {
			continue
		}
		after := "(known after apply)"
		switch {
		case oc.AfterSensitive == true:
			after = runbooks.SensitiveOutput
		case oc.AfterUnknown != true:
			after = fmt.Sprint(oc.After)
		}
		out = append(out, runbooks.Change{What: "output " + n, After: after})
	}
	if len(out) == 0 {
		out = append(out, runbooks.Change{What: dir, After: "no changes", Note: "the infrastructure matches the configuration"})
	}
	return out, nil
}

func actionsText(a tfjson.Actions) string {
	parts := make([]string, len(a))
	for i, x := range a {
		parts[i] = string(x)
	}
	return strings.Join(parts, " then ")
}
