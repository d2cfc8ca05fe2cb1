// Package velero implements velero.restore, velero.backup and
// velero.latestBackup through the Velero CRDs of the target cluster.
package velero

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

var (
	backupGVR   = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backups"}
	restoreGVR  = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}
	scheduleGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "schedules"}
)

// Actions implements the velero.* actions.
type Actions struct {
	Source kube.Source
}

// RestoreArgs are velero.restore's arguments.
type RestoreArgs struct {
	Target            string            `json:"target"`
	Backup            string            `json:"backup"`
	Schedule          string            `json:"schedule"`
	Namespaces        []string          `json:"namespaces"`
	NamespaceMappings map[string]string `json:"namespaceMappings"`
	VeleroNamespace   string            `json:"veleroNamespace"`
	// ExpectKinds are the kinds the restore must bring back ("ConfigMap",
	// "Deployment.apps", "CaseFile.cases.example.com"): see checkRestoredKinds.
	ExpectKinds []string `json:"expectKinds"`
	// ExistingResourcePolicy is Velero's: "none" (the default: an object
	// that exists is left as it is) or "update" (it is updated to the
	// backup's version — a failback bringing DR's changes home).
	ExistingResourcePolicy string `json:"existingResourcePolicy"`
}

// RestoreName is the Restore a step creates: derived from the workflow id,
// the run id, the step id and the operator's retries of the step, so an
// activity retry (even on another worker after a crash) finds the Restore
// again, while an operator's retry after a failure and a new run under a
// reused workflow id each make their own.
func RestoreName(workflowID, runID, stepID string, operatorRetries int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%s/%d", workflowID, runID, stepID, operatorRetries))
	step := strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(stepID)), "-")
	if len(step) > 40 {
		step = step[:40]
	}
	return "lifeboat-" + step + "-" + hex.EncodeToString(sum[:])[:10]
}

// Restore creates (or, on a retry, finds) the step's Restore and waits for it;
// before creating it, it waits until the target's ReadOnly locations synced
// after the disaster was declared (see waitForSync).
// Completed returns the backup's start time as the recovery point (recoveryPoint);
// PartiallyFailed and Failed fail the step with Velero's counts and reasons.
func (a *Actions) Restore(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	began := time.Now()
	var args RestoreArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	res := c.Dynamic.Resource(restoreGVR).Namespace(vns)
	name := RestoreName(in.WorkflowID, in.RunID, in.StepID, in.OperatorRetries)
	mapping := mappings(args, in.NamespaceMappings)
	if in.Drill() { // the drill's namespaces exist, labelled for it, before Velero restores into them
		if err := drillRestoresOnlyMapped(args, mapping); err != nil {
			return runbooks.StepResult{}, err
		}
		var dests []string
		for _, to := range mapping {
			dests = append(dests, fmt.Sprint(to))
		}
		slices.Sort(dests)
		if err := kube.GuardDrillNamespaces(ctx, c, in, "velero.restore", true, slices.Compact(dests)...); err != nil {
			return runbooks.StepResult{}, err
		}
	}
	if _, err := res.Get(ctx, name, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return runbooks.StepResult{}, fmt.Errorf("velero.restore: reading Restore %s/%s: %w", vns, name, err)
	} else if apierrors.IsNotFound(err) {
		since, wait, err := syncedSince(ctx, c, vns, args.Backup, in.DeclaredAt, began)
		if err != nil {
			return runbooks.StepResult{}, err
		}
		if wait {
			if err := waitForSync(ctx, c, vns, since, args.Backup); err != nil {
				return runbooks.StepResult{}, err
			}
		}
	}
	want := restoreObject(name, vns, args, mapping, in.Drill())
	r, created, err := getOrCreate(ctx, res, want)
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.restore: %w (is Velero installed in namespace %s of the target cluster?)", err, vns)
	}
	if diff := specDiff(r, want); !created && diff != "" {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"velero.restore: Restore %s/%s already exists with another spec (%s): it is not this step's; inspect it with `velero restore describe %s`, delete it if it is stale, then retry",
			vns, name, diff, name), "RestoreConflict", nil)
	}
	return a.follow(ctx, c, restoreGVR, r, "restore", "itemsRestored", func(r *unstructured.Unstructured, p progress) (*runbooks.StepResult, error) {
		warnings, _, _ := unstructured.NestedInt64(r.Object, "status", "warnings")
		errs, _, _ := unstructured.NestedInt64(r.Object, "status", "errors")
		backup, _, _ := unstructured.NestedString(r.Object, "spec", "backupName")
		switch p.phase {
		case "Completed":
			res, err := a.completed(ctx, c, vns, name, backup, p.done, warnings)
			if err == nil && len(args.ExpectKinds) > 0 {
				res.Outputs["kinds"], err = checkRestoredKinds(ctx, c, vns, name, backup, args.ExpectKinds)
				if err == nil {
					res.Summary += fmt.Sprintf("; every expected kind restored (%s)", strings.Join(args.ExpectKinds, ", "))
				}
			}
			return &res, err
		case "PartiallyFailed", "Failed":
			reason, _, _ := unstructured.NestedString(r.Object, "status", "failureReason")
			failed := restoreErrors(ctx, c, vns, name)
			if reason != "" {
				failed = append([]string{reason}, failed...)
			}
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"velero restore %s of backup %s %s: %d error(s), %d warning(s): %s — see `velero restore describe %s --details`; fix the cause, then retry or skip the step",
				name, backup, p.phase, errs, warnings, firstOf(failed, 5), name), "Restore"+p.phase, nil)
		case "FailedValidation":
			reasons, _, _ := unstructured.NestedStringSlice(r.Object, "status", "validationErrors")
			return nil, validationError(name, vns, reasons)
		}
		return nil, nil
	}, func(p progress) error { return abandon(ctx, res, name, p) })
}

// abandon answers an abort. A Restore Velero has not started yet is
// deleted, so it never runs after the drill's teardown. One in progress
// cannot be stopped (Velero has no way to), so abandon waits, heartbeating,
// until it ends (at most restoreEndWait): the workflow waits for this
// activity before its teardown, which then removes everything the restore
// brought back instead of racing a restore that would recreate the drill's
// namespace after its deletion.
func abandon(ctx context.Context, res dynamic.ResourceInterface, name string, p progress) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreEndWait)
	defer cancel()
	// The phase seen last may be stale: read it again, and delete only the
	// very version that is still New (Velero picking it up meanwhile
	// changes the version, and the delete is refused).
	if r, err := res.Get(wctx, name, metav1.GetOptions{}); err == nil {
		if phase, _, _ := unstructured.NestedString(r.Object, "status", "phase"); phase == "" || phase == "New" {
			rv := r.GetResourceVersion()
			err := res.Delete(wctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if err == nil || apierrors.IsNotFound(err) {
				return temporal.NewCanceledError(fmt.Sprintf("velero restore %s had not started (New): lifeboat deleted it, so nothing was restored", name))
			}
		}
	}
	for {
		r, err := res.Get(wctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return temporal.NewCanceledError(fmt.Sprintf("velero restore %s is gone", name))
		}
		if err == nil {
			phase, _, _ := unstructured.NestedString(r.Object, "status", "phase")
			if kube.VeleroRestoreEnded(phase) {
				return temporal.NewCanceledError(fmt.Sprintf(
					"velero restore %s was in progress when the run was aborted; Velero cannot stop a restore, so lifeboat waited until it ended (%s) before going on: a drill's teardown removes what it restored", name, phase))
			}
		}
		kube.Heartbeat(wctx, fmt.Sprintf("aborted: waiting for velero restore %s to end (%s) before the teardown", name, p))
		select {
		case <-wctx.Done():
			return temporal.NewCanceledError(fmt.Sprintf(
				"velero restore %s left %s after waiting %s for it to end: Velero cannot stop a restore in progress; a drill's teardown removes what it restored", name, p, restoreEndWait))
		case <-time.After(time.Second):
		}
	}
}

// restoreEndWait bounds how long an aborted step waits for a Restore in
// progress to end.
const restoreEndWait = 10 * time.Minute

// specDiff names the fields of the step's Restore spec that an existing
// Restore of the same name does not match ("" when it matches).
func specDiff(have, want *unstructured.Unstructured) string {
	var diffs []string
	for _, field := range []string{"backupName", "scheduleName", "includedNamespaces", "namespaceMapping", "includeClusterResources", "existingResourcePolicy"} {
		w, wok, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", field)
		h, hok, _ := unstructured.NestedFieldNoCopy(have.Object, "spec", field)
		if field == "backupName" && !wok {
			continue // Velero fills it in from the schedule
		}
		if wok != hok || !reflect.DeepEqual(w, h) {
			diffs = append(diffs, fmt.Sprintf("%s %v, this step wants %v", field, orNone(h, hok), orNone(w, wok)))
		}
	}
	return strings.Join(diffs, "; ")
}

// validationError is a Restore that Velero refused to start: a missing
// backup storage location gets its own type and the way to fix it.
func validationError(name, vns string, reasons []string) error {
	all := strings.Join(reasons, "; ")
	if strings.Contains(all, "BackupStorageLocation") && strings.Contains(all, "not found") {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"velero restore %s: Velero cannot read the backup: %s — the backup storage location it was written to is missing from namespace %s; recreate it (`velero backup-location create NAME --provider … --bucket …`, then `velero backup-location get` shows it Available) and retry the step",
			name, all, vns), "BackupStorageLocationMissing", nil)
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("velero restore %s FailedValidation: %s — check the backup or schedule name and the backup storage location",
		name, all), "RestoreFailedValidation", nil)
}

// firstOf joins the first n lines and says how many more there are.
func firstOf(lines []string, n int) string {
	if len(lines) == 0 {
		return "Velero gave no reason"
	}
	if len(lines) <= n {
		return strings.Join(lines, "; ")
	}
	return strings.Join(lines[:n], "; ") + fmt.Sprintf("; and %d more", len(lines)-n)
}

func orNone(v any, ok bool) any {
	if !ok {
		return "(none)"
	}
	return v
}

func orNew(phase string) string {
	if phase == "" {
		return "New"
	}
	return phase
}

func (a *Actions) completed(ctx context.Context, c *kube.Client, vns, name, backup string, restored, warnings int64) (runbooks.StepResult, error) {
	b, err := c.Dynamic.Resource(backupGVR).Namespace(vns).Get(ctx, backup, metav1.GetOptions{})
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.restore: restore %s completed but its backup %s cannot be read for the recovery point: %w", name, backup, err)
	}
	at, err := time.Parse(time.RFC3339, recoveryPoint(b))
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.restore: backup %s has no start time", backup)
	}
	return runbooks.StepResult{
		Summary:       fmt.Sprintf("restore %s of %s completed: %d item(s), %d warning(s)", name, backup, restored, warnings),
		Outputs:       map[string]any{"restore": name, "backup": backup, "itemsRestored": restored, "warnings": warnings},
		RecoveryPoint: &at, RecoveryPointName: backup,
	}, nil
}

// recoveryPoint is a backup's start time: the data it holds may be as old
// as that (a 40-minute backup's completion time would make the RPO 40
// minutes too good); its completion time when Velero recorded no start.
func recoveryPoint(u *unstructured.Unstructured) string {
	if s, _, _ := unstructured.NestedString(u.Object, "status", "startTimestamp"); s != "" {
		return s
	}
	return completion(u)
}

func completion(u *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(u.Object, "status", "completionTimestamp")
	return s
}

// mappings merges the step's own mappings with the drill's, keeping the
// drill's only for the namespaces the restore includes.
func mappings(args RestoreArgs, drill map[string]string) map[string]any {
	out := map[string]any{}
	include := map[string]bool{}
	for _, ns := range args.Namespaces {
		include[ns] = true
	}
	for from, to := range drill {
		if len(include) == 0 || include[from] {
			out[from] = to
		}
	}
	for from, to := range args.NamespaceMappings {
		out[from] = to
	}
	return out
}

// drillRestoresOnlyMapped refuses, in a drill, a restore that would bring a
// namespace back under its own name: one that lists no namespaces (Velero
// restores all of the backup's) or lists one no mapping sends elsewhere.
func drillRestoresOnlyMapped(args RestoreArgs, mapping map[string]any) error {
	if len(args.Namespaces) == 0 {
		return temporal.NewNonRetryableApplicationError("velero.restore in a drill refused: it names no namespaces, so Velero would restore every namespace of the backup under its production name; nothing was changed. List them in with.namespaces and map each in spec.drill.namespaceMappings", "DrillUnsafe", nil)
	}
	for _, ns := range args.Namespaces {
		if to, ok := mapping[ns]; !ok || to == ns {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("velero.restore in a drill refused: namespace %s would be restored under its own name (no mapping sends it to a drill namespace); nothing was changed. Map it in spec.drill.namespaceMappings", ns), "DrillUnsafe", nil)
		}
	}
	return nil
}

// restoreObject is the Restore to create. A drill's Restore leaves
// cluster-scoped resources alone (includeClusterResources: false): they are
// shared with production.
func restoreObject(name, vns string, args RestoreArgs, mapping map[string]any, drill bool) *unstructured.Unstructured {
	spec := map[string]any{}
	if drill {
		spec["includeClusterResources"] = false
	}
	if args.Backup != "" {
		spec["backupName"] = args.Backup
	} else {
		spec["scheduleName"] = args.Schedule
	}
	if len(args.Namespaces) > 0 {
		ns := make([]any, len(args.Namespaces))
		for i, n := range args.Namespaces {
			ns[i] = n
		}
		spec["includedNamespaces"] = ns
	}
	if len(mapping) > 0 {
		spec["namespaceMapping"] = mapping
	}
	if args.ExistingResourcePolicy != "" {
		spec["existingResourcePolicy"] = args.ExistingResourcePolicy
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1", "kind": "Restore",
		"metadata": map[string]any{"name": name, "namespace": vns, "labels": map[string]any{"app.kubernetes.io/managed-by": "lifeboat"}},
		"spec":     spec,
	}}
}

// LatestArgs are velero.latestBackup's arguments.
type LatestArgs struct {
	Target          string `json:"target"`
	Schedule        string `json:"schedule"`
	MaxAge          string `json:"maxAge"`
	VeleroNamespace string `json:"veleroNamespace"`
}

// LatestBackup finds the schedule's newest completed backup and fails when it
// is older than maxAge (default: the runbook's RPO).
func (a *Actions) LatestBackup(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
	var args LatestArgs
	if err := in.DecodeArgs(&args); err != nil {
		return runbooks.StepResult{}, err
	}
	vns := cmp.Or(args.VeleroNamespace, "velero")
	maxAge, err := in.DurationOrRPO(args.MaxAge, "maxAge")
	if err != nil {
		return runbooks.StepResult{}, err
	}
	c, err := kube.ClientFor(a.Source, in, args.Target)
	if err != nil {
		return runbooks.StepResult{}, err
	}
	list, err := c.Dynamic.Resource(backupGVR).Namespace(vns).List(ctx, metav1.ListOptions{LabelSelector: "velero.io/schedule-name=" + args.Schedule})
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.latestBackup: %w (is Velero installed in namespace %s?)", err, vns)
	}
	var done []unstructured.Unstructured
	for _, b := range list.Items {
		if p, _, _ := unstructured.NestedString(b.Object, "status", "phase"); p == "Completed" {
			done = append(done, b)
		}
	}
	if len(done) == 0 {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("velero.latestBackup: schedule %s has no completed backup — there is nothing to restore from", args.Schedule), "NoBackup", nil)
	}
	sort.Slice(done, func(i, j int) bool { return completion(&done[i]) > completion(&done[j]) })
	latest := done[0]
	at, err := time.Parse(time.RFC3339, recoveryPoint(&latest))
	if err != nil {
		return runbooks.StepResult{}, fmt.Errorf("velero.latestBackup: backup %s has no start time", latest.GetName())
	}
	if err := checkLocation(ctx, c, vns, &latest); err != nil {
		return runbooks.StepResult{}, err
	}
	age := time.Since(at).Round(time.Second)
	if maxAge > 0 && age > maxAge {
		return runbooks.StepResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"velero.latestBackup: the latest backup of %s (%s) is %s old, older than %s: restoring it would break the RPO — check the schedule (velero schedule describe %s) or accept the loss and skip this step",
			args.Schedule, latest.GetName(), age, runbooks.Duration(maxAge), args.Schedule), "BackupTooOld", nil)
	}
	return runbooks.StepResult{
		Summary:       fmt.Sprintf("latest backup %s is %s old (limit %s)", latest.GetName(), age, runbooks.Duration(maxAge)),
		Outputs:       map[string]any{"backup": latest.GetName(), "ageSeconds": int64(age.Seconds())},
		RecoveryPoint: &at, RecoveryPointName: latest.GetName(),
	}, nil
}
