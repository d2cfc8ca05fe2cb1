package velero

import (
	"cmp"
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Prechecks are the velero.* actions' pre-flight checks: the worker may
// create what the step creates, and the backup the step restores exists
// (a named one) or the schedule has a completed backup within the RPO.
func (a *Actions) Prechecks() map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult {
	return map[string]func(context.Context, runbooks.StepInput) []runbooks.CheckResult{
		"velero.restore":      a.restorePrecheck,
		"velero.latestBackup": a.latestPrecheck,
		"velero.backup": func(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
			var args BackupArgs
			if err := in.DecodeArgs(&args); err != nil {
				return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
			}
			vns := cmp.Or(args.VeleroNamespace, "velero")
			return kube.MayDo(ctx, a.Source, in, args.Target, kube.Access{Verb: "create", Group: "velero.io", Resource: "backups", Namespace: vns},
				kube.Access{Verb: "watch", Group: "velero.io", Resource: "backups", Namespace: vns})
		},
	}
}

func (a *Actions) restorePrecheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args RestoreArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	out := kube.MayDo(ctx, a.Source, in, args.Target, kube.Access{Verb: "create", Group: "velero.io", Resource: "restores", Namespace: vns},
		kube.Access{Verb: "watch", Group: "velero.io", Resource: "restores", Namespace: vns})
	if len(out) == 0 || !out[0].OK {
		return out
	}
	if args.Schedule != "" {
		latest := in
		latest.Args = map[string]any{"target": args.Target, "schedule": args.Schedule, "veleroNamespace": vns}
		return append(out, a.latestPrecheck(ctx, latest)...)
	}
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return append(out, runbooks.Fail("target resolves", err.Error(), "declare the target's kubeContext in the worker config"))
	}
	name := "backup " + args.Backup + " exists"
	b, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, args.Backup, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return append(out, runbooks.Fail(name, fmt.Sprintf("Velero has no backup %s in namespace %s", args.Backup, vns),
			"name an existing backup (velero backup get), or restore from the schedule's latest (schedule: NAME)"))
	case err != nil:
		return append(out, runbooks.Fail(name, err.Error(), "check that Velero is installed in namespace "+vns))
	}
	phase, _, _ := unstructured.NestedString(b.Object, "status", "phase")
	if phase != "Completed" {
		return append(out, runbooks.Fail(name, fmt.Sprintf("backup %s is %s, not Completed", args.Backup, orNew(phase)), "restore a completed backup"))
	}
	return append(out, runbooks.Pass(name, "Completed"))
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
		return []runbooks.CheckResult{runbooks.Fail(name, failure.Message(err),
			"take a backup now (velero backup create --from-schedule "+args.Schedule+"), or check the schedule is not paused")}
	}
	return []runbooks.CheckResult{runbooks.Pass(name, res.Summary)}
}
