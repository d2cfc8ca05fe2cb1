package testsuite

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// Stack is everything example (a) touches, on loopback: the DR cluster (real
// control plane, simulated node, real Velero writing to a real S3 server,
// real Argo CD syncing from a local git repository), terraform, the
// Cloudflare emulator, the Case API the business-journey check calls, and a
// base directory with the runbook's terraform and manifests.
type Stack struct {
	Kube       *Kube
	Nodes      *NodeSim
	Velero     *Velero
	ArgoCD     *ArgoCD
	Cloudflare *cloudflare.Emulator
	Zone       *cloudflare.Zone
	Terraform  string
	BaseDir    string
	CaseAPIURL string
	// Backups are the backups Velero took of case-management through the
	// schedule production-critical-hourly, oldest first, and when each
	// completed.
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

// KubeContext is the context name example (a) targets.
const KubeContext = "dr-ca-west-1"

// StartStack builds (if needed) and starts every part. dir holds state.
func StartStack(ctx context.Context, dir string) (st *Stack, err error) {
	s := &Stack{BaseDir: filepath.Join(dir, "repo"), quit: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.Terraform, err = EnsureTerraform(ctx, os.Stderr); err != nil {
		return nil, err
	}
	if s.Kube, err = StartKube(ctx, KubeOptions{Dir: filepath.Join(dir, "kube"), Context: KubeContext, Progress: os.Stderr}); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, s.Kube.Stop)
	cfg := s.Kube.RESTConfig()
	if s.Nodes, err = StartNodeSim(ctx, cfg); err != nil {
		return nil, err
	}
	s.stops = append(s.stops, s.Nodes.Stop)
	if err := s.startControllers(ctx, dir); err != nil {
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
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	go s.externalSecrets(typed)
	s.DeclaredAt = time.Now().UTC().Truncate(time.Second)
	return s, nil
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

// Runbook returns example (a) with its business-journey URL pointed at the stack.
func (s *Stack) Runbook(example []byte) []byte {
	return []byte(strings.ReplaceAll(string(example), "https://case-api.dr.example.internal/internal/health", s.CaseAPIURL+"/internal/health"))
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

// externalSecrets plays the external-secrets operator: when a case-management
// namespace (or its drill mapping) appears, it writes the case-api-db Secret
// from the "secret manager".
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

func (s *Stack) serveCaseAPI() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"status":"healthy","service":"case-api"}`)
	})}
	go func() { _ = srv.Serve(l) }()
	s.stops = append(s.stops, func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), nil
}

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
	}
}
