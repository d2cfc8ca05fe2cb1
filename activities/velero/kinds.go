package velero

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

// The CRD blind spot: Velero backs up only the kinds its discovery knew
// when the backup ran, and refreshes discovery every 5 minutes — so the
// custom resources of a CRD installed after that are silently left out, and
// the backup and its restores still say Completed. A runbook names the kinds
// its service cannot run without (with.expectKinds); velero.restore fails
// when a completed restore brought back none of one of them, and its
// pre-check reads the backup's own resource list before the run starts.

// kindName is the runbook's name of a resource-list key: "ConfigMap" for
// "v1/ConfigMap", "CaseFile.cases.example.com" for
// "cases.example.com/v1/CaseFile".
func kindName(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) == 3 {
		return parts[2] + "." + parts[0]
	}
	return parts[len(parts)-1]
}

// countKinds counts each kind's entries in a Velero resource list (a
// backup's, or a restore's, whose entries end in "(created)", "(skipped)"…;
// a "(failed)" one does not count), only in namespaces when it is not empty.
func countKinds(list map[string][]string, namespaces []string) map[string]int {
	out := map[string]int{}
	for key, entries := range list {
		for _, e := range entries {
			if strings.HasSuffix(e, "(failed)") {
				continue
			}
			if ns, _, namespaced := strings.Cut(e, "/"); len(namespaces) > 0 && namespaced && !slices.Contains(namespaces, ns) {
				continue
			}
			out[strings.ToLower(kindName(key))]++
		}
	}
	return out
}

// missingKinds are the expected kinds with no entry in counts.
func missingKinds(counts map[string]int, expect []string) []string {
	var missing []string
	for _, k := range expect {
		if counts[strings.ToLower(k)] == 0 {
			missing = append(missing, k)
		}
	}
	return missing
}

// blindSpotFix is what to do about kinds a backup left out.
const blindSpotFix = "Velero backs up only the kinds it knew when the backup ran (it rediscovers the cluster's CRDs every 5 minutes): a CRD installed after that is left out though the backup says Completed — take a new backup in the source cluster once its Velero knows the CRD (or restart Velero there), or, if the kind is no longer needed, remove it from with.expectKinds"

// checkRestoredKinds reads what a completed restore brought back and fails
// (not retryable: the backup lacks them) naming the expected kinds it did
// not; it returns each expected kind's count for the step's outputs.
func checkRestoredKinds(ctx context.Context, c *kube.Client, vns, restore, backup string, expect []string) (map[string]any, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list map[string][]string
	if err := download(dctx, c, vns, "RestoreResourceList", restore, &list); err != nil {
		return nil, fmt.Errorf("velero.restore: restore %s completed, but what it restored could not be read to check with.expectKinds (%v): `velero restore describe %s --details` lists it", restore, err, restore)
	}
	counts := countKinds(list, nil)
	found := map[string]any{}
	for _, k := range expect {
		found[k] = int64(counts[strings.ToLower(k)])
	}
	if missing := missingKinds(counts, expect); len(missing) > 0 {
		return found, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"velero.restore: restore %s of backup %s completed, but it brought back no %s: the backup does not hold them. %s",
			restore, backup, strings.Join(missing, ", "), blindSpotFix), "RestoredKindsMissing", nil)
	}
	return found, nil
}
