package workflows

import (
	"fmt"
	"slices"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// Validation levels of seed 004 §20, each reached only on top of the one below.
const (
	LevelL1 = "L1" // the backup object exists (velero.latestBackup passed)
	LevelL2 = "L2" // restored into an empty (drill-mapped) namespace, or into the target in a failover
	LevelL3 = "L3" // restored into a clean cluster: the run built the infrastructure first
	LevelL4 = "L4" // L3 and a business-journey check passed after the restore
	LevelL5 = "L5" // L4 and traffic moved (a DNS or load-balancer switch passed)
)

// validationLevel derives the level a run actually reached from the steps that
// ran and passed — never from what the runbook declares — with the reason.
func validationLevel(mode string, steps []record.StepRecord) (string, string) {
	if mode == ModeTabletop {
		return "", "tabletop: nothing was executed, so no validation level is reached"
	}
	if mode == ModeTeardown {
		return "", "teardown: only a drill's clean-up ran"
	}
	// passedAfter is the index of the first step after index from that ran
	// one of actions and succeeded (-1: none).
	passedAfter := func(from int, actions ...string) int {
		for i := from + 1; i < len(steps); i++ {
			if steps[i].State == StateSucceeded && slices.Contains(actions, steps[i].Action) {
				return i
			}
		}
		return -1
	}
	restore := passedAfter(-1, "velero.restore")
	if restore < 0 {
		if passedAfter(-1, "velero.latestBackup") >= 0 {
			return LevelL1, "the latest backup exists and is fresh, but nothing was restored"
		}
		return "", "no restore step passed"
	}
	where := "into the drill's mapped namespace"
	if mode == ModeFailover {
		where = "into the target namespace"
	}
	if infra := passedAfter(-1, "terraform.apply"); infra < 0 || infra > restore {
		return LevelL2, fmt.Sprintf("restored %s; the cluster was not built by this run (no terraform.apply before the restore), so L3 is not reached", where)
	}
	if passedAfter(restore, "http.check") < 0 {
		return LevelL3, "restored into a cluster this run built; no business-journey check (http.check) passed after the restore"
	}
	if passedAfter(restore, "cloudflare.dnsSwitch", "cloudflare.lbFailover") < 0 {
		return LevelL4, "restored into a cluster this run built and the business journey passed; traffic did not move"
	}
	return LevelL5, "restored into a cluster this run built, the business journey passed and traffic moved"
}
