package velero

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Prechecks are the velero.* actions' pre-flight checks: the worker may do
// what the step declares (Accesses), and the backup the step restores
// exists (a named one) or the schedule has a completed backup within the
// RPO.
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	access := a.Accesses()
	may := func(name string) func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		return kube.Precheck(a.Source, access[name])
	}
	then := func(name string, more func(context.Context, runbooks.StepInput) []runbooks.CheckResult) func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
		return func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
			out := may(name)(ctx, in)
			if !allOK(out) {
				return out
			}
			return append(out, more(ctx, in)...)
		}
	}
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"velero.restore":      then("velero.restore", a.restorePrecheck),
		"velero.latestBackup": then("velero.latestBackup", a.latestPrecheck),
		"velero.backup":       may("velero.backup"),
	}
}

func allOK(checks []runbooks.CheckResult) bool {
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// restorePrecheck: the backup (or the schedule's latest) is there and
// complete, and holds every expected kind.
func (a *Actions) restorePrecheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args RestoreArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	var out []runbooks.CheckResult
	if args.Schedule != "" {
		latest := in
		latest.Args = map[string]any{"target": args.Target, "schedule": args.Schedule, "veleroNamespace": vns}
		out = append(out, a.latestPrecheck(ctx, latest)...)
		if res, err := a.LatestBackup(ctx, latest); err == nil && len(args.ExpectKinds) > 0 {
			out = append(out, a.kindsPrecheck(ctx, in, args, vns, fmt.Sprint(res.Outputs["backup"])))
		}
		return out
	}
	if runbooks.HasRefs(args.Backup) {
		return append(out, runbooks.Pass("the backup an earlier step takes", "known when the step runs, which waits for it to be synced here"))
	}
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return append(out, runbooks.Fail("target resolves", err.Error(), "declare the target's kubeContext in the worker config"))
	}
	name := "backup " + args.Backup + " exists"
	b, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, args.Backup, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return append(out, runbooks.Fail(name, fmt.Sprintf("Velero has no backup %s in namespace %s%s", args.Backup, vns, syncHint(ctx, c, vns)),
			"name an existing backup (velero backup get), or restore from the schedule's latest (schedule: NAME)"))
	case err != nil:
		return append(out, runbooks.Fail(name, err.Error(), "check that Velero is installed in namespace "+vns))
	}
	phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	if phase != "Completed" {
		return append(out, runbooks.Fail(name, fmt.Sprintf("backup %s is %s, not Completed", args.Backup, orNew(phase)), "restore a completed backup"))
	}
	out = append(out, runbooks.Pass(name, "Completed"))
	if len(args.ExpectKinds) > 0 {
		out = append(out, a.kindsPrecheck(ctx, in, args, vns, args.Backup))
	}
	return out
}

// kindsPrecheck reads the backup's resource list and fails naming the
// expected kinds it holds none of in the restored namespaces.
func (a *Actions) kindsPrecheck(ctx context.Context, in runbooks.StepInput, args RestoreArgs, vns, backup string) runbooks.CheckResult {
	name := "backup " + backup + " holds every expected kind"
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return runbooks.Fail(name, err.Error(), "declare the target's kubeContext in the worker config")
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list map[string][]string
	if err := download(dctx, c, vns, "BackupResourceList", backup, &list); err != nil {
		return runbooks.Fail(name, fmt.Sprintf("its resource list could not be read: %v", err), "check that the worker reaches the object storage (velero backup describe "+backup+" --details)")
	}
	if missing := missingKinds(countKinds(list, args.Namespaces), args.ExpectKinds); len(missing) > 0 {
		return runbooks.Fail(name, fmt.Sprintf("backup %s holds no %s", backup, strings.Join(missing, ", ")), blindSpotFix)
	}
	return runbooks.Pass(name, strings.Join(args.ExpectKinds, ", "))
}

// latestPrecheck runs velero.latestBackup itself: it only reads.
func (a *Actions) latestPrecheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args LatestArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	name := "schedule " + args.Schedule + " has a fresh backup"
	res, err := a.LatestBackup(ctx, in)
	if err != nil {
		msg := failure.Message(err)
		if c, cerr := kube.ClientFor(a.Source, in, args.Target); cerr == nil {
			msg += syncHint(ctx, c, cmp.Or(args.VeleroNamespace, "velero"))
		}
		return []runbooks.CheckResult{runbooks.Fail(name, msg,
			"take a backup now (velero backup create --from-schedule "+args.Schedule+"), or check the schedule is not paused")}
	}
	return []runbooks.CheckResult{runbooks.Pass(name, res.Summary)}
}
