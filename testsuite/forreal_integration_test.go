//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/testsuite"
)

// TestRunItForRealAsDocumented follows docs/running-for-real.md
// section on the rig, with the binary taken out of the image (step 1): a
// Temporal cluster over mTLS whose namespace `lifeboat setup` prepares
// (step 2); a bucket made with Object Lock (step 4); two workers, each
// with its own ssh-keygen key, started with deploy/kubernetes's own
// config, where only what a site changes is changed (addresses, paths, the
// bucket's endpoint), ready by /readyz (step 5); the allowed_signers lines
// as the page writes them. Drills started at once from the CLI all end,
// and `lifeboat evidence verify` with the same config (the bucket, and the
// cluster's finished runs) verifies every record, signed by the two
// workers' keys. Step 3 (the RBAC) is the end-to-end test's worker.
func TestRunItForRealAsDocumented(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()

	// 1. make image: everything below runs the image's own binary.
	bin, _ := imageBinary(t)

	cl, err := testsuite.StartTemporalCluster(ctx, filepath.Join(dir, "temporal"), os.Stderr)
	require.NoError(t, err, "CI=%v", testsuite.InCI())
	t.Cleanup(cl.Stop)
	o, err := testsuite.StartLockingObjectStore(ctx, filepath.Join(dir, "s3"), io.Discard)
	require.NoError(t, err)
	t.Cleanup(o.Stop)
	credentials := filepath.Join(dir, "aws-credentials")
	require.NoError(t, o.CredentialsFile(credentials))

	// The keys, as docs/running-for-real.md makes them: ssh-keygen -t ed25519.
	keygen := func(path, comment string) string {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
		require.NoError(t, err, string(out))
		pub, err := os.ReadFile(path + ".pub")
		require.NoError(t, err)
		return strings.TrimSpace(string(pub))
	}
	keyA, keyB := filepath.Join(dir, "worker-key-a", "key"), filepath.Join(dir, "worker-key-b", "key")
	pubA, pubB := keygen(keyA, "lifeboat-worker-a"), keygen(keyB, "lifeboat-worker-b")
	people := filepath.Join(dir, "people")
	alice := keygen(filepath.Join(people, "alice"), "alice")
	allowed := filepath.Join(dir, "allowed_signers")
	require.NoError(t, os.WriteFile(allowed, []byte(strings.Join([]string{
		`alice namespaces="lifeboat" ` + alice,
		`lifeboat-worker namespaces="lifeboat-evidence" ` + pubA, // the page's lines, one per worker key
		`lifeboat-worker namespaces="lifeboat-evidence" ` + pubB,
	}, "\n")+"\n"), 0o644))

	// The runbook: checks of a service that answers.
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(svc.Close)
	catalog := filepath.Join(dir, "runbooks")
	require.NoError(t, os.MkdirAll(catalog, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(catalog, "for-real.yaml"), []byte(fmt.Sprintf(`apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: for-real, version: 1}
spec:
  scope: application
  objectives: {rto: 30m}
  approvers: {ic: [alice]}
  layers:
    workloads:
      - {id: service-answers, action: http.check, with: {url: %q}}
    edge:
      - {id: journey, action: http.check, with: {url: %q}, needs: [service-answers]}
`, svc.URL, svc.URL+"/journey")), 0o644))

	// deploy/kubernetes's config, with what a site changes changed.
	config := deployConfig(t, func(c map[string]any) {
		tmp := c["temporal"].(map[string]any)
		tmp["address"], tmp["namespace"] = cl.HostPort, cl.Namespace
		tls := tmp["tls"].(map[string]any)
		tls["cert"], tls["key"] = cl.ClientCert, cl.ClientKey
		tls["ca"], tls["serverName"] = cl.CA, cl.ServerName // a private CA (Temporal Cloud needs neither)
		c["catalog"] = []string{catalog}
		ev := c["evidence"].(map[string]any)
		ev["url"] = "s3://" + testsuite.EvidenceBucket + "/lifeboat"
		ev["endpoint"], ev["credentialsFile"] = o.URL, credentials // S3-compatible storage, not AWS,
		ev["region"] = "us-east-1"                                 // in the region it answers for
		c["signatures"].(map[string]any)["allowedSigners"] = allowed
	})
	cfgPath := filepath.Join(dir, "lifeboat.yaml")
	require.NoError(t, os.WriteFile(cfgPath, config, 0o644))

	// 2. The namespace.
	out, err := exec.Command(bin, "setup", "--config", cfgPath).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "added search attributes")

	// 5. Two workers, each with its own key, ready when the frontend and the bucket answer.
	for _, key := range []string{keyA, keyB} {
		addr := "127.0.0.1:" + freePort(t)
		cmd := exec.Command(bin, "worker", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "LIFEBOAT_WORKER_KEY="+key, "LIFEBOAT_METRICS_ADDR="+addr)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		require.Eventually(t, func() bool {
			res, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		}, 60*time.Second, 200*time.Millisecond, "worker with %s never ready", key)
	}

	// Drills from the CLI, at once, signed by alice.
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--config", cfgPath)...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_KEY_DIR="+people)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	const drills = 4
	var wg sync.WaitGroup
	outs := make([]string, drills)
	errs := make([]error, drills)
	for i := range drills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cli("drill", "for-real", "--as", "alice", "--reason", "quarterly drill", "--follow")
		}()
	}
	wg.Wait()
	for i := range drills {
		require.NoError(t, errs[i], outs[i])
		assert.Contains(t, outs[i], "succeeded", outs[i])
	}

	// The UI beside the cluster (over the same mTLS) lists them by lifeboat's search attributes.
	ui, err := cl.StartUI(ctx)
	require.NoError(t, err)
	listed := func() int {
		res, err := http.Get(ui + "/api/v1/namespaces/" + cl.Namespace + "/workflows?query=" + url.QueryEscape("LifeboatRunbook = 'for-real' AND LifeboatState = 'succeeded'"))
		require.NoError(t, err)
		defer res.Body.Close()
		var list struct {
			Executions []struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
			} `json:"executions"`
		}
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
		return len(list.Executions)
	}
	require.Eventually(t, func() bool { return listed() == drills }, 30*time.Second, 500*time.Millisecond,
		"the UI's list of succeeded for-real runs (visibility is written after the run)")
	page, err := http.Get(ui + "/namespaces/" + cl.Namespace + "/workflows")
	require.NoError(t, err)
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	assert.Equal(t, http.StatusOK, page.StatusCode)
	assert.Contains(t, string(html), "<html", "the UI's page itself is served")

	// The auditor: the config's bucket, cross-checked with the cluster's finished runs.
	out2, err := cli("evidence", "verify")
	require.NoError(t, err, out2)
	assert.Contains(t, out2, fmt.Sprintf("evidence verifies: %d record(s)", drills))
	assert.Contains(t, out2, fmt.Sprintf("%d record(s) cross-checked with the finished runs in Temporal", drills))

	// Every record is in the locked bucket, signed by one of the two workers.
	st, err := evidence.NewS3Store(evidence.S3Options{URL: "s3://" + testsuite.EvidenceBucket + "/lifeboat", Endpoint: o.URL, RetentionDays: 1, Credentials: o.Credentials()})
	require.NoError(t, err)
	names, err := st.List(ctx, "lifeboat-for-real-drill", "")
	require.NoError(t, err)
	fingerprints := map[string]bool{}
	for _, pub := range []string{pubA, pubB} {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
		require.NoError(t, err)
		fingerprints[ssh.FingerprintSHA256(k)] = true
	}
	records := 0
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		b, err := st.Get(ctx, n)
		require.NoError(t, err)
		var ev record.Evidence
		require.NoError(t, json.Unmarshal(b, &ev))
		require.NotNil(t, ev.Seal, n)
		assert.True(t, fingerprints[ev.Seal.Signer], "%s signed by %s, not a worker key", n, ev.Seal.Signer)
		records++
	}
	assert.Equal(t, drills, records)
}

// deployConfig is the lifeboat.yaml of deploy/kubernetes/config.yaml's
// ConfigMap, changed by edit.
func deployConfig(t *testing.T, edit func(map[string]any)) []byte {
	b, err := os.ReadFile("../deploy/kubernetes/config.yaml")
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var cm struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Data     map[string]string     `yaml:"data"`
		}
		err := dec.Decode(&cm)
		require.NoError(t, err, "no ConfigMap lifeboat-config in deploy/kubernetes/config.yaml")
		if cm.Kind != "ConfigMap" || cm.Metadata.Name != "lifeboat-config" {
			continue
		}
		var c map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(cm.Data["lifeboat.yaml"]), &c))
		edit(c)
		out, err := yaml.Marshal(c)
		require.NoError(t, err)
		return out
	}
}
