package testsuite

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Velero resources.
var (
	BackupGVR  = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "backups"}
	RestoreGVR = schema.GroupVersionResource{Group: "velero.io", Version: "v1", Resource: "restores"}
)

// VeleroNamespace is where Velero's objects live.
const VeleroNamespace = "velero"

// VeleroSim stands in for the Velero server (whose real controllers need
// object storage): Backups are fixtures whose contents the simulator keeps
// (its "bucket"); a Restore moves New → InProgress → Completed |
// PartiallyFailed | Failed (or FailedValidation), really creating the backed-up
// objects in the cluster, honouring includedNamespaces and namespaceMapping,
// counting warnings (object already exists) and errors (object refused).
type VeleroSim struct {
	dyn     dynamic.Interface
	typed   kubernetes.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	mu      sync.Mutex
	delay   time.Duration // how long a restore stays InProgress (default 1s)
	content map[string][]*unstructured.Unstructured
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartVeleroSim installs the Velero CRDs and starts the simulator.
func StartVeleroSim(ctx context.Context, cfg *rest.Config) (*VeleroSim, error) {
	dyn, typed, err := simClients(ctx, cfg, "velero.yaml", VeleroNamespace)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	loop, cancel := context.WithCancel(context.Background())
	s := &VeleroSim{dyn: dyn, typed: typed, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		delay: time.Second, content: map[string][]*unstructured.Unstructured{}, cancel: cancel, done: make(chan struct{})}
	go s.loop(loop)
	return s, nil
}

// SetDelay sets how long a restore stays InProgress (default 1s).
func (s *VeleroSim) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *VeleroSim) restoreDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delay
}

// Stop ends the simulation.
func (s *VeleroSim) Stop() {
	s.cancel()
	<-s.done
}

// AddBackup records a completed backup of a schedule with its contents.
func (s *VeleroSim) AddBackup(ctx context.Context, name, schedule string, completed time.Time, objects []*unstructured.Unstructured) error {
	var namespaces []any
	seen := map[string]bool{}
	for _, o := range objects {
		if ns := o.GetNamespace(); ns != "" && !seen[ns] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
		}
	}
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": VeleroNamespace, "labels": map[string]any{"velero.io/schedule-name": schedule}},
		"spec":     map[string]any{"includedNamespaces": namespaces, "storageLocation": "default", "ttl": "168h0m0s"},
	}}
	created, err := s.dyn.Resource(BackupGVR).Namespace(VeleroNamespace).Create(ctx, b, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Object["status"] = map[string]any{"phase": "Completed", "startTimestamp": completed.Add(-2 * time.Minute).UTC().Format(time.RFC3339),
		"completionTimestamp": completed.UTC().Format(time.RFC3339), "progress": map[string]any{"itemsBackedUp": int64(len(objects)), "totalItems": int64(len(objects))}}
	if _, err := s.dyn.Resource(BackupGVR).Namespace(VeleroNamespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.content[name] = objects
	return nil
}

func (s *VeleroSim) loop(ctx context.Context) {
	defer close(s.done)
	for {
		list, err := s.dyn.Resource(RestoreGVR).Namespace(VeleroNamespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				s.step(ctx, &list.Items[i])
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// step advances one Restore by one phase.
func (s *VeleroSim) step(ctx context.Context, r *unstructured.Unstructured) {
	phase, _, _ := unstructured.NestedString(r.Object, "status", "phase")
	now := time.Now().UTC().Format(time.RFC3339)
	switch phase {
	case "":
		s.setStatus(ctx, r, map[string]any{"phase": "New"})
	case "New":
		backup, err := s.resolveBackup(ctx, r)
		if err != nil {
			s.setStatus(ctx, r, map[string]any{"phase": "FailedValidation", "validationErrors": []any{err.Error()}})
			return
		}
		_ = unstructured.SetNestedField(r.Object, backup, "spec", "backupName")
		if updated, err := s.dyn.Resource(RestoreGVR).Namespace(VeleroNamespace).Update(ctx, r, metav1.UpdateOptions{}); err == nil {
			r = updated
		}
		s.setStatus(ctx, r, map[string]any{"phase": "InProgress", "startTimestamp": now})
	case "InProgress":
		started, _, _ := unstructured.NestedString(r.Object, "status", "startTimestamp")
		if t, err := time.Parse(time.RFC3339, started); err == nil && time.Since(t) < s.restoreDelay() {
			return
		}
		warnings, errs, total := s.restore(ctx, r)
		st := map[string]any{"phase": "Completed", "startTimestamp": started, "completionTimestamp": now,
			"progress": map[string]any{"itemsRestored": int64(total - len(errs)), "totalItems": int64(total)}}
		if len(warnings) > 0 {
			st["warnings"] = int64(len(warnings))
		}
		if len(errs) > 0 {
			st["errors"] = int64(len(errs))
			st["phase"] = "PartiallyFailed"
			st["failureReason"] = errs[0]
		}
		s.setStatus(ctx, r, st)
	}
}

func (s *VeleroSim) setStatus(ctx context.Context, r *unstructured.Unstructured, st map[string]any) {
	r.Object["status"] = st
	_, _ = s.dyn.Resource(RestoreGVR).Namespace(VeleroNamespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
}

// resolveBackup finds the restore's backup: named, or the schedule's latest completed one.
func (s *VeleroSim) resolveBackup(ctx context.Context, r *unstructured.Unstructured) (string, error) {
	name, _, _ := unstructured.NestedString(r.Object, "spec", "backupName")
	schedule, _, _ := unstructured.NestedString(r.Object, "spec", "scheduleName")
	if name != "" {
		if _, err := s.dyn.Resource(BackupGVR).Namespace(VeleroNamespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return "", fmt.Errorf("Unable to retrieve backup: backups.velero.io %q not found", name)
		}
		return name, nil
	}
	list, err := s.dyn.Resource(BackupGVR).Namespace(VeleroNamespace).List(ctx, metav1.ListOptions{LabelSelector: "velero.io/schedule-name=" + schedule})
	if err != nil {
		return "", err
	}
	var done []*unstructured.Unstructured
	for i := range list.Items {
		if p, _, _ := unstructured.NestedString(list.Items[i].Object, "status", "phase"); p == "Completed" {
			done = append(done, &list.Items[i])
		}
	}
	if len(done) == 0 {
		return "", fmt.Errorf("No backups found for schedule %s", schedule)
	}
	sort.Slice(done, func(i, j int) bool { return completion(done[i]) > completion(done[j]) })
	return done[0].GetName(), nil
}

func completion(u *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(u.Object, "status", "completionTimestamp")
	return s
}

// restore creates the backup's objects; it returns warnings, errors and the item count.
func (s *VeleroSim) restore(ctx context.Context, r *unstructured.Unstructured) (warnings, errs []string, total int) {
	backup, _, _ := unstructured.NestedString(r.Object, "spec", "backupName")
	included, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "includedNamespaces")
	mapping, _, _ := unstructured.NestedStringMap(r.Object, "spec", "namespaceMapping")
	want := map[string]bool{}
	for _, ns := range included {
		want[ns] = true
	}
	s.mu.Lock()
	objects := s.content[backup]
	s.mu.Unlock()
	for _, src := range objects {
		if len(want) > 0 && !want["*"] && !want[src.GetNamespace()] {
			continue
		}
		total++
		o := src.DeepCopy()
		if to := mapping[o.GetNamespace()]; to != "" {
			o.SetNamespace(to)
		}
		o.SetResourceVersion("")
		o.SetUID("")
		delete(o.Object, "status")
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels["velero.io/backup-name"], labels["velero.io/restore-name"] = backup, r.GetName()
		o.SetLabels(labels)
		if ns := o.GetNamespace(); ns != "" {
			_, _ = s.typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		}
		gvk := o.GroupVersionKind()
		m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			s.mapper.Reset()
			m, err = s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("error restoring %s %s/%s: the server could not find the requested resource", gvk.Kind, o.GetNamespace(), o.GetName()))
			continue
		}
		var res dynamic.ResourceInterface = s.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			res = s.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := res.Create(ctx, o, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			warnings = append(warnings, fmt.Sprintf("could not restore, %s %q already exists", gvk.Kind, o.GetName()))
		} else if err != nil {
			errs = append(errs, fmt.Sprintf("error restoring %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err))
		}
	}
	return warnings, errs, total
}
