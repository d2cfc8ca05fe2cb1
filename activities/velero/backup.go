package velero

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// BackupArgs are velero.backup's arguments.
type BackupArgs struct {
	Target string `json:"target"`
	// Namespaces to back up; or Schedule: back up with the schedule's
	// template, labelled as the schedule's (`velero backup create
	// --from-schedule`), so velero.restore and velero.latestBackup of that
	// schedule find it.
	Namespaces      []string `json:"namespaces"`
	Schedule        string   `json:"schedule"`
	StorageLocation string   `json:"storageLocation"`
	TTL             string   `json:"ttl"`
	VeleroNamespace string   `json:"veleroNamespace"`
}

// BackupName is the Backup a velero.backup step creates, derived like
// RestoreName: an activity retry finds it again, an operator's retry and a
// new run each take their own.
func BackupName(workflowID, runID, stepID string, operatorRetries int) string {
	return strings.Replace(RestoreName("backup/"+workflowID, runID, stepID, operatorRetries), "lifeboat-", "lifeboat-backup-", 1)
}

// Backup takes an on-demand backup (or, on an activity retry, finds the one
// it started) and waits until Velero has Completed it. The backup's start
// time is the step's recovery point (recoveryPoint), so a failover can
// measure its RPO from a backup taken just before it.
func (a *Actions) Backup(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args BackupArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	name := BackupName(in.WorkflowID, in.RunID, in.StepID, in.OperatorRetries)
	want, err := a.backupObject(ctx, c, name, vns, args)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	res := c.Dynamic.Resource(backupGVR).Namespace(vns)
	b, _, err := getOrCreate(ctx, res, want)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.backup: %w (is Velero installed in namespace %s of the target cluster?)", err, vns)
	}
	return a.follow(ctx, c, backupGVR, b, "backup", "itemsBackedUp", func(b *unstructured.Unstructured, p progress) (*runbooks.StepResult, error) {
		switch p.phase {
		case "Completed":
			at, err := time.Parse(time.RFC3339, recoveryPoint(b))
			if err != nil {
				return nil, fmt.Errorf("velero.backup: backup %s has no start time", name)
			}
			warnings, _, _ := unstructured.NestedInt64(b.Object, "status", "warnings")
			return &runbooks.StepResult{
				Summary:       fmt.Sprintf("backup %s completed: %d item(s), %d warning(s)", name, p.done, warnings),
				Outputs:       map[string]any{"backup": name, "itemsBackedUp": p.done, "completedAt": completion(b)},
				RecoveryPoint: &at, RecoveryPointName: name,
			}, nil
		case "PartiallyFailed", "Failed", "FailedValidation":
			reasons, _, _ := unstructured.NestedStringSlice(b.Object, "status", "validationErrors")
			if r, _, _ := unstructured.NestedString(b.Object, "status", "failureReason"); r != "" {
				reasons = append(reasons, r)
			}
			errs, _, _ := unstructured.NestedInt64(b.Object, "status", "errors")
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"velero backup %s %s: %d error(s): %s — see `velero backup describe %s --details` and `velero backup logs %s`; fix the cause, then retry the step",
				name, p.phase, errs, firstOf(reasons, 5), name, name), "Backup"+p.phase, nil)
		}
		return nil, nil
	}, func(p progress) error {
		return temporal.NewCanceledError(fmt.Sprintf(
			"velero backup %s left %s: it goes on in the cluster; delete it with `velero backup delete %s` if it is not wanted", name, p, name))
	})
}

// backupObject is the Backup to create: the schedule's template (and its
// label) or the step's namespaces, in the step's storage location.
func (a *Actions) backupObject(ctx context.Context, c *kube.Client, name, vns string, args BackupArgs) (*unstructured.Unstructured, error) {
	spec := map[string]any{}
	labels := map[string]any{"app.kubernetes.io/managed-by": "lifeboat"}
	if args.Schedule != "" {
		s, err := c.Dynamic.Resource(scheduleGVR).Namespace(vns).Get(ctx, args.Schedule, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("velero.backup: no schedule %s in namespace %s (`velero schedule get` lists them)", args.Schedule, vns), "ScheduleNotFound", nil)
		}
		if err != nil {
			return nil, fmt.Errorf("velero.backup: reading schedule %s: %w", args.Schedule, err)
		}
		spec, _, _ = unstructured.NestedMap(s.Object, "spec", "template")
		labels["velero.io/schedule-name"] = args.Schedule
	} else {
		ns := make([]any, len(args.Namespaces))
		for i, n := range args.Namespaces {
			ns[i] = n
		}
		spec["includedNamespaces"] = ns
	}
	if args.StorageLocation != "" {
		spec["storageLocation"] = args.StorageLocation
	}
	if args.TTL != "" {
		d, err := runbooks.ParseDuration(args.TTL)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError("velero.backup: ttl: "+err.Error(), "InvalidArgument", nil)
		}
		spec["ttl"] = d.D().String()
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "velero.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": vns, "labels": labels}, "spec": spec}}, nil
}
