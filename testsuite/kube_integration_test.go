//go:build integration

package testsuite_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestKubeRigStarts starts the real control plane and checks it serves with
// token auth and RBAC, and that the controller-manager runs its controllers
// (the service-account controller creates the default ServiceAccount).
func TestKubeRigStarts(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k, err := testsuite.StartKube(ctx, testsuite.KubeOptions{Dir: t.TempDir(), Context: "dr-ca-west-1"})
	require.NoError(t, err, "the kube rig must start (CI=%v)", testsuite.InCI())
	t.Cleanup(k.Stop)

	ca, err := os.ReadFile(k.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, token string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, get("/readyz", k.Token), "the serving certificate verifies against the rig CA")
	assert.Equal(t, http.StatusUnauthorized, get("/api/v1/namespaces", "wrong-token"), "token auth is on")
	deadline := time.Now().Add(2 * time.Minute)
	for get("/api/v1/namespaces/default/serviceaccounts/default", k.Token) != http.StatusOK {
		require.True(t, time.Now().Before(deadline), "the controller-manager never created the default ServiceAccount")
		time.Sleep(250 * time.Millisecond)
	}
	kc, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	assert.Contains(t, string(kc), "current-context: dr-ca-west-1")
}

// TestDeploymentBecomesReadyThroughTheRealControllerManager shows the node
// simulator and the real controllers together: a Deployment's pods are
// created by the ReplicaSet controller, bound and made Ready by the simulator,
// and the Deployment reports ready replicas; a crash-looping pod keeps it not ready.
func TestDeploymentBecomesReadyThroughTheRealControllerManager(t *testing.T) {
	t.Parallel() // its own dev server and rig: it overlaps the others (see the Makefile)
	rig := testsuite.StartKubeRig(t, "dr")
	ctx := context.Background()
	c, err := kubernetes.NewForConfig(rig.RESTConfig())
	require.NoError(t, err)
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-management"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	rig.Nodes.CrashLoop("worker-")
	for name, replicas := range map[string]int32{"case-api": 2, "worker": 1} {
		_, err = c.AppsV1().Deployments("case-management").Create(ctx, deployment(name, replicas), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		d, err := c.AppsV1().Deployments("case-management").Get(ctx, "case-api", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	}, 2*time.Minute, 200*time.Millisecond, "case-api never became ready")
	d, err := c.AppsV1().Deployments("case-management").Get(ctx, "worker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(0), d.Status.ReadyReplicas, "the crash-looping worker must not be ready")
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1.0"}}},
			},
		},
	}
}
