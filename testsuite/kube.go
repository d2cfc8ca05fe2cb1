package testsuite

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/lifeboat-dr/lifeboat/devserver"
)

// KubeVersion is the Kubernetes release the rig builds and runs.
const KubeVersion = "v1.33.13"

// kuberig holds the wrapper module that builds etcd, kube-apiserver and
// kube-controller-manager. Its files carry a .txt suffix so they stay out of
// lifeboat's own module; EnsureKube writes them out under their real names.
//
//go:embed kuberig/go.mod.txt kuberig/go.sum.txt kuberig/etcd_main.go.txt
var kuberig embed.FS

// KubeBinaries are the paths of the control-plane binaries.
type KubeBinaries struct {
	Etcd, APIServer, ControllerManager string
}

// EnsureKube returns the cached control-plane binaries, building them first
// if needed (several minutes on 2 cores, with progress lines).
func EnsureKube(ctx context.Context, progress io.Writer) (KubeBinaries, error) {
	cache, err := CacheDir()
	if err != nil {
		return KubeBinaries{}, err
	}
	dir := filepath.Join(cache, "kube-"+KubeVersion)
	bins := KubeBinaries{Etcd: filepath.Join(dir, "etcd"), APIServer: filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager")}
	if allExist(bins.Etcd, bins.APIServer, bins.ControllerManager) {
		return bins, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	src := filepath.Join(cache, "kube-src-"+KubeVersion)
	if err := os.MkdirAll(filepath.Join(src, "etcd"), 0o755); err != nil {
		return bins, err
	}
	for from, to := range map[string]string{"go.mod.txt": "go.mod", "go.sum.txt": "go.sum", "etcd_main.go.txt": "etcd/main.go"} {
		b, err := kuberig.ReadFile("kuberig/" + from)
		if err != nil {
			return bins, err
		}
		if err := os.WriteFile(filepath.Join(src, to), b, 0o644); err != nil {
			return bins, err
		}
	}
	tmp, err := os.MkdirTemp(cache, ".kube-build-")
	if err != nil {
		return bins, err
	}
	defer os.RemoveAll(tmp)
	minor := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")[1]
	ldflags := strings.Join([]string{
		"-X k8s.io/component-base/version.gitVersion=" + KubeVersion,
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.gitMinor=" + minor,
		"-X k8s.io/component-base/version.gitTreeState=clean",
		"-X k8s.io/client-go/pkg/version.gitVersion=" + KubeVersion,
	}, " ")
	fmt.Fprintf(progress, "building etcd, kube-apiserver and kube-controller-manager %s from the Go module proxy into %s (first run only; about 10 min cold on 2 cores)…\n", KubeVersion, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", tmp+string(filepath.Separator),
		"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "./etcd")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := devserver.RunWithProgress(cmd, "the Kubernetes control plane", progress); err != nil {
		return bins, fmt.Errorf("building the Kubernetes control plane failed: %w\n%s", err, devserver.Tail(out, 3000))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bins, err
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			return bins, err
		}
	}
	fmt.Fprintf(progress, "built the Kubernetes control plane %s\n", KubeVersion)
	return bins, nil
}

func allExist(paths ...string) bool {
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
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

// Kube is a running control plane: etcd, kube-apiserver with token auth and
// RBAC, and kube-controller-manager.
type Kube struct {
	URL        string // https://127.0.0.1:PORT
	Token      string // admin token (group system:masters)
	CAFile     string
	Kubeconfig string // admin kubeconfig with context Context
	Context    string
	Dir        string
	procs      []*proc
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
	k := &Kube{Dir: o.Dir, CAFile: certs.CA, Context: o.Context, Token: randomToken()}
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
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := startProc("etcd", bins.Etcd, filepath.Join(o.Dir, "etcd.log"),
		"--data-dir", filepath.Join(o.Dir, "etcd-data"), "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "default="+peerURL,
		"--log-level", "error", "--quota-backend-bytes", "1073741824")
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, etcd)
	if err := waitHTTP(ctx, etcd, etcdURL+"/health", "", time.Minute); err != nil {
		return nil, err
	}
	tokens := filepath.Join(o.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s,lifeboat-admin,admin-uid,\"system:masters\"\n", k.Token)), 0o600); err != nil {
		return nil, err
	}
	k.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	api, err := startProc("kube-apiserver", bins.APIServer, filepath.Join(o.Dir, "kube-apiserver.log"),
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(ports[2]), "--tls-cert-file", certs.Cert, "--tls-private-key-file", certs.Key,
		"--client-ca-file", certs.CA, "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-key-file", certs.SAPub, "--service-account-signing-key-file", certs.SAKey,
		"--service-account-issuer", "https://kubernetes.default.svc", "--api-audiences", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "10.0.0.0/24", "--allow-privileged=true", "--enable-priority-and-fairness=false",
		"--profiling=false", "--v=0")
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, api)
	if err := waitHTTP(ctx, api, k.URL+"/readyz", k.Token, 3*time.Minute); err != nil {
		return nil, err
	}
	k.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := os.WriteFile(k.Kubeconfig, []byte(k.kubeconfig()), 0o600); err != nil {
		return nil, err
	}
	cm, err := startProc("kube-controller-manager", bins.ControllerManager, filepath.Join(o.Dir, "kube-controller-manager.log"),
		"--kubeconfig", k.Kubeconfig, "--authentication-kubeconfig", k.Kubeconfig, "--authorization-kubeconfig", k.Kubeconfig,
		"--service-account-private-key-file", certs.SAKey, "--root-ca-file", certs.CA,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--controllers", "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route,-attachdetach,-persistentvolume-expander",
		"--v=0")
	if err != nil {
		return nil, err
	}
	k.procs = append(k.procs, cm)
	time.Sleep(500 * time.Millisecond)
	if err, dead := cm.exited(); dead {
		return nil, fmt.Errorf("kube-controller-manager exited (%v); its log ends:\n%s", err, cm.lastLog())
	}
	ok = true
	return k, nil
}

// kubeconfig is an admin kubeconfig for the rig, with context k.Context.
func (k *Kube) kubeconfig() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster: {server: %[2]q, certificate-authority: %[3]q}
users:
- name: %[1]s-admin
  user: {token: %[4]q}
contexts:
- name: %[1]s
  context: {cluster: %[1]s, user: %[1]s-admin}
current-context: %[1]s
`, k.Context, k.URL, k.CAFile, k.Token)
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
