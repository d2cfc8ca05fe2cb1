//go:build integration

package testsuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// One distinct secret per path that leaked before (issue 11).
const (
	plantedWebhookToken = "planted-webhook-token-4b8e21"  // the path of the unreachable step webhook
	plantedNotifyToken  = "planted-notify-token-93ac5f"   // the run's own notification webhook
	plantedCloudflare   = "planted-cloudflare-token-d17e" // a worker variable a runbook tries to read
	plantedBearer       = "planted-bearer-token-61f0aa"   // an http.check Authorization header, echoed back
	plantedTFVar        = "planted-tf-variable-2c9d47"    // a terraform variable an error quotes
)

const leakyBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: leaky-failover, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  approvers: {ic: [alice, bob]}
  layers:
    network:
      - id: tf-network
        action: terraform.apply
        with: {dir: %q}
        retry: {attempts: 1}
        onFailure: continue
    workloads:
      - id: case-api-authorized
        action: http.check
        with: {url: "%s/private", headersEnv: {Authorization: CASE_API_TOKEN}}
        retry: {attempts: 1}
        onFailure: continue
    edge:
      - id: tell-the-bridge
        action: notify.webhook
        with: {urlEnv: DR_WEBHOOK, text: "{runbook}: traffic moved"}
        retry: {attempts: 1}
      - id: last-look
        action: http.check
        approval: {from: [ic]}
        with: {url: "%s/private"}
`

const envBook = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: leaky-env, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    edge:
      - id: tell
        action: notify.webhook
        with: {urlEnv: CLOUDFLARE_API_TOKEN, text: hi}
`

// TestPlantedSecretsAreFoundNowhere plants a distinct secret in each path
// that leaked (an unreachable webhook's URL, the run's own notification
// webhook, a worker variable a runbook names, an http.check header a
// service echoes, a terraform variable), drives runs that fail on each
// through lifeboat dev and the CLI, and searches the raw history on the
// server, the worker's and the CLI's output, the evidence files, the status
// query and the Temporal UI's pages: 0 occurrences.
func TestPlantedSecretsAreFoundNowhere(t *testing.T) {
	t.Parallel() // waits two minutes for a notification to give up: it overlaps the other slow tests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden for "+r.Header.Get("Authorization"), http.StatusForbidden)
	}))
	defer echo.Close()
	tf, err := testsuite.EnsureTerraform(ctx, os.Stderr)
	require.NoError(t, err)
	tfDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tfDir, "main.tf"), []byte(`variable "db_password" { default = "`+plantedTFVar+`" }
output "port" { value = tonumber(var.db_password) }
`), 0o644))
	cat := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cat, "leaky.yaml"), []byte(fmt.Sprintf(leakyBook, tfDir, echo.URL, echo.URL)), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cat, "env.yaml"), []byte(envBook), 0o644))
	dev := startLifeboatDev(t, cat,
		"LIFEBOAT_TERRAFORM="+tf, "LIFEBOAT_LOG_LEVEL=debug",
		"DR_WEBHOOK=http://127.0.0.1:1/services/T0/B0/"+plantedWebhookToken,
		"LIFEBOAT_NOTIFY_WEBHOOK=http://127.0.0.1:1/hooks/"+plantedNotifyToken,
		"CLOUDFLARE_API_TOKEN="+plantedCloudflare, "LIFEBOAT_CLOUDFLARE_TOKEN_ENV=CLOUDFLARE_API_TOKEN",
		"CASE_API_TOKEN=Bearer "+plantedBearer, "LIFEBOAT_SECRET_ENV=DR_WEBHOOK,CASE_API_TOKEN")
	bin := buildLifeboat(t)
	var cliOut strings.Builder
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS=127.0.0.1:"+dev.port, "LIFEBOAT_LOG_LEVEL=debug",
			"LIFEBOAT_KEY_DIR="+filepath.Join(dev.state, "keys"), "LIFEBOAT_EVIDENCE_DIR="+filepath.Join(dev.state, "evidence"))
		out, err := cmd.CombinedOutput()
		cliOut.Write(out)
		return string(out), err
	}

	out, err := cli("failover", "leaky-env", "--reason", "leak test", "--as", "alice")
	require.Error(t, err, "a runbook naming CLOUDFLARE_API_TOKEN is refused")
	assert.Contains(t, out, "does not let runbooks read: CLOUDFLARE_API_TOKEN")

	out, err = cli("failover", "leaky-failover", "--reason", "leak test", "--as", "alice", "--output", "json")
	require.NoError(t, err, out)
	id := between(out, `"workflowId": "`, `"`)
	c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + dev.port, Logger: quiet{}})
	require.NoError(t, err)
	defer c.Close()
	st := starter.New(c, "lifeboat")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := st.Status(ctx, id)
		if err == nil && len(s.Steps) == 4 && s.Steps[2].State == workflows.StatePaused {
			break
		}
		require.True(t, time.Now().Before(deadline), "the run never paused on the unreachable webhook: %+v %v", s, err)
		time.Sleep(300 * time.Millisecond)
	}
	status, err := cli("status", id, "--output", "json")
	require.NoError(t, err, status)
	b := openBrowser(ctx, t, "http://localhost:"+dev.uiPort, "secrets")
	var pages []string
	for _, tab := range []string{"history", "user-metadata", "pending-activities"} {
		require.NoError(t, b.OpenWorkflow(id, tab))
		time.Sleep(2 * time.Second)
		pages = append(pages, b.Text())
		b.Shot("paused-" + tab)
	}
	out, err = cli("skip", id, "tell-the-bridge", "--reason", "the bridge is down with the region", "--as", "bob")
	require.NoError(t, err, out)
	out, err = cli("abort", id, "--reason", "leak test over", "--as", "bob")
	require.NoError(t, err, out)
	ev, err := st.Wait(ctx, id)
	require.NoError(t, err)
	require.NoError(t, b.OpenWorkflow(id, "history"))
	time.Sleep(2 * time.Second)
	pages = append(pages, b.Text())
	out, err = cli("evidence", id, "-o", "md")
	require.NoError(t, err, out)

	// The failures happened, and say what failed without the secret.
	steps := map[string]string{}
	for _, s := range ev.Steps {
		steps[s.ID] = s.State + ": " + s.Error
	}
	assert.Contains(t, steps["tf-network"], "failed: ")
	assert.Contains(t, steps["case-api-authorized"], "answered 403")
	assert.Contains(t, steps["tell-the-bridge"], "$DR_WEBHOOK")
	var notifyFailed bool
	for _, e := range ev.Events {
		notifyFailed = notifyFailed || e.Kind == "notify-failed"
	}
	assert.True(t, notifyFailed, "the run's own notification failed too: %+v", ev.Events)

	hay := map[string]string{"the CLI's output": cliOut.String(), "the worker's log": dev.log.String(), "status --output json": status,
		"the UI pages": strings.Join(pages, "\n")}
	raw, err := st.HistoryJSON(ctx, id)
	require.NoError(t, err)
	hay["the raw history"] = string(raw)
	files := evidenceFiles(t, filepath.Join(dev.state, "evidence"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		hay["evidence file "+filepath.Base(f)] = string(b)
	}
	all, _ := json.Marshal(hay)
	require.Contains(t, string(all), "tell-the-bridge", "the haystack holds the run (sanity)")
	for _, secret := range []string{plantedWebhookToken, plantedNotifyToken, plantedCloudflare, plantedBearer, plantedTFVar} {
		found := 0
		for where, text := range hay {
			if n := strings.Count(text, secret); n > 0 {
				found += n
				t.Errorf("%s appears %d time(s) in %s", secret, n, where)
			}
		}
		assert.Zero(t, found, secret)
	}
}
