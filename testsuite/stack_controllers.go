package testsuite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Backup is a backup Velero took on the rig.
type Backup struct {
	Name string
	// Started is when Velero started it: its recovery point.
	Started time.Time
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

// CaseFileCRD is production's custom resource: each case's file. The
// platform team installs it in both clusters before Velero starts (a CRD
// installed after Velero started is its blind spot, see EscalationCRD).
var CaseFileCRD = casesCRD("casefiles", "casefile", "CaseFile")

// EscalationCRD is a CRD the platform team installs in the primary after
// its Velero started: Velero's blind spot until it rediscovers (5 minutes).
var EscalationCRD = casesCRD("escalations", "escalation", "Escalation")

// casesCRD is a namespaced CRD of the group cases.example.com.
func casesCRD(plural, singular, kind string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.cases.example.com}
spec:
  group: cases.example.com
  scope: Namespaced
  names: {plural: %[1]s, singular: %[2]s, kind: %[3]s}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, plural, singular, kind)
}

// startRegions starts the bucket, then the primary region and the DR region
// (with Argo CD) side by side; the CaseFile CRD is in both clusters before
// their Veleros start.
func (s *Stack) startRegions(ctx context.Context, dir string) error {
	bins, err := EnsureVelero(ctx, os.Stderr)
	if err != nil {
		return err
	}
	if s.Store, err = StartObjectStore(ctx, filepath.Join(dir, "bucket"), bins); err != nil {
		return err
	}
	s.stops = append(s.stops, s.Store.Stop)
	type started struct {
		region *Region
		argo   *ArgoCD
		err    error
	}
	start := func(name, kubeContext string, readOnly bool, sync time.Duration, argo bool) <-chan started {
		done := make(chan started, 1)
		go func() {
			r, err := StartRegion(ctx, RegionOptions{Name: name, KubeContext: kubeContext, Dir: filepath.Join(dir, name),
				Store: s.Store, ReadOnly: readOnly, SyncPeriod: sync, CRDs: []byte(CaseFileCRD), Progress: os.Stderr})
			res := started{region: r, err: err}
			if err == nil && argo {
				res.argo, res.err = StartArgoCD(ctx, r.Kube, filepath.Join(dir, name, "argocd"), os.Stderr)
				if res.err != nil {
					res.err = fmt.Errorf("starting Argo CD in region %s: %w", name, res.err)
				}
			}
			done <- res
		}()
		return done
	}
	primary := start("primary", PrimaryKubeContext, false, 0, false)
	dr := start("dr", KubeContext, true, DRSyncPeriod, true)
	p, d := <-primary, <-dr
	s.Primary, s.DR, s.ArgoCD = p.region, d.region, d.argo
	for _, r := range []*Region{p.region, d.region} {
		if r != nil {
			s.stops = append(s.stops, r.Stop)
		}
	}
	if d.argo != nil {
		s.stops = append(s.stops, d.argo.Stop)
	}
	return errors.Join(p.err, d.err)
}

// backUpProduction plays the primary region before the disaster:
// case-management serving, backed up by the primary's Velero through the
// schedule production-critical-hourly twice (GENERATION 0, then 1). The
// primary keeps serving it until LoseRegion.
func (s *Stack) backUpProduction(ctx context.Context) error {
	cfg := s.Primary.Kube.RESTConfig()
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
	v := s.Primary.Velero
	if err := v.Schedule(ctx, "production-critical-hourly", "case-management"); err != nil {
		return err
	}
	first, firstAt, err := v.BackupFromSchedule(ctx, "production-critical-hourly")
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // backup names carry the second
	if err := ApplyObjects(ctx, dyn, caseManagementObjects(1)); err != nil {
		return err
	}
	second, secondAt, err := v.BackupFromSchedule(ctx, "production-critical-hourly")
	if err != nil {
		return err
	}
	s.Backups = []Backup{{first, firstAt}, {second, secondAt}}
	return nil
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
	"CaseFile":              {Group: "cases.example.com", Version: "v1", Resource: "casefiles"},
}

// ApplyObjects server-side applies namespaced fixture objects (ConfigMaps,
// Secrets, PersistentVolumeClaims, Deployments, CaseFiles).
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

// BackUpALateCRD installs EscalationCRD in the primary, writes an
// Escalation into case-management and backs case-management up with the
// primary's Velero (schedule case-files-blind-spot): Velero says Completed,
// and the backup holds no Escalation. It returns the backup's name.
func (s *Stack) BackUpALateCRD(ctx context.Context) (string, error) {
	cfg := s.Primary.Kube.RESTConfig()
	if err := ApplyCRDs(ctx, cfg, "EscalationCRD", []byte(EscalationCRD)); err != nil {
		return "", err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	esc := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "cases.example.com/v1", "kind": "Escalation",
		"metadata": map[string]any{"name": "case-0001-to-legal", "namespace": "case-management"}, "spec": map[string]any{"case": "case-0001"}}}
	gvr := schema.GroupVersionResource{Group: "cases.example.com", Version: "v1", Resource: "escalations"}
	if _, err := dyn.Resource(gvr).Namespace("case-management").Create(ctx, esc, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating the Escalation: %w", err)
	}
	if err := s.Primary.Velero.Schedule(ctx, "case-files-blind-spot", "case-management"); err != nil {
		return "", err
	}
	name, _, err := s.Primary.Velero.BackupFromSchedule(ctx, "case-files-blind-spot")
	return name, err
}
