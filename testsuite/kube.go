package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
)

// KubeVersion is the Kubernetes release the rig builds and runs.
const KubeVersion = "v1.33.13"

// KubeBinaries are the paths of the control-plane binaries.
type KubeBinaries struct {
	Etcd, APIServer, ControllerManager string
}

// EnsureKube returns the cached control-plane binaries, building them first
// if needed (with Velero and Argo CD: ensureK8sRig).
func EnsureKube(ctx context.Context, progress io.Writer) (KubeBinaries, error) {
	b, err := ensureK8sRig(ctx, progress)
	return KubeBinaries{Etcd: b.Etcd, APIServer: b.APIServer, ControllerManager: b.ControllerManager}, err
}

// KubeOptions configure a rig cluster.
type KubeOptions struct {
	// Dir holds certificates, the etcd data directory, logs and the kubeconfig
	// (a fresh temporary directory when empty).
	Dir string
	// Context is the kubeconfig context name (default "lifeboat-rig").
	Context string
	// Progress receives build progress (default: stderr).
	Progress io.Writer
}

// WorkerUser is the rig's least-privileged identity for a worker.
const WorkerUser = "lifeboat-worker"

// Kube is a running control plane: etcd, kube-apiserver with token auth and
// RBAC, and kube-controller-manager.
type Kube struct {
	URL   string // https://127.0.0.1:PORT
	Token string // admin token (group system:masters)
	// WorkerToken authenticates the user lifeboat-worker, who may do
	// nothing until a binding grants it (what `lifeboat rbac` prints).
	WorkerToken string
	CAFile      string
	Kubeconfig  string // admin kubeconfig with context Context
	Context     string
	Dir         string
	procs       []*proc
	launch      func(context.Context) error // starts the processes on the same ports, data and certificates
}

// StartKube starts a fresh control plane (its own etcd data directory) and
// returns once /readyz answers and the controller-manager is up.
func StartKube(ctx context.Context, o KubeOptions) (*Kube, error) {
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	bins, err := EnsureKube(ctx, o.Progress)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "lifeboat-kube-"); err != nil {
			return nil, err
		}
	}
	if o.Context == "" {
		o.Context = "lifeboat-rig"
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	certs, err := newPKI(o.Dir)
	if err != nil {
		return nil, err
	}
	k := &Kube{Dir: o.Dir, CAFile: certs.CA, Context: o.Context, Token: randomToken(), WorkerToken: randomToken()}
	ok := false
	defer func() {
		if !ok {
			k.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	k.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	tokens := filepath.Join(o.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s,lifeboat-admin,admin-uid,\"system:masters\"\n%s,%s,worker-uid\n", k.Token, k.WorkerToken, WorkerUser)), 0o600); err != nil {
		return nil, err
	}
	k.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := WriteKubeconfig(k.Kubeconfig, k); err != nil {
		return nil, err
	}
	k.launch = func(ctx context.Context) error { return k.startProcs(ctx, bins, certs, ports, tokens) }
	if err := k.launch(ctx); err != nil {
		return nil, err
	}
	ok = true
	return k, nil
}

// startProcs starts etcd, kube-apiserver and kube-controller-manager on the
// cluster's ports, data directory and certificates, and waits until each is up.
func (k *Kube) startProcs(ctx context.Context, bins KubeBinaries, certs *pki, ports []int, tokens string) error {
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := startProc("etcd", bins.Etcd, filepath.Join(k.Dir, "etcd.log"),
		"--data-dir", filepath.Join(k.Dir, "etcd-data"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "default="+peerURL,
		"--log-level", "error", "--quota-backend-bytes", "1073741824")
	if err != nil {
		return err
	}
	k.procs = append(k.procs, etcd)
	if err := waitHTTP(ctx, etcd, etcdURL+"/health", "", time.Minute); err != nil {
		return err
	}
	api, err := startProc("kube-apiserver", bins.APIServer, filepath.Join(k.Dir, "kube-apiserver.log"),
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(ports[2]), "--tls-cert-file", certs.Cert, "--tls-private-key-file", certs.Key,
		"--client-ca-file", certs.CA, "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-key-file", certs.SAPub, "--service-account-signing-key-file", certs.SAKey,
		"--service-account-issuer", "https://kubernetes.default.svc", "--api-audiences", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true", "--enable-priority-and-fairness=false",
		"--profiling=false", "--v=0")
	if err != nil {
		return err
	}
	k.procs = append(k.procs, api)
	if err := waitHTTP(ctx, api, k.URL+"/readyz", k.Token, 3*time.Minute); err != nil {
		return err
	}
	cm, err := startProc("kube-controller-manager", bins.ControllerManager, filepath.Join(k.Dir, "kube-controller-manager.log"),
		"--kubeconfig", k.Kubeconfig, "--authentication-kubeconfig", k.Kubeconfig, "--authorization-kubeconfig", k.Kubeconfig,
		"--service-account-private-key-file", certs.SAKey, "--root-ca-file", certs.CA,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--controllers", "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route,-attachdetach,-persistentvolume-expander",
		"--v=0")
	if err != nil {
		return err
	}
	k.procs = append(k.procs, cm)
	time.Sleep(500 * time.Millisecond)
	if err, dead := cm.exited(); dead {
		return fmt.Errorf("kube-controller-manager exited (%v); its log ends:\n%s", err, cm.lastLog())
	}
	return nil
}

// Kill ends every process of the control plane at once with SIGKILL, as a
// lost region does: nothing is flushed or shut down cleanly. The etcd data
// directory stays on disk, so Restart can bring the cluster back.
func (k *Kube) Kill() {
	for _, p := range k.procs {
		p.kill()
	}
	k.procs = nil
}

// Restart starts the control plane again on the same ports, certificates and
// etcd data, after Kill or Stop (the kubeconfig stays valid).
func (k *Kube) Restart(ctx context.Context) error {
	k.Kill()
	return k.launch(ctx)
}

// Stop stops the control plane, newest process first.
func (k *Kube) Stop() {
	for i := len(k.procs) - 1; i >= 0; i-- {
		k.procs[i].stop()
	}
	k.procs = nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RESTConfig is an admin client configuration for the rig.
func (k *Kube) RESTConfig() *rest.Config {
	return &rest.Config{Host: k.URL, BearerToken: k.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, QPS: 100, Burst: 200}
}
