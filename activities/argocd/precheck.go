package argocd

import (
	"cmp"
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Precheck is argocd.sync's pre-flight check: the worker may do what the
// step declares (Access) and the Application exists.
func (a *Actions) Precheck(ctx context.Context, in runbooks.StepInput) []runbooks.CheckResult {
	var args SyncArgs
	if err := in.DecodeArgs(&args); err != nil {
		return []runbooks.CheckResult{runbooks.ArgsCheck(err)}
	}
	ns := cmp.Or(args.ArgoCDNamespace, "argocd")
	out := kube.Precheck(a.Source, a.Access())(ctx, in)
	for _, c := range out {
		if !c.OK {
			return out
		}
	}
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return out
	}
	name := "Application " + args.App + " exists"
	_, err = c.Dynamic.Resource(applicationGVR).Namespace(ns).Get(ctx, args.App, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return append(out, runbooks.Fail(name, "Argo CD has no Application "+args.App+" in namespace "+ns, "create the Application (argocd app create), or fix its name"))
	case err != nil:
		return append(out, runbooks.Fail(name, err.Error(), "check that Argo CD is installed in namespace "+ns))
	}
	return append(out, runbooks.Pass(name, "in "+ns))
}
