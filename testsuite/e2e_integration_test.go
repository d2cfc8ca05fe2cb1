//go:build integration

package testsuite_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/testsuite"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// syncBuffer collects the worker's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRegionFailoverEndToEnd runs example (a) through a real worker on the
// dev server and the rig — terraform, kube, Velero, Cloudflare — first as a
// drill, then as a failover approved through an update, and then greps every
// history, the worker's log and the evidence for the secret values planted in
// the rig.
func TestRegionFailoverEndToEnd(t *testing.T) {
	srv := testsuite.Temporal(t)
	ctx := context.Background()
	stack, err := testsuite.StartStack(ctx, t.TempDir())
	require.NoError(t, err, "the rig must start (CI=%v)", testsuite.InCI())
	t.Cleanup(stack.Stop)

	example, err := os.ReadFile("../runbooks/examples/case-management-region-failover.yaml")
	require.NoError(t, err)
	catalog := filepath.Join(t.TempDir(), "catalog")
	require.NoError(t, os.MkdirAll(catalog, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(catalog, "a.yaml"), stack.Runbook(example), 0o644))

	t.Setenv("E2E_CF_TOKEN", testsuite.PlantedCFToken)
	cfg := worker.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue = srv.HostPort, "lifeboat-e2e"
	cfg.Catalog, cfg.EvidenceDir, cfg.BaseDir = []string{catalog}, filepath.Join(t.TempDir(), "evidence"), stack.BaseDir
	cfg.Kube.Kubeconfig, cfg.Terraform.Binary = stack.Kube.Kubeconfig, stack.Terraform
	cfg.Cloudflare = worker.CloudflareConfig{TokenEnv: "E2E_CF_TOKEN", BaseURL: stack.Cloudflare.URL}
	require.NoError(t, cfg.CheckWorker())
	opts, err := cfg.ClientOptions()
	require.NoError(t, err)
	logs := &syncBuffer{}
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c, err := client.Dial(opts)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, cfg, worker.Registry(cfg), sdkworker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	st := starter.New(c, cfg.Temporal.TaskQueue)
	declared := stack.DeclaredAt
	var ids []string

	t.Run("drill", func(t *testing.T) {
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeDrill,
			RequestedBy: "alice", Reason: "quarterly drill", DeclaredAt: &declared})
		require.NoError(t, err)
		ids = append(ids, run.WorkflowID)
		ev := waitEvidence(t, st, run.WorkflowID)
		for _, s := range ev.Steps {
			want := workflows.StateSucceeded
			if s.ID == "shift-traffic" {
				want = workflows.StateSkipped
			}
			assert.Equal(t, want, s.State, "%s: %s", s.ID, s.Error)
		}
		assert.Equal(t, "succeeded", ev.Outcome)
		require.NotNil(t, ev.RPOActual)
		assert.Equal(t, runbooks.Duration(8*time.Minute), *ev.RPOActual)
		assert.Contains(t, ev.RecoveryPointName, "production-critical-hourly-")
		assert.False(t, ev.RTOBreached)
		assert.Equal(t, "primary-lb.ca-central-1.example.com", stack.Cloudflare.Records(stack.Zone, "case.example.com")[0].Content, "a drill never moves traffic")
		assert.Contains(t, ev.Invariant, "validated by drill")
		assert.Equal(t, "L4", ev.Level, ev.LevelReason)
	})

	t.Run("failover with an approval", func(t *testing.T) {
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeFailover,
			RequestedBy: "carol", Reason: "ca-central-1 is down", DeclaredAt: &declared})
		require.NoError(t, err)
		ids = append(ids, run.WorkflowID)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			s, err := st.Status(ctx, run.WorkflowID)
			require.NoError(t, err)
			if s.State == workflows.StateAwaitingApproval {
				break
			}
			require.False(t, s.Finished, "the run ended before the approval gate")
			require.True(t, time.Now().Before(deadline), "never reached the approval gate (state %s)", s.State)
			time.Sleep(250 * time.Millisecond)
		}
		_, err = st.Approve(ctx, run.WorkflowID, workflows.Approve{Step: "shift-traffic", By: "bob", Comment: "data verified"})
		require.NoError(t, err)
		ev := waitEvidence(t, st, run.WorkflowID)
		assert.Equal(t, "succeeded", ev.Outcome, "%+v", ev.FailedChecks)
		assert.Equal(t, "L5", ev.Level, ev.LevelReason)
		rec := stack.Cloudflare.Records(stack.Zone, "case.example.com")[0]
		assert.Equal(t, "dr-lb.ca-west-1.example.com", rec.Content)
		assert.Equal(t, 30, rec.TTL)
		for _, s := range ev.Steps {
			if s.ID == "shift-traffic" {
				assert.Equal(t, "primary-lb.ca-central-1.example.com", s.Outputs["previous"].(map[string]any)["content"])
			}
		}
	})

	t.Run("no planted secret appears in any history, log or evidence", func(t *testing.T) {
		var haystacks []string
		for _, id := range ids {
			h, err := st.HistoryJSON(ctx, id)
			require.NoError(t, err)
			haystacks = append(haystacks, string(h))
		}
		files, _ := filepath.Glob(filepath.Join(cfg.EvidenceDir, "*"))
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			haystacks = append(haystacks, string(b))
		}
		haystacks = append(haystacks, logs.String())
		require.Contains(t, strings.Join(haystacks, "\n"), "case-api-db", "the haystack holds the run (sanity)")
		for _, secret := range []string{testsuite.PlantedDBPassword, testsuite.PlantedRestoredPass, testsuite.PlantedCFToken} {
			for i, h := range haystacks {
				assert.NotContains(t, h, secret, "haystack %d", i)
			}
		}
	})
}

func waitEvidence(t *testing.T, st *starter.Starter, id string) runbooks.Evidence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ev, err := st.Wait(ctx, id)
	require.NoError(t, err)
	t.Logf("%s", ev.Markdown())
	return ev
}
