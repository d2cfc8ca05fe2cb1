package testsuite

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/testsuite/cloudflare"
)

// Planted values: secrets seeded into the rig that must never appear in any
// workflow history, log or evidence.
const (
	PlantedDBPassword   = "planted-db-password-3f9a1c77"
	PlantedRestoredPass = "planted-restored-password-8b21e4"
	PlantedCFToken      = "planted-cloudflare-token-c0ffee42"
)

// Stack is everything example (a) touches, on loopback: two regions — the
// primary (ca-central-1), serving production, and the DR cluster (ca-west-1)
// — each a real control plane with a simulated node and a real Velero, both
// Veleros on one S3 bucket (the primary's location ReadWrite, DR's
// ReadOnly); real Argo CD in DR syncing from a local git repository;
// terraform; the Cloudflare emulator; the Case API the business-journey
// check calls (it answers from the DR cluster's state); and a base
// directory with the runbook's terraform and manifests.
type Stack struct {
	Primary, DR *Region
	// Store is the bucket both regions' Veleros use.
	Store *ObjectStore
	// Kubeconfig has both clusters' contexts (PrimaryKubeContext, KubeContext).
	Kubeconfig string
	// DB is the case database: its primary in the primary region, its
	// streaming standby in DR (a worker's postgres config: DB.Instances()).
	DB *CaseDB
	// SecretsDir holds the database's connection strings (NAME.dsn), as a
	// secret manager's mounted files: a worker's secrets.dirs.
	SecretsDir string
	ArgoCD     *ArgoCD
	Cloudflare *cloudflare.Emulator
	Zone       *cloudflare.Zone
	Terraform  string
	BaseDir    string
	CaseAPIURL string
	// caseAPILatency delays each Case API answer (SlowCaseAPI).
	caseAPILatency atomic.Int64
	// Backups are the backups the primary's Velero took of case-management
	// through the schedule production-critical-hourly, oldest first, and
	// when each started (its recovery point).
	Backups []Backup
	// DeclaredAt is when the rig was ready, after the backups: "now" for the
	// fixture's disaster.
	DeclaredAt time.Time

	stops []func()
	quit  chan struct{}
}

// IdentityManifests are example (a)'s identity layer: the case-management
// namespace, the case-api service account and its right to read secrets.
const IdentityManifests = `apiVersion: v1
kind: Namespace
metadata: {name: case-management}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: case-api, namespace: case-management}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: case-management}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: case-api-reads-secrets, namespace: case-management}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects:
- {kind: ServiceAccount, name: case-api, namespace: case-management}
`

// KubeContext is the DR cluster's context, example (a)'s target dr.
const KubeContext = "dr-ca-west-1"

// PrimaryKubeContext is the primary cluster's context, example (a)'s target primary.
const PrimaryKubeContext = "primary-ca-central-1"

// DRSyncPeriod is the DR cluster's Velero --backup-sync-period: the least
// time between two syncs of the primary's backups from the bucket. Velero
// v1.18.3 enqueues a sync every minute whatever it says; at its default (a
// minute) a sync due a millisecond later waits for the next enqueue, every
// second minute.
const DRSyncPeriod = time.Second

// StartStack builds (if needed) and starts every part. dir holds state.
func StartStack(ctx context.Context, dir string) (st *Stack, err error) {
	s := &Stack{BaseDir: filepath.Join(dir, "repo"), Kubeconfig: filepath.Join(dir, "kubeconfig"), SecretsDir: filepath.Join(dir, "secrets"), quit: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.Terraform, err = EnsureTerraform(ctx, os.Stderr); err != nil {
		return nil, err
	}
	if err := s.startRegions(ctx, dir); err != nil {
		return nil, err
	}
	if err := WriteKubeconfig(s.Kubeconfig, s.Primary.Kube, s.DR.Kube); err != nil {
		return nil, err
	}
	if err := s.failbackLocations(ctx); err != nil {
		return nil, err
	}
	if s.DB, err = StartCaseDB(ctx, os.Stderr); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, s.DB.Stop)
	if err := os.MkdirAll(s.SecretsDir, 0o700); err != nil {
		return nil, err
	}
	if err := s.DB.WriteSecrets(s.SecretsDir); err != nil {
		return nil, err
	}
	if s.Cloudflare, err = cloudflare.Start(); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, s.Cloudflare.Close)
	s.Cloudflare.AddToken(PlantedCFToken, cloudflare.ZoneRead, cloudflare.DNSEdit, cloudflare.LBEdit)
	s.Zone = s.Cloudflare.AddZone("example.com")
	s.Cloudflare.AddRecord(s.Zone, "CNAME", "case.example.com", "primary-lb.ca-central-1.example.com", 300)
	if err := s.writeRepo(); err != nil {
		return nil, err
	}
	if err := s.backUpProduction(ctx); err != nil {
		return nil, err
	}
	if err := s.publishApps(ctx); err != nil {
		return nil, err
	}
	if s.CaseAPIURL, err = s.serveCaseAPI(); err != nil {
		return nil, err
	}
	for _, r := range []*Region{s.Primary, s.DR} {
		typed, err := kubernetes.NewForConfig(r.Kube.RESTConfig())
		if err != nil {
			return nil, err
		}
		go s.externalSecrets(typed)
	}
	// The disaster is declared now; the DR cluster has been running long
	// enough to have synced the primary's backups (Velero syncs every
	// minute): the rig waits for that sync, so a run's pre-checks in DR see them.
	s.DeclaredAt = time.Now().UTC().Truncate(time.Second)
	if err := s.DR.Velero.WaitSynced(ctx, s.DeclaredAt); err != nil {
		return nil, err
	}
	return s, nil
}

// LoseRegion is the disaster: every process of the primary region ends with
// SIGKILL — its cluster, its Velero, its database. The bucket (another
// region's storage), the DR cluster and the standby stay.
func (s *Stack) LoseRegion() {
	s.DB.LosePrimary()
	s.Primary.Lose()
}

// BringBackPrimary starts the primary region's processes again on their
// data: its cluster and Velero, and its database — as a primary, stale,
// until a failback rewinds it.
func (s *Stack) BringBackPrimary(ctx context.Context) error {
	if err := s.Primary.BringBack(ctx); err != nil {
		return err
	}
	return s.DB.BringBackPrimary(ctx)
}

// failbackLocations give the way home a path through the store: the DR
// cluster writes its backups to a bucket of their own (location
// dr-backups, ReadWrite there), which the primary reads (ReadOnly).
func (s *Stack) failbackLocations(ctx context.Context) error {
	if err := s.DR.Velero.AddBucketLocation(ctx, "dr-backups", FailbackBucket, false, false); err != nil {
		return err
	}
	return s.Primary.Velero.AddBucketLocation(ctx, "dr-backups", FailbackBucket, true, false)
}

// Stop stops every part, newest first.
func (s *Stack) Stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// Runbook returns example (a) with its business-journey URLs (production's
// and the drill's) pointed at the stack's Case API, and its secret files at
// the stack's.
func (s *Stack) Runbook(example []byte) []byte {
	return []byte(strings.NewReplacer(
		"/etc/lifeboat/secrets/", s.SecretsDir+"/",
		"https://case-api.dr.example.internal/", s.CaseAPIURL+"/ns/case-management/",
		"https://case-api.restore-drill.dr.example.internal/", s.CaseAPIURL+"/ns/restore-drill-case-management/",
	).Replace(string(example)))
}

// writeRepo writes the terraform configuration and identity manifests the
// runbook's relative paths name.
func (s *Stack) writeRepo() error {
	network := `variable "region" { type = string }
resource "terraform_data" "vpc" { input = { region = var.region, cidr = "10.20.0.0/16" } }
output "vpc_id" { value = "vpc-${var.region}" }
output "lb_hostname" { value = "dr-lb.${var.region}.example.com" }
`
	files := map[string]string{
		"infra/dr-network/main.tf": network,
		// the drill's own configuration and state (spec.drill.with)
		"infra/dr-network-drill/main.tf":   network,
		"manifests/identity/identity.yaml": IdentityManifests,
	}
	for p, body := range files {
		full := filepath.Join(s.BaseDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// externalSecrets plays the external-secrets operator of one cluster: when a
// case-management namespace (or its drill mapping) appears, it writes the
// case-api-db Secret from the "secret manager". A lost cluster's operator
// keeps trying, as a real one would when its cluster comes back.
func (s *Stack) externalSecrets(c kubernetes.Interface) {
	ctx := context.Background()
	done := map[string]bool{}
	for {
		nss, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, ns := range nss.Items {
				if (ns.Name == "case-management" || ns.Name == "restore-drill-case-management") && ns.DeletionTimestamp == nil && !done[ns.Name+string(ns.UID)] {
					_, err := c.CoreV1().Secrets(ns.Name).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "case-api-db"},
						StringData: map[string]string{"password": PlantedDBPassword, "username": "case_api"}}, metav1.CreateOptions{})
					if err == nil {
						done[ns.Name+string(ns.UID)] = true
					}
				}
			}
		}
		select {
		case <-s.quit:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serveCaseAPI serves the Case API as the DR cluster runs it: GET
// /ns/NAMESPACE/internal/health answers 200 only when the restored service
// is really there in the DR cluster — Deployment case-api with a ready
// replica and its restored ConfigMap case-api-config — and 503 naming what
// is missing otherwise (the DR cluster unreachable included).
func (s *Stack) serveCaseAPI() (string, error) {
	c, err := kubernetes.NewForConfig(s.DR.Kube.RESTConfig())
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ns/{ns}/internal/health", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(s.caseAPILatency.Load())):
		case <-r.Context().Done():
			return
		}
		ns := r.PathValue("ns")
		unhealthy := func(why string) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"status\":\"unavailable\",\"reason\":%q}\n", why)
		}
		d, err := c.AppsV1().Deployments(ns).Get(r.Context(), "case-api", metav1.GetOptions{})
		if err != nil {
			unhealthy("deployment case-api: " + err.Error())
			return
		}
		if d.Status.ReadyReplicas == 0 {
			unhealthy("deployment case-api has no ready replica")
			return
		}
		cm, err := c.CoreV1().ConfigMaps(ns).Get(r.Context(), "case-api-config", metav1.GetOptions{})
		if err != nil {
			unhealthy("configmap case-api-config: " + err.Error())
			return
		}
		fmt.Fprintf(w, "{\"status\":\"healthy\",\"service\":\"case-api\",\"namespace\":%q,\"generation\":%q}\n", ns, cm.Data["GENERATION"])
	})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: mux}
	go func() { _ = srv.Serve(l) }()
	s.stops = append(s.stops, func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), nil
}

// SlowCaseAPI makes every Case API answer take d longer (0: as fast as
// it can), as an overloaded service would.
func (s *Stack) SlowCaseAPI(d time.Duration) { s.caseAPILatency.Store(int64(d)) }

// caseManagementObjects is case-management as production had it when a
// backup was taken (generation counts the backups).
func caseManagementObjects(generation int) []*unstructured.Unstructured {
	mk := func(apiVersion, kind, name string, extra map[string]any) *unstructured.Unstructured {
		o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": "case-management"}}
		for k, v := range extra {
			o[k] = v
		}
		return &unstructured.Unstructured{Object: o}
	}
	return []*unstructured.Unstructured{
		mk("v1", "ConfigMap", "case-api-config", map[string]any{"data": map[string]any{"GENERATION": fmt.Sprint(generation)}}),
		mk("v1", "Secret", "case-api-session-key", map[string]any{"stringData": map[string]any{"key": PlantedRestoredPass}}),
		mk("v1", "PersistentVolumeClaim", "case-data", map[string]any{"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
			"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}),
		mk("apps/v1", "Deployment", "case-api", map[string]any{"spec": map[string]any{
			"replicas": int64(0), "selector": map[string]any{"matchLabels": map[string]any{"app": "case-api"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "case-api"}},
				"spec": map[string]any{"serviceAccountName": "case-api", "containers": []any{map[string]any{"name": "api", "image": "registry.example/case-api:3.2"}}}}}}),
		mk("cases.example.com/v1", "CaseFile", "case-0001", map[string]any{"spec": map[string]any{"opened": "2026-07-01", "generation": int64(generation)}}),
	}
}
