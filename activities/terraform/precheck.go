package terraform

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Prechecks are the terraform.* actions' pre-flight checks: the binary and
// the directory are there, and the configuration initialises without its
// backend (`init -backend=false`) and validates — no state is read or written.
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	check := func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
		argDir, _ := in.Args["dir"].(string)
		tf, dir, err := a.terraform(argDir)
		if err != nil {
			return []runbooks.CheckResult{runbooks.Fail("terraform binary ready", failure.Message(err), "install terraform on the worker, or set terraform.binary")}
		}
		out := []runbooks.CheckResult{runbooks.Pass("terraform binary ready", "")}
		name := "configuration " + argDir + " valid"
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return append(out, runbooks.Fail(name, "no directory "+dir, "check out the infrastructure repository on the worker (relative dirs start at baseDir)"))
		}
		if err := tf.Init(ctx, tfexec.Backend(false)); err != nil {
			return append(out, runbooks.Fail(name, failure.Message(classify(dir, err)), "fix the configuration so `terraform init -backend=false` passes in "+dir))
		}
		v, err := tf.Validate(ctx)
		switch {
		case err != nil:
			return append(out, runbooks.Fail(name, failure.Message(classify(dir, err)), "fix the configuration so `terraform validate` passes in "+dir))
		case !v.Valid:
			return append(out, runbooks.Fail(name, failure.Message(a.prepareDiagnostics(dir, v)), "fix the configuration so `terraform validate` passes in "+dir))
		}
		return append(out, runbooks.Pass(name, "init -backend=false and validate pass"))
	}
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"terraform.apply": check, "terraform.output": check,
	}
}
