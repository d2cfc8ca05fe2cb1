package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// ArgoCDVersion is the Argo CD release the rig builds and runs: the newest
// on Kubernetes 1.33's client libraries, which the rig's control plane and
// Velero use too (see k8srig/go.mod.txt).
const ArgoCDVersion = "v3.1.16"

// ArgoCDBinaries are the Argo CD binary (its role comes from
// ARGOCD_BINARY_NAME) and its CRD manifests.
type ArgoCDBinaries struct {
	ArgoCD, ApplicationCRD, AppProjectCRD string
}

// EnsureArgoCD returns the cached Argo CD binary and CRDs, building them first
// if needed (with the control plane and Velero: ensureK8sRig).
func EnsureArgoCD(ctx context.Context, progress io.Writer) (ArgoCDBinaries, error) {
	b, err := ensureK8sRig(ctx, progress)
	return ArgoCDBinaries{ArgoCD: b.ArgoCD, ApplicationCRD: b.ApplicationCRD, AppProjectCRD: b.AppProjectCRD}, err
}

var argoApplicationGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// ArgoCD is the real Argo CD running as local processes against a rig
// cluster, the way Argo CD's own Procfile runs it for development: Redis,
// the repo-server and the application-controller (no API server, no UI:
// lifeboat talks to Applications through the Kubernetes API). Applications
// come from a local git repository (file://).
type ArgoCD struct {
	// Namespace is Argo CD's namespace ("argocd").
	Namespace string
	// Repo is the git repository's working tree; RepoURL its file:// URL.
	Repo, RepoURL string

	dyn   dynamic.Interface
	procs []*proc
}

// StartArgoCD installs Argo CD's CRDs, namespace, settings and default
// project on the cluster, creates the git repository, and starts Redis, the
// repo-server and the application-controller.
func StartArgoCD(ctx context.Context, k *Kube, dir string, progress io.Writer) (a *ArgoCD, err error) {
	if progress == nil {
		progress = io.Discard
	}
	bins, err := EnsureArgoCD(ctx, progress)
	if err != nil {
		return nil, err
	}
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("Argo CD needs Redis: redis-server is not installed — run `make tools` (it installs Debian's redis-server)")
	}
	started := time.Now()
	a = &ArgoCD{Namespace: "argocd", Repo: filepath.Join(dir, "gitops")}
	a.RepoURL = "file://" + a.Repo
	stopOnError := a
	defer func() {
		if err != nil {
			stopOnError.Stop()
		}
	}()
	if a.dyn, err = dynamic.NewForConfig(k.RESTConfig()); err != nil {
		return nil, err
	}
	for _, f := range []string{bins.ApplicationCRD, bins.AppProjectCRD} {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := ApplyCRDs(ctx, k.RESTConfig(), filepath.Base(f), data); err != nil {
			return nil, err
		}
	}
	if err := a.install(ctx, k); err != nil {
		return nil, err
	}
	if err := a.initRepo(); err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	redisAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	rp, err := startProc("redis", redis, filepath.Join(dir, "redis.log"), "--port", fmt.Sprint(ports[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	a.procs = append(a.procs, rp)
	if err := waitListening(ctx, rp, redisAddr, time.Minute); err != nil {
		return nil, err
	}
	local := filepath.Join(dir, "argocd-local")
	env := func(role string) []string {
		return []string{"ARGOCD_BINARY_NAME=" + role, "ARGOCD_FAKE_IN_CLUSTER=true", "KUBECONFIG=" + k.Kubeconfig,
			"ARGOCD_TLS_DATA_PATH=" + filepath.Join(local, "tls"), "ARGOCD_SSH_DATA_PATH=" + filepath.Join(local, "ssh"),
			"ARGOCD_GPG_ENABLED=false", "ARGOCD_GNUPGHOME=" + filepath.Join(local, "gpg")}
	}
	repoAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	repo, err := startProcEnv("argocd-repo-server", bins.ArgoCD, filepath.Join(dir, "argocd-repo-server.log"), env("argocd-repo-server"),
		"--port", fmt.Sprint(ports[1]), "--metrics-port", fmt.Sprint(ports[2]), "--redis", redisAddr, "--disable-tls", "--loglevel", "info")
	if err != nil {
		return nil, err
	}
	a.procs = append(a.procs, repo)
	if err := waitListening(ctx, repo, repoAddr, 2*time.Minute); err != nil {
		return nil, err
	}
	ctl, err := startProcEnv("argocd-application-controller", bins.ArgoCD, filepath.Join(dir, "argocd-application-controller.log"), env("argocd-application-controller"),
		"--kubeconfig", k.Kubeconfig, "--namespace", a.Namespace, "--redis", redisAddr, "--repo-server", repoAddr, "--repo-server-plaintext",
		"--metrics-port", fmt.Sprint(ports[3]), "--loglevel", "info")
	if err != nil {
		return nil, err
	}
	a.procs = append(a.procs, ctl)
	if err := waitListening(ctx, ctl, fmt.Sprintf("127.0.0.1:%d", ports[3]), 2*time.Minute); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "rig: Argo CD %s is up (redis, repo-server, application-controller; repository %s) (%s)\n", ArgoCDVersion, a.RepoURL, time.Since(started).Round(100*time.Millisecond))
	return a, nil
}

// install writes Argo CD's settings (argocd-cm, argocd-rbac-cm,
// argocd-secret, labelled as Argo CD's informers expect) and the default
// AppProject.
func (a *ArgoCD) install(ctx context.Context, k *Kube) error {
	c, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		return err
	}
	part := map[string]string{"app.kubernetes.io/part-of": "argocd"}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.Namespace}}, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	for _, name := range []string{"argocd-cm", "argocd-rbac-cm"} {
		if _, err := c.CoreV1().ConfigMaps(a.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: part}}, metav1.CreateOptions{}); ignoreExists(err) != nil {
			return err
		}
	}
	key := make([]byte, 24)
	_, _ = rand.Read(key)
	if _, err := c.CoreV1().Secrets(a.Namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Labels: part},
		StringData: map[string]string{"server.secretkey": hex.EncodeToString(key)}}, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return err
	}
	project := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": "default", "namespace": a.Namespace},
		"spec": map[string]any{"sourceRepos": []any{"*"}, "destinations": []any{map[string]any{"namespace": "*", "server": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}}}}}
	_, err = a.dyn.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}).Namespace(a.Namespace).
		Create(ctx, project, metav1.CreateOptions{})
	return ignoreExists(err)
}

// ignoreExists is err, except that "already exists" is no error.
func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (a *ArgoCD) initRepo() error {
	if err := os.MkdirAll(a.Repo, 0o755); err != nil {
		return err
	}
	if err := a.git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	return a.Publish("README.md", "The rig's GitOps repository: one directory per Argo CD Application.\n")
}

func (a *ArgoCD) git(args ...string) error {
	cmd := exec.Command("git", append([]string{"-c", "user.name=lifeboat rig", "-c", "user.email=rig@lifeboat.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = a.Repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Publish commits a file (path relative to the repository) to main, as a
// developer's merge would.
func (a *ArgoCD) Publish(path, content string) error {
	full := filepath.Join(a.Repo, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		return err
	}
	if err := a.git("add", "-A"); err != nil {
		return err
	}
	return a.git("commit", "-q", "--allow-empty", "-m", "publish "+path)
}

// AddApplication creates an Application that deploys the repository's
// directory path into namespace (created by the sync if missing), with no
// automated sync: a sync happens when someone (lifeboat) asks for one.
func (a *ArgoCD) AddApplication(ctx context.Context, name, path, namespace string) error {
	app := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": name, "namespace": a.Namespace},
		"spec": map[string]any{"project": "default",
			"source":      map[string]any{"repoURL": a.RepoURL, "path": path, "targetRevision": "main"},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": namespace},
			"syncPolicy":  map[string]any{"syncOptions": []any{"CreateNamespace=true"}}}}}
	_, err := a.dyn.Resource(argoApplicationGVR).Namespace(a.Namespace).Create(ctx, app, metav1.CreateOptions{})
	return err
}

// Stop stops the controller, the repo-server and Redis.
func (a *ArgoCD) Stop() {
	for i := len(a.procs) - 1; i >= 0; i-- {
		a.procs[i].stop()
	}
	a.procs = nil
}
