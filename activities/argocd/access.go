package argocd

import (
	"cmp"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Access is argocd.sync's declaration (see kube.AccessFunc): read, patch
// (a sync is a patch of its operation) and watch the Application; in a
// drill, the drill namespace it deploys into made and checked first (its
// destination is read from the Application, so any drill namespace).
func (a *Actions) Access() kube.AccessFunc {
	return kube.Declare(func(x SyncArgs, in runbooks.StepInput) (string, []kube.Access) {
		ns := cmp.Or(x.ArgoCDNamespace, "argocd")
		out := kube.Verbs(ns, "argoproj.io", []string{"get", "patch", "list", "watch"}, "applications")
		return x.Target, append(out, kube.GuardAccesses(in, true, kube.DrillDestinations(in)...)...)
	})
}
