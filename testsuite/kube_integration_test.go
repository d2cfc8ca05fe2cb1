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

	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestKubeRigStarts starts the real control plane and checks it serves with
// token auth and RBAC, and that the controller-manager runs its controllers
// (the service-account controller creates the default ServiceAccount).
func TestKubeRigStarts(t *testing.T) {
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
