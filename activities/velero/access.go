package velero

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Accesses are the velero.* actions' declarations (see kube.AccessFunc):
// everything each does in Velero's namespace — and, in a drill, the drill
// namespaces a restore fills, made and checked first.
func (a *Actions) Accesses() map[string]kube.AccessFunc {
	read := []string{"get", "list", "watch"}
	return map[string]kube.AccessFunc{
		"velero.restore": kube.Declare(func(x RestoreArgs, in runbooks.StepInput) (string, []kube.Access) {
			vns := cmp.Or(x.VeleroNamespace, "velero")
			// delete: an aborted step deletes its Restore while Velero has not started it
			out := kube.Verbs(vns, "velero.io", []string{"get", "create", "list", "watch", "delete"}, "restores")
			out = append(out, kube.Verbs(vns, "velero.io", read, "backups", "backupstoragelocations")...)               // the backup, and the sync that brings it
			out = append(out, kube.Verbs(vns, "velero.io", []string{"get", "create", "delete"}, "downloadrequests")...) // the restore's results: the kinds it brought back
			if in.Drill() {
				var dests []string
				for _, to := range mappings(x, in.NamespaceMappings) {
					dests = append(dests, fmt.Sprint(to))
				}
				slices.Sort(dests)
				out = append(out, kube.GuardAccesses(in, true, slices.Compact(dests)...)...)
			}
			return x.Target, out
		}),
		"velero.latestBackup": kube.Declare(func(x LatestArgs, _ runbooks.StepInput) (string, []kube.Access) {
			vns := cmp.Or(x.VeleroNamespace, "velero")
			return x.Target, kube.Verbs(vns, "velero.io", read, "backups", "backupstoragelocations")
		}),
		"velero.backup": kube.Declare(func(x BackupArgs, _ runbooks.StepInput) (string, []kube.Access) {
			vns := cmp.Or(x.VeleroNamespace, "velero")
			out := kube.Verbs(vns, "velero.io", []string{"get", "create", "list", "watch"}, "backups")
			return x.Target, append(out, kube.Verbs(vns, "velero.io", []string{"get"}, "schedules")...)
		}),
	}
}
