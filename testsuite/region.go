package testsuite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Region is one cluster of the rig and what runs beside it: a real control
// plane (etcd, kube-apiserver, kube-controller-manager), the node simulator
// and a real Velero server.
type Region struct {
	// Name is the region's role on the rig: "primary" or "dr".
	Name   string
	Kube   *Kube
	Nodes  *NodeSim
	Velero *Velero
	// LostAt is when Lose killed the region (zero while it serves).
	LostAt time.Time
}

// RegionOptions configure a rig region.
type RegionOptions struct {
	Name, KubeContext, Dir string
	// Store is the bucket the region's Velero uses (shared between regions).
	Store *ObjectStore
	// ReadOnly: the region's Velero only reads the bucket (a DR cluster).
	ReadOnly bool
	// SyncPeriod is how often its Velero syncs backups from the bucket.
	SyncPeriod time.Duration
	// CRDs are installed (and established) before Velero starts.
	CRDs     []byte
	Progress io.Writer
}

// StartRegion starts a region's cluster, node simulator and Velero.
func StartRegion(ctx context.Context, o RegionOptions) (r *Region, err error) {
	r = &Region{Name: o.Name}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()
	if r.Kube, err = StartKube(ctx, KubeOptions{Dir: filepath.Join(o.Dir, "kube"), Context: o.KubeContext, Progress: o.Progress}); err != nil {
		return r, fmt.Errorf("region %s: %w", o.Name, err)
	}
	if r.Nodes, err = StartNodeSim(ctx, r.Kube.RESTConfig()); err != nil {
		return r, fmt.Errorf("region %s: %w", o.Name, err)
	}
	if len(o.CRDs) > 0 {
		if err := ApplyCRDs(ctx, r.Kube.RESTConfig(), "region "+o.Name+"'s CRDs", o.CRDs); err != nil {
			return r, err
		}
	}
	r.Velero, err = StartVeleroWith(ctx, r.Kube, VeleroOptions{Dir: filepath.Join(o.Dir, "velero"), Store: o.Store,
		ReadOnly: o.ReadOnly, SyncPeriod: o.SyncPeriod, Progress: o.Progress})
	if err != nil {
		return r, fmt.Errorf("region %s: %w", o.Name, err)
	}
	return r, nil
}

// Lose is the disaster: every process of the region ends at once with
// SIGKILL (Velero, the controller-manager, the API server, etcd) and the
// node simulator stops, so nothing answers for the cluster any more. etcd's
// data directory stays on disk, as a region's disks do, for BringBack.
func (r *Region) Lose() {
	r.LostAt = time.Now()
	r.Velero.Kill()
	r.Nodes.Stop()
	r.Kube.Kill()
}

// BringBack starts the lost region's processes again on their data: the
// control plane on the same address (kubeconfigs stay valid), the node
// simulator, and Velero, waiting until its location is Available.
func (r *Region) BringBack(ctx context.Context) error {
	if err := r.Kube.Restart(ctx); err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	nodes, err := StartNodeSim(ctx, r.Kube.RESTConfig())
	if err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	r.Nodes = nodes
	if err := r.Velero.Restart(ctx); err != nil {
		return fmt.Errorf("region %s: %w", r.Name, err)
	}
	r.LostAt = time.Time{}
	return nil
}

// Stop stops the region's processes (whatever started).
func (r *Region) Stop() {
	if r.Velero != nil {
		r.Velero.Stop()
	}
	if r.Nodes != nil {
		r.Nodes.Stop()
	}
	if r.Kube != nil {
		r.Kube.Stop()
	}
}

// WriteKubeconfig writes one kubeconfig with a context for each cluster (its
// own name), as an operator's kubeconfig for a primary and a DR cluster.
func WriteKubeconfig(path string, kubes ...*Kube) error {
	return writeKubeconfig(path, func(k *Kube) string { return k.Token }, kubes...)
}

// WriteWorkerKubeconfig writes WriteKubeconfig's file for WorkerUser: what
// a worker bound only to `lifeboat rbac`'s output reaches the clusters with.
func WriteWorkerKubeconfig(path string, kubes ...*Kube) error {
	return writeKubeconfig(path, func(k *Kube) string { return k.WorkerToken }, kubes...)
}

func writeKubeconfig(path string, token func(*Kube) string, kubes ...*Kube) error {
	var clusters, users, contexts strings.Builder
	for _, k := range kubes {
		fmt.Fprintf(&clusters, "- name: %s\n  cluster: {server: %q, certificate-authority: %q}\n", k.Context, k.URL, k.CAFile)
		fmt.Fprintf(&users, "- name: %s-admin\n  user: {token: %q}\n", k.Context, token(k))
		fmt.Fprintf(&contexts, "- name: %[1]s\n  context: {cluster: %[1]s, user: %[1]s-admin}\n", k.Context)
	}
	body := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n%susers:\n%scontexts:\n%scurrent-context: %s\n",
		clusters.String(), users.String(), contexts.String(), kubes[len(kubes)-1].Context)
	return os.WriteFile(path, []byte(body), 0o600)
}

// Unreachable describes how a cluster's API server fails to answer (for the
// demo's and tests' output: a lost region really is gone), or "" if it answers.
func Unreachable(ctx context.Context, k *Kube) string {
	c, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return err.Error()
	}
	return ""
}
