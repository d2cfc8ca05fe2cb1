package velero

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

// A DR cluster restores backups another cluster wrote. Its Velero sees them
// only once it has synced them from the bucket into the cluster, through a
// location in ReadOnly access mode — Velero's way to mark a location this
// cluster only reads. A restore started before that sync restores an older
// backup, or none ("no backups found for schedule"). So before it creates a
// Restore, velero.restore waits until every Available ReadOnly location of
// the target's Velero has finished a sync after the disaster was declared
// (the run's declaredAt; the step's start if that is later): a lost primary
// uploaded nothing after that, so the newest backup it wrote is in the
// cluster. (A drill's primary keeps writing: the drill restores the newest
// backup as of its declaration.) A named backup already in the cluster
// needs no wait; one that is not may have been written after the
// declaration (a failback's, taken in DR): the wait then ends as soon as
// the backup is in the cluster, or once each location finished a sync that
// started after the step began — the second sync Velero records after the
// step began, since Velero records lastSyncedTime to the second when a sync
// ends, and one ending in the step's first second may have listed the
// bucket before the backup was in it (what CI saw) — and if the backup is
// still missing, Velero says so.
//
// How long: Velero v1.18.3 looks at its locations every minute
// (backupSyncReconcilePeriod) and syncs one whose last sync is older than
// its sync period (spec.backupSyncPeriod, else --backup-sync-period, a
// minute by default): up to a minute or the sync period, whichever is
// longer. A location whose sync period is 0 never syncs: it is not waited
// for. An Unavailable location is not waited for either (Velero cannot read
// it); when no ReadOnly location is Available for a minute, the step fails
// naming them. A ReadWrite location holds the backups its own cluster
// wrote: nothing to wait for.

// unavailableLimit is how long the ReadOnly locations may all stay
// Unavailable before the step fails: Velero validates locations every few
// seconds, so longer means it cannot read the bucket.
const unavailableLimit = time.Minute

// location is a ReadOnly location's sync state.
type location struct {
	name, phase, message string
	lastSynced           time.Time // zero: never
	neverSyncs           bool      // spec.backupSyncPeriod is 0
}

// readOnlyLocations lists the ReadOnly locations in vns.
func readOnlyLocations(ctx context.Context, c *kube.Client, vns string) ([]location, error) {
	list, err := c.Dynamic.Resource(locationGVR).Namespace(vns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []location
	for _, l := range list.Items {
		if mode, _, _ := unstructured.NestedString(l.Object, "spec", "accessMode"); mode != "ReadOnly" {
			continue
		}
		loc := location{name: l.GetName()}
		loc.phase, _, _ = unstructured.NestedString(l.Object, "status", "phase")
		loc.message, _, _ = unstructured.NestedString(l.Object, "status", "message")
		if p, ok, _ := unstructured.NestedString(l.Object, "spec", "backupSyncPeriod"); ok {
			d, err := time.ParseDuration(p)
			loc.neverSyncs = err == nil && d == 0
		}
		if last, _, _ := unstructured.NestedString(l.Object, "status", "lastSyncedTime"); last != "" {
			loc.lastSynced, _ = time.Parse(time.RFC3339, last)
		}
		out = append(out, loc)
	}
	return out, nil
}

// waitForSync waits until every Available ReadOnly location in vns has
// synced after since, heartbeating what it waits for. With a backup named
// (one the cluster did not have when the step began), it waits until that
// backup is in the cluster or each location finished a sync that surely
// started after since (see above).
func waitForSync(ctx context.Context, c *kube.Client, vns string, since time.Time, backup string) error {
	wctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	started := time.Now()
	since = since.Truncate(time.Second) // Velero records lastSyncedTime to the second
	syncs := map[string]*syncsSince{}
	for {
		if backup != "" {
			if present, err := backupPresent(wctx, c, vns, backup); err != nil || present {
				return err
			}
		}
		locs, err := readOnlyLocations(wctx, c, vns)
		if err != nil {
			return fmt.Errorf("velero.restore: reading the backup storage locations in namespace %s: %w", vns, err)
		}
		var behind, unavailable []string
		available := 0
		for _, l := range locs {
			seen := syncs[l.name]
			if seen == nil {
				seen = &syncsSince{}
				syncs[l.name] = seen
			}
			seen.observe(l.lastSynced, since)
			switch {
			case l.neverSyncs:
			case l.phase != "Available":
				unavailable = append(unavailable, fmt.Sprintf("location %s is %s (%s)", l.name, orNew(l.phase), l.message))
			case l.lastSynced.Before(since):
				available++
				behind = append(behind, fmt.Sprintf("location %s last synced %s", l.name, syncedAgo(l.lastSynced, since)))
			case backup != "" && !seen.again:
				available++
				behind = append(behind, fmt.Sprintf("location %s has not yet synced backup %s (last synced %s)", l.name, backup, l.lastSynced.Format(time.RFC3339)))
			default:
				available++
			}
		}
		if len(unavailable) > 0 && available == 0 && time.Since(started) > unavailableLimit {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"velero.restore: the target cluster's Velero cannot read the backups: %s for %s; nothing was restored — check the location's bucket, endpoint and credentials (`velero backup-location get`), then retry the step",
				strings.Join(unavailable, "; "), unavailableLimit), "BackupStorageLocationUnavailable", nil)
		}
		if len(behind) == 0 && (available > 0 || len(unavailable) == 0) {
			return nil
		}
		kube.Heartbeat(wctx, "waiting for the target cluster's Velero to sync the backups another cluster wrote: "+strings.Join(append(behind, unavailable...), "; "))
		select {
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return temporal.NewCanceledError("velero.restore was stopped while the target cluster's Velero had not yet synced the bucket: no Restore was created, nothing was restored")
			}
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"velero.restore: the target cluster's Velero did not sync the bucket before the step's timeout (%s); nothing was restored — check `velero backup-location get` and the location's sync period, then retry",
				strings.Join(append(behind, unavailable...), "; ")), "BackupSyncTimeout", nil)
		case <-time.After(time.Second):
		}
	}
}

func syncedAgo(at, since time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return since.Sub(at).Round(time.Second).String() + " before the disaster was declared"
}

// syncedSince is the time the target's ReadOnly locations must have synced
// after before a new Restore, and whether to wait at all (see above).
func syncedSince(ctx context.Context, c *kube.Client, vns, backup string, declared *time.Time, began time.Time) (time.Time, bool, error) {
	if backup != "" {
		present, err := backupPresent(ctx, c, vns, backup)
		return began, !present && err == nil, err
	}
	if declared != nil && declared.Before(began) {
		return *declared, true, nil
	}
	return began, true, nil
}

// syncHint says, for a pre-check that finds no backup, when the target's
// ReadOnly locations last synced ("" when it has none): the backup may be
// in the bucket and not yet in this cluster.
func syncHint(ctx context.Context, c *kube.Client, vns string) string {
	locs, err := readOnlyLocations(ctx, c, vns)
	if err != nil || len(locs) == 0 {
		return ""
	}
	var parts []string
	for _, l := range locs {
		if l.lastSynced.IsZero() {
			parts = append(parts, fmt.Sprintf("%s (%s, never synced)", l.name, orNew(l.phase)))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%s, last synced %s ago)", l.name, orNew(l.phase), time.Since(l.lastSynced).Round(time.Second)))
		}
	}
	return "; this cluster reads other clusters' backups through ReadOnly location(s) " + strings.Join(parts, ", ") +
		": a backup the primary wrote appears here only after a sync — if it is not in the bucket, the DR cluster cannot see it"
}

// syncsSince follows one location's lastSyncedTime from since on: first is
// the first sync seen ending at or after since; again is set once a later
// one ended, which started after first ended — so after since.
type syncsSince struct {
	first time.Time
	again bool
}

func (s *syncsSince) observe(last, since time.Time) {
	switch {
	case last.Before(since):
	case s.first.IsZero():
		s.first = last
	case last.After(s.first):
		s.again = true
	}
}

// backupPresent says whether the target cluster has the backup.
func backupPresent(ctx context.Context, c *kube.Client, vns, backup string) (bool, error) {
	_, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, backup, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("velero.restore: reading backup %s: %w", backup, err)
	}
	return err == nil, nil
}
