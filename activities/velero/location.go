package velero

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
)

var locationGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backupstoragelocations"}

// checkLocation fails when the backup storage location a backup was written
// to is missing (not retryable: someone must recreate it) or not Available
// (retryable: Velero validates locations periodically).
func checkLocation(ctx context.Context, c *kube.Client, vns string, backup *unstructured.Unstructured) error {
	loc, _, _ := unstructured.NestedString(backup.Object, "spec", "storageLocation")
	if loc == "" {
		return nil
	}
	bsl, err := c.Dynamic.Resource(locationGVR).Namespace(vns).Get(ctx, loc, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"backup %s was written to backup storage location %s, which is missing from namespace %s: Velero cannot read or restore it — recreate the location (`velero backup-location create %s --provider … --bucket …`) and retry the step",
			backup.GetName(), loc, vns, loc), "BackupStorageLocationMissing", nil)
	}
	if err != nil {
		return fmt.Errorf("reading backup storage location %s: %w", loc, err)
	}
	phase, _, _ := unstructured.NestedString(bsl.Object, "status", "phase")
	if phase != "Available" {
		msg, _, _ := unstructured.NestedString(bsl.Object, "status", "message")
		return fmt.Errorf("backup storage location %s of backup %s is %q (%s): Velero cannot reach the object storage; check its credentials and endpoint (`velero backup-location get %s`)",
			loc, backup.GetName(), orNew(phase), msg, loc)
	}
	return nil
}
