package velero

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

// A DR cluster restores backups another cluster wrote. Its Velero sees them
// only once it has synced them from the bucket into the cluster (every
// --backup-sync-period, a minute by default), through a location in
// ReadOnly access mode — Velero's way to mark a location this cluster only
// reads. A restore started before that sync restores an older backup, or
// none ("no backups found for schedule"). So before it creates a Restore,
// velero.restore waits until every ReadOnly location of the target's Velero
// has finished a sync after the disaster was declared (the run's
// declaredAt; the step's start if that is later): a lost primary uploaded
// nothing after that, so the newest backup it wrote is in the cluster. (A
// drill's primary keeps writing: the drill restores the newest backup as of
// its declaration.) A named backup already in the cluster needs no wait;
// one that is not may have been written after the declaration (a
// failback's, taken in DR): the wait is then for a sync after the step
// began, and if the backup is still missing, Velero says so. Velero enqueues syncs every minute whatever
// --backup-sync-period says (v1.18.3's backupSyncReconcilePeriod), so the
// wait is up to a minute after the declaration. A ReadWrite location holds
// the backups its own cluster wrote: nothing to wait for.

// unavailableLimit is how long a ReadOnly location may stay Unavailable
// while a restore waits for its sync before the step fails: Velero validates
// locations every few seconds, so longer means it cannot read the bucket.
const unavailableLimit = time.Minute

// waitForSync waits until every ReadOnly location in vns has synced after
// since, heartbeating what it waits for.
func waitForSync(ctx context.Context, c *kube.Client, vns string, since time.Time) error {
	wctx, cancel := kube.BeforeDeadline(ctx)
	defer cancel()
	started := time.Now()
	since = since.Truncate(time.Second) // Velero records lastSyncedTime to the second
	for {
		behind, unavailable, err := syncState(wctx, c, vns, since)
		if err != nil {
			return fmt.Errorf("velero.restore: reading the backup storage locations in namespace %s: %w", vns, err)
		}
		if len(behind) == 0 {
			return nil
		}
		if unavailable != "" && time.Since(started) > unavailableLimit {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"velero.restore: the target cluster's Velero cannot read the backups: %s for %s; nothing was restored — check the location's bucket, endpoint and credentials (`velero backup-location get`), then retry the step",
				unavailable, unavailableLimit), "BackupStorageLocationUnavailable", nil)
		}
		kube.Heartbeat(wctx, "waiting for the target cluster's Velero to sync the backups another cluster wrote: "+strings.Join(behind, "; "))
		select {
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return temporal.NewCanceledError("velero.restore was stopped while the target cluster's Velero had not yet synced the bucket: no Restore was created, nothing was restored")
			}
			return temporal.NewApplicationError(fmt.Sprintf(
				"velero.restore: the target cluster's Velero did not sync the bucket in time (%s); nothing was restored — check `velero backup-location get` and the server's --backup-sync-period, then retry",
				strings.Join(behind, "; ")), "BackupSyncTimeout")
		case <-time.After(time.Second):
		}
	}
}

// syncState describes each ReadOnly location that has not synced since
// since ("location dr-bucket last synced 40s before the step began"), and
// the first of them that is not Available.
func syncState(ctx context.Context, c *kube.Client, vns string, since time.Time) (behind []string, unavailable string, err error) {
	list, err := c.Dynamic.Resource(locationGVR).Namespace(vns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", err
	}
	for _, l := range list.Items {
		if mode, _, _ := unstructured.NestedString(l.Object, "spec", "accessMode"); mode != "ReadOnly" {
			continue
		}
		phase, _, _ := unstructured.NestedString(l.Object, "status", "phase")
		if phase != "Available" {
			msg, _, _ := unstructured.NestedString(l.Object, "status", "message")
			d := fmt.Sprintf("location %s is %s (%s)", l.GetName(), orNew(phase), msg)
			behind = append(behind, d)
			if unavailable == "" {
				unavailable = d
			}
			continue
		}
		last, _, _ := unstructured.NestedString(l.Object, "status", "lastSyncedTime")
		at, perr := time.Parse(time.RFC3339, last)
		switch {
		case perr != nil:
			behind = append(behind, fmt.Sprintf("location %s has never synced", l.GetName()))
		case at.Before(since):
			behind = append(behind, fmt.Sprintf("location %s last synced %s before the disaster was declared", l.GetName(), since.Sub(at).Round(time.Second)))
		}
	}
	return behind, unavailable, nil
}

// syncHint says, for a pre-check that finds no backup, when the target's
// ReadOnly locations last synced ("" when it has none): the backup may be
// in the bucket and not yet in this cluster.
func syncHint(ctx context.Context, c *kube.Client, vns string) string {
	list, err := c.Dynamic.Resource(locationGVR).Namespace(vns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var parts []string
	for _, l := range list.Items {
		if mode, _, _ := unstructured.NestedString(l.Object, "spec", "accessMode"); mode != "ReadOnly" {
			continue
		}
		last, _, _ := unstructured.NestedString(l.Object, "status", "lastSyncedTime")
		phase, _, _ := unstructured.NestedString(l.Object, "status", "phase")
		if at, err := time.Parse(time.RFC3339, last); err == nil {
			parts = append(parts, fmt.Sprintf("%s (%s, last synced %s ago)", l.GetName(), orNew(phase), time.Since(at).Round(time.Second)))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%s, never synced)", l.GetName(), orNew(phase)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; this cluster reads other clusters' backups through ReadOnly location(s) " + strings.Join(parts, ", ") +
		": a backup the primary wrote appears here only after a sync — if it is not in the bucket, the DR cluster cannot see it"
}

// syncedSince is the time the target's ReadOnly locations must have synced
// after before a new Restore, and whether to wait at all (see above).
func syncedSince(ctx context.Context, c *kube.Client, vns, backup string, declared *time.Time, began time.Time) (time.Time, bool) {
	if backup != "" {
		_, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, backup, metav1.GetOptions{})
		return began, err != nil
	}
	if declared != nil && declared.Before(began) {
		return *declared, true
	}
	return began, true
}
