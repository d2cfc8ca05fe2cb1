package testsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Backup is a backup Velero took on the rig.
type Backup struct {
	Name      string
	Completed time.Time
}

// CaseIntakeManifests are the GitOps half of example (a): the Case Intake
// worker pipeline and the Case API's Service, which Argo CD deploys from the
// rig's git repository (apps/case-intake) into case-management (Application
// case-intake) or into a drill's namespace (Application case-intake-drill).
const CaseIntakeManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: case-worker}
spec:
  replicas: 2
  selector: {matchLabels: {app: case-worker}}
  template:
    metadata: {labels: {app: case-worker}}
    spec: {containers: [{name: worker, image: registry.example/case-worker:1.4}]}
---
apiVersion: v1
kind: Service
metadata: {name: case-api}
spec:
  selector: {app: case-api}
  ports: [{port: 80, targetPort: 8080}]
`

// startControllers starts the real Velero and the real Argo CD side by side.
func (s *Stack) startControllers(ctx context.Context, dir string) error {
	type started struct {
		name string
		stop func()
		err  error
	}
	done := make(chan started, 2)
	go func() {
		v, err := StartVelero(ctx, s.Kube, filepath.Join(dir, "velero"), os.Stderr)
		s.Velero = v
		done <- started{"Velero", func() { v.Stop() }, err}
	}()
	go func() {
		a, err := StartArgoCD(ctx, s.Kube, filepath.Join(dir, "argocd"), os.Stderr)
		s.ArgoCD = a
		done <- started{"Argo CD", func() { a.Stop() }, err}
	}()
	var first error
	for i := 0; i < 2; i++ {
		r := <-done
		if r.err != nil {
			if first == nil {
				first = fmt.Errorf("starting %s on the rig: %w", r.name, r.err)
			}
			continue
		}
		s.stops = append(s.stops, r.stop)
	}
	return first
}

// backUpProduction plays the production region before the disaster:
// case-management as it was, backed up by Velero through the schedule
// production-critical-hourly twice (GENERATION 0, then 1), and then lost — the DR cluster starts without
// it, with only the backups in object storage.
func (s *Stack) backUpProduction(ctx context.Context) error {
	cfg := s.Kube.RESTConfig()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-management"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := ApplyObjects(ctx, dyn, caseManagementObjects(0)); err != nil {
		return err
	}
	if err := s.Velero.Schedule(ctx, "production-critical-hourly", "case-management"); err != nil {
		return err
	}
	first, firstAt, err := s.Velero.BackupFromSchedule(ctx, "production-critical-hourly")
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // backup names carry the second
	if err := ApplyObjects(ctx, dyn, caseManagementObjects(1)); err != nil {
		return err
	}
	second, secondAt, err := s.Velero.BackupFromSchedule(ctx, "production-critical-hourly")
	if err != nil {
		return err
	}
	s.Backups = []Backup{{first, firstAt}, {second, secondAt}}
	if err := c.CoreV1().Namespaces().Delete(ctx, "case-management", metav1.DeleteOptions{}); err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, "case-management", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("the backed-up case-management namespace was not gone within 2 minutes")
	}
	return err
}

// publishApps puts CaseIntakeManifests in the git repository and creates the
// Applications case-intake and case-intake-drill.
func (s *Stack) publishApps(ctx context.Context) error {
	if err := s.ArgoCD.Publish("apps/case-intake/case-intake.yaml", CaseIntakeManifests); err != nil {
		return err
	}
	if err := s.ArgoCD.AddApplication(ctx, "case-intake", "apps/case-intake", "case-management"); err != nil {
		return err
	}
	return s.ArgoCD.AddApplication(ctx, "case-intake-drill", "apps/case-intake", "restore-drill-case-management")
}

// resources maps the kinds the fixture writes to their resources.
var resources = map[string]schema.GroupVersionResource{
	"ConfigMap":             {Version: "v1", Resource: "configmaps"},
	"Secret":                {Version: "v1", Resource: "secrets"},
	"PersistentVolumeClaim": {Version: "v1", Resource: "persistentvolumeclaims"},
	"Deployment":            {Group: "apps", Version: "v1", Resource: "deployments"},
}

// ApplyObjects server-side applies namespaced fixture objects (ConfigMaps,
// Secrets, PersistentVolumeClaims, Deployments).
func ApplyObjects(ctx context.Context, dyn dynamic.Interface, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		gvr, ok := resources[o.GetKind()]
		if !ok {
			return fmt.Errorf("fixture: no resource known for kind %s", o.GetKind())
		}
		if _, err := dyn.Resource(gvr).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "lifeboat-rig", Force: true}); err != nil {
			return fmt.Errorf("fixture: applying %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
