package velero

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

func bsl(name, mode, phase string, synced time.Time, period string) *unstructured.Unstructured {
	spec := map[string]any{"accessMode": mode}
	if period != "" {
		spec["backupSyncPeriod"] = period
	}
	status := map[string]any{"phase": phase}
	if !synced.IsZero() {
		status["lastSyncedTime"] = synced.UTC().Format(time.RFC3339)
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
		"metadata": map[string]any{"name": name, "namespace": "velero"}, "spec": spec, "status": status}}
}

func syncClient(objs ...runtime.Object) *kube.Client {
	return &kube.Client{Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{locationGVR: "BackupStorageLocationList"}, objs...)}
}

// The wait for a DR cluster's sync: only ReadOnly, Available locations that
// sync at all are waited for, until they synced after the declaration.
func TestTheRestoreWaitsOnlyForReadOnlyLocationsThatSync(t *testing.T) {
	declared := time.Now().Add(-time.Minute).Truncate(time.Second)
	quick := func(c *kube.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return waitForSync(ctx, c, "velero", declared, "")
	}
	assert.NoError(t, quick(syncClient(bsl("default", "ReadWrite", "Available", time.Time{}, ""))), "a cluster's own location: nothing to wait for")
	assert.NoError(t, quick(syncClient(bsl("dr", "ReadOnly", "Available", declared.Add(time.Second), ""))), "synced after the declaration")
	assert.NoError(t, quick(syncClient(bsl("dr", "ReadOnly", "Available", time.Time{}, "0s"))), "a location that never syncs is not waited for")
	assert.NoError(t, quick(syncClient(bsl("dr", "ReadOnly", "Available", declared.Add(time.Second), ""),
		bsl("other", "ReadOnly", "Unavailable", time.Time{}, ""))), "an unrelated Unavailable location does not hold the restore")

	err := quick(syncClient(bsl("dr", "ReadOnly", "Available", declared.Add(-40*time.Second), "")))
	require.Error(t, err)
	assert.Contains(t, failure.Message(err), "location dr last synced 40s before the disaster was declared")
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	assert.True(t, ae.NonRetryable(), "the step's timeout is not worth waiting again")
}

// A named backup the cluster lacks (a failback's, written in DR a moment
// ago): one sync ending in the step's first second may have listed the
// bucket before the backup was in it, so the wait goes on until the backup
// is there or a second sync ended; the backup's arrival ends it at once.
func TestTheRestoreOfANamedBackupWaitsForItOrASyncThatSurelyListedIt(t *testing.T) {
	began := time.Now().Truncate(time.Second)
	wait := func(c *kube.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return waitForSync(ctx, c, "velero", began, "from-dr")
	}
	err := wait(syncClient(bsl("dr-backups", "ReadOnly", "Available", began, "")))
	require.Error(t, err, "a sync recorded in the step's first second does not prove the backup is missing")
	assert.Contains(t, failure.Message(err), "location dr-backups has not yet synced backup from-dr")

	backup := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": "from-dr", "namespace": "velero"}}}
	assert.NoError(t, wait(syncClient(bsl("dr-backups", "ReadOnly", "Available", began, ""), backup)), "the backup arrived: no more waiting")

	var s syncsSince
	s.observe(began.Add(-time.Second), began)
	assert.True(t, s.first.IsZero(), "a sync before the step does not count")
	s.observe(began, began)
	s.observe(began, began)
	assert.False(t, s.again, "the same sync seen twice is one sync")
	s.observe(began.Add(time.Minute), began)
	assert.True(t, s.again, "a later sync started after the first ended")
}
