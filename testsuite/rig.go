package testsuite

import (
	"context"
	"os"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI=true, where a missing rig part
// is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Temporal starts a dev server for a test package (build it first if needed).
// Failing to start it fails the test, in CI and out of it: the rig is the
// project's own to install, so there is nothing to skip.
func Temporal(tb testing.TB) *DevServer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	srv, err := StartTemporal(ctx, DevOptions{Progress: os.Stderr})
	if err != nil {
		tb.Fatalf("the Temporal dev server did not start (CI=%v): %v", InCI(), err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// KubeRig is a running control plane with the node simulator.
type KubeRig struct {
	*Kube
	Nodes *NodeSim
}

// StartKubeRig starts a fresh control plane (own etcd data dir) and the node
// simulator for a test; failing to start fails the test, in CI and out of it.
func StartKubeRig(tb testing.TB, kubeContext string) *KubeRig {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	k, err := StartKube(ctx, KubeOptions{Dir: tb.TempDir(), Context: kubeContext, Progress: os.Stderr})
	if err != nil {
		tb.Fatalf("the kube rig did not start (CI=%v): %v", InCI(), err)
	}
	tb.Cleanup(k.Stop)
	nodes, err := StartNodeSim(ctx, k.RESTConfig())
	if err != nil {
		tb.Fatalf("the node simulator did not start: %v", err)
	}
	tb.Cleanup(nodes.Stop)
	return &KubeRig{Kube: k, Nodes: nodes}
}

// StartVeleroOn starts the real Velero (and its S3 store) on a rig cluster
// for a test; failing to start fails the test.
func StartVeleroOn(tb testing.TB, rig *KubeRig) *Velero {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	v, err := StartVelero(ctx, rig.Kube, tb.TempDir(), os.Stderr)
	if err != nil {
		tb.Fatalf("Velero did not start on the rig (CI=%v): %v", InCI(), err)
	}
	tb.Cleanup(v.Stop)
	return v
}

// StartArgoCDOn starts the real Argo CD on a rig cluster for a test; failing
// to start fails the test.
func StartArgoCDOn(tb testing.TB, rig *KubeRig) *ArgoCD {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	a, err := StartArgoCD(ctx, rig.Kube, tb.TempDir(), os.Stderr)
	if err != nil {
		tb.Fatalf("Argo CD did not start on the rig (CI=%v): %v", InCI(), err)
	}
	tb.Cleanup(a.Stop)
	return a
}
