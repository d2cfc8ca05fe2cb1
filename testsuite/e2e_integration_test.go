//go:build integration

package testsuite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/lifeboat-dr/lifeboat/activities/failure"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/velero"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
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
	t.Parallel() // its own dev server and rig: it overlaps the other slow tests
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
	require.NoError(t, os.WriteFile(filepath.Join(catalog, "b.yaml"), []byte(neverDrilled), 0o644))
	// The same drill whose business journey fails and aborts it.
	failing := strings.NewReplacer("name: case-management-region-failover", "name: failing-region-drill",
		"expectStatus: 200}", "expectStatus: 599}", "retry: {attempts: 5, backoff: 10s}", "retry: {attempts: 1}\n        onFailure: abort").Replace(string(stack.Runbook(example)))
	require.NoError(t, os.WriteFile(filepath.Join(catalog, "c.yaml"), []byte(failing), 0o644))

	// The worker reads its token from the environment; the name is this
	// test's own (t.Setenv is not allowed in a parallel test).
	require.NoError(t, os.Setenv("E2E_CF_TOKEN", testsuite.PlantedCFToken))
	t.Cleanup(func() { _ = os.Unsetenv("E2E_CF_TOKEN") })
	cfg := worker.Defaults()
	cfg.Temporal.Address, cfg.Temporal.TaskQueue = srv.HostPort, "lifeboat-e2e"
	cfg.Catalog, cfg.EvidenceDir, cfg.BaseDir = []string{catalog}, filepath.Join(t.TempDir(), "evidence"), stack.BaseDir
	// The worker holds nothing in either cluster but what `lifeboat rbac`
	// grants for this catalog (applied below, once production is seeded):
	// every step runs on those permissions.
	cfg.Kube.Kubeconfig, cfg.Terraform.Binary = filepath.Join(t.TempDir(), "worker-kubeconfig"), stack.Terraform
	require.NoError(t, testsuite.WriteWorkerKubeconfig(cfg.Kube.Kubeconfig, stack.Primary.Kube, stack.DR.Kube))
	cfg.Cloudflare = worker.CloudflareConfig{TokenEnv: "E2E_CF_TOKEN", BaseURL: stack.Cloudflare.URL}
	cfg.Secrets.Dirs, cfg.Postgres = []string{stack.SecretsDir}, stack.DB.Instances()
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
	// The CRD blind spot, set up now so that the DR cluster has synced its
	// backup by the time it is checked below.
	blindSpot, err := stack.BackUpALateCRD(ctx)
	require.NoError(t, err)
	seedProduction(t, stack)
	grantWorker(t, catalog, stack)
	const drillNS = "restore-drill-case-management"
	production := stableProduction(t, stack, drillNS)
	unchanged := func(t *testing.T) {
		t.Helper()
		require.Empty(t, diffProduction(production, snapshotProduction(t, stack, drillNS)), "the drill changed production")
	}

	dryChanged := map[string]bool{}
	t.Run("a dry run of the drill changes nothing and says what the drill will change", func(t *testing.T) {
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeDrill,
			DryRun: true, RequestedBy: "alice", Reason: "what would the drill do?"})
		require.NoError(t, err)
		ev := waitEvidence(t, st, run.WorkflowID)
		require.NotNil(t, ev.DryRun)
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "%v", ev.DryRun.Errors)
		assert.Equal(t, "drill-dry-run", ev.Mode, "not counted as a drill")
		unchanged(t)
		kc, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		_, err = kc.CoreV1().Namespaces().Get(ctx, drillNS, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the dry run restored nothing: %v", err)
		whats := map[string][]string{}
		for _, c := range ev.DryRun.Changes {
			dryChanged[c.Step] = true
			whats[c.Step] = append(whats[c.Step], c.What+" → "+c.After)
		}
		t.Logf("dry run:\n%s", ev.Markdown())
		assert.Contains(t, whats["dr-network"], "terraform_data.vpc → create")
		assert.Contains(t, whats["dr-network"], "output lb_hostname → dr-lb.ca-west-1.example.com", "terraform's planned output")
		assert.Contains(t, strings.Join(whats["restore-case-data"], "\n"), "case-management → "+drillNS)
		assert.Contains(t, strings.Join(whats["restore-case-data"], "\n"), "Deployment in "+drillNS+" → restored: ", "from the backup's own resource list")
		assert.Contains(t, strings.Join(whats["scale-up"], "\n"), drillNS+"/case-api replicas → 4")
		assert.NotEmpty(t, whats["gitops-sync"])
		assert.NotEmpty(t, whats["identity-bindings"])
		assert.Contains(t, ev.DryRun.Unchanged, "business-journey")
	})

	t.Run("drill", func(t *testing.T) {
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeDrill,
			RequestedBy: "alice", Reason: "quarterly drill", DeclaredAt: &declared})
		require.NoError(t, err)
		ids = append(ids, run.WorkflowID)
		ev := waitEvidence(t, st, run.WorkflowID)
		changed := map[string]bool{}
		for _, step := range ev.Steps {
			if step.State == workflows.StateSucceeded && step.Layer != runbooks.TeardownLayer &&
				!slices.Contains([]string{"kube.canI", "kube.secretsPresent", "kube.crdsEstablished", "kube.waitReady", "http.check", "postgres.replicationLag", "postgres.verify"}, step.Action) {
				changed[step.ID] = true
			}
		}
		assert.Equal(t, changed, dryChanged, "the dry run listed every step the drill then changed something with, and no other")
		for _, s := range ev.Steps {
			want := workflows.StateSucceeded
			if s.ID == "shift-traffic" {
				want = workflows.StateSkipped
			}
			assert.Equal(t, want, s.State, "%s: %s", s.ID, s.Error)
		}
		assert.Equal(t, "succeeded", ev.Outcome)
		require.NotNil(t, ev.RPOActual)
		latest := stack.Backups[len(stack.Backups)-1]
		assert.Equal(t, latest.Name, ev.RecoveryPointName, "the newest backup Velero took of case-management")
		assert.Equal(t, runbooks.Duration(declared.Sub(latest.Started)), *ev.RPOActual, "the RPO is the worst source's: the backup's start, older than the replica's")
		require.Len(t, ev.RPOSources, 2, "the backup and the replica")
		assert.Contains(t, stepOf(t, ev, "promote-case-db").Summary, "promoted the drill's clone case-db-drill of the standby")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "verify-case-db").State, "the clone's data checked")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop-case-db-clone").State)
		assert.NoDirExists(t, stack.DB.Instances().Instances["case-db-drill"].DataDir, "the teardown removed the clone")
		assert.Equal(t, "standby", pgRole(t, stack.DB.Standby), "a drill never promotes production's replica")
		assert.Contains(t, stepOf(t, ev, "restore-case-data").Summary, "every expected kind restored", "the case files came back too")
		assert.False(t, ev.RTOBreached)
		assert.Equal(t, "primary-lb.ca-central-1.example.com", stack.Cloudflare.Records(stack.Zone, "case.example.com")[0].Content, "a drill never moves traffic")
		assert.Contains(t, ev.Invariant, "validated by drill")
		assert.Equal(t, "L4", ev.Level, ev.LevelReason)
		unchanged(t)
	})

	t.Run("a drill aborted mid-restore leaves production unchanged", func(t *testing.T) {
		// Once the run passed its pre-checks (which read the backup through
		// Velero), Velero's server goes down (its pod rescheduled): the
		// Restore waits, New.
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeDrill,
			RequestedBy: "alice", Reason: "abort drill", DeclaredAt: &declared})
		require.NoError(t, err)
		deadline := time.Now().Add(3 * time.Minute)
		stopped, restarted := false, false
		defer func() { // a failure below must not leave the later subtests without DR's Velero
			if stopped && !restarted {
				_ = stack.DR.Velero.Restart(ctx)
			}
		}()
		for {
			s, err := st.Status(ctx, run.WorkflowID)
			require.NoError(t, err)
			if s.Layer != "" && s.Layer != workflows.PrechecksLayer && !stopped {
				stack.DR.Velero.StopServer()
				stopped = true
			}
			if slices.ContainsFunc(s.Steps, func(step workflows.StepStatus) bool {
				return step.ID == "restore-case-data" && step.State == workflows.StateRunning
			}) {
				break
			}
			require.True(t, time.Now().Before(deadline), "the restore never started (state %s)", s.State)
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second) // the step has created its Restore, which stays New
		_, err = st.Abort(ctx, run.WorkflowID, workflows.Abort{By: "alice", Reason: "wrong backup"})
		require.NoError(t, err)
		ev := waitEvidence(t, st, run.WorkflowID)
		assert.Equal(t, workflows.RunAborted, ev.Outcome)
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop-drill-namespace").State)
		assert.Contains(t, stepOf(t, ev, "restore-case-data").Error, "had not started (New): lifeboat deleted it, so nothing was restored")
		require.NoError(t, stack.DR.Velero.Restart(ctx))
		restarted = true
		time.Sleep(3 * time.Second) // a Restore left behind would run now
		kc, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		_, err = kc.CoreV1().Namespaces().Get(ctx, drillNS, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing restores into the drill namespace after its teardown: %v", err)
		unchanged(t)
	})

	t.Run("a drill whose step fails leaves production unchanged", func(t *testing.T) {
		defer os.Remove(filepath.Join(catalog, "c.yaml")) // not part of the readiness below
		run, err := st.Start(ctx, workflows.Request{Runbook: "failing-region-drill", Mode: workflows.ModeDrill,
			RequestedBy: "alice", Reason: "failing drill", DeclaredAt: &declared})
		require.NoError(t, err)
		ev := waitEvidence(t, st, run.WorkflowID)
		assert.NotEqual(t, workflows.RunSucceeded, ev.Outcome)
		assert.Equal(t, workflows.StateFailed, stepOf(t, ev, "business-journey").State)
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop-drill-namespace").State)
		unchanged(t)
	})

	t.Run("a CRD installed after the primary's Velero started is caught by the restored-kinds check", func(t *testing.T) {
		va := &velero.Actions{Source: &kube.KubeconfigSource{Default: stack.Kubeconfig}}
		in := runbooks.StepInput{WorkflowID: "blind-spot", RunID: "r", StepID: "restore", Mode: workflows.ModeFailover,
			Targets: map[string]runbooks.Target{"dr": {KubeContext: testsuite.KubeContext}},
			Args: map[string]any{"target": "dr", "backup": blindSpot, "namespaces": []any{"case-management"},
				"namespaceMappings": map[string]any{"case-management": "blind-spot-check"},
				"expectKinds":       []any{"CaseFile.cases.example.com", "Escalation.cases.example.com"}}}
		var kinds *runbooks.CheckResult
		checks := va.Prechecks()["velero.restore"](ctx, in)
		for i, c := range checks {
			if strings.Contains(c.Name, "holds every expected kind") {
				kinds = &checks[i]
			}
		}
		require.NotNil(t, kinds, "%+v", checks)
		assert.False(t, kinds.OK)
		assert.Contains(t, kinds.Message, "holds no Escalation.cases.example.com", "the pre-check reads the backup's own resource list")
		_, err := va.Restore(ctx, in)
		require.Error(t, err, "Velero said Completed; lifeboat does not")
		assert.Contains(t, failure.Message(err), "brought back no Escalation.cases.example.com")
		assert.NotContains(t, failure.Message(err), "CaseFile", "the case files came back")
	})

	// What the failover will change, as it was before: the failback must put it back.
	recordBefore := stack.Cloudflare.Records(stack.Zone, "case.example.com")[0]
	t.Run("the primary region is lost", func(t *testing.T) {
		stack.LoseRegion()
		assert.NotEmpty(t, testsuite.Unreachable(ctx, stack.Primary.Kube), "the primary's API server is gone")
	})
	t.Run("failover with an approval", func(t *testing.T) {
		lost := stack.Primary.LostAt.UTC()
		run, err := st.Start(ctx, workflows.Request{Runbook: "case-management-region-failover", Mode: workflows.ModeFailover,
			RequestedBy: "carol", Reason: "ca-central-1 is down", DeclaredAt: &lost})
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
		latest := stack.Backups[len(stack.Backups)-1]
		assert.Equal(t, latest.Name, ev.RecoveryPointName, "the newest backup the lost primary's Velero wrote, restored in the DR cluster: the worst of the RPO's sources")
		require.Len(t, ev.RPOSources, 2)
		replica := ev.RPOSources[1]
		assert.Equal(t, "case-db-replica", replica.Step)
		assert.WithinDuration(t, stack.Primary.LostAt, replica.RecoveryPoint, 5*time.Second, "the replica's newest commit, just before the primary died")
		assert.Equal(t, "primary", pgRole(t, stack.DB.Standby), "the DR database was promoted")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "verify-case-db").State)
		md := ev.Markdown()
		assert.Contains(t, md, latest.Name)
		assert.Contains(t, md, "case-db-replica")
		restore := stepOf(t, ev, "restore-case-data")
		_, err = stack.DR.Velero.CLI(ctx, "restore", "describe", fmt.Sprint(restore.Outputs["restore"]))
		assert.NoError(t, err, "the Restore is the DR cluster's")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "business-journey").State, "the journey reached the restored service in the DR cluster")
		rec := stack.Cloudflare.Records(stack.Zone, "case.example.com")[0]
		assert.Equal(t, "dr-lb.ca-west-1.example.com", rec.Content, "the name terraform's output gave the DNS switch")
		assert.Equal(t, 30, rec.TTL)
		for _, s := range ev.Steps {
			if s.ID == "shift-traffic" {
				assert.Equal(t, "primary-lb.ca-central-1.example.com", s.Outputs["previous"].(map[string]any)["content"])
				assert.Equal(t, map[string]any{"steps.dr-network.outputs.lb_hostname": "dr-lb.ca-west-1.example.com"}, s.Inputs,
					"the evidence records the terraform output the switch used")
			}
		}
	})

	bin := buildLifeboat(t)
	cliCode := func(t *testing.T, args ...string) (cliOutput, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LIFEBOAT_ADDRESS="+srv.HostPort, "LIFEBOAT_TASK_QUEUE="+cfg.Temporal.TaskQueue,
			"LIFEBOAT_EVIDENCE_DIR="+cfg.EvidenceDir, "LIFEBOAT_CATALOG="+catalog, "LIFEBOAT_KUBECONFIG="+stack.Kubeconfig)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("lifeboat %s: %v", strings.Join(args, " "), err)
		}
		return cliOutput{string(out), stderr.String()}, cmd.ProcessState.ExitCode()
	}
	cli := func(t *testing.T, args ...string) cliOutput {
		t.Helper()
		out, code := cliCode(t, args...)
		require.Zero(t, code, "lifeboat %s:\n%s%s", strings.Join(args, " "), out.stdout, out.stderr)
		return out
	}
	schedules := func(t *testing.T) []starter.ScheduleInfo {
		var list []starter.ScheduleInfo
		require.NoError(t, json.Unmarshal([]byte(cli(t, "drill", "schedules", "--output", "json").stdout), &list))
		return list
	}
	var scheduled string

	t.Run("failback home: the database switched back, DR's objects restored into the primary, then traffic", func(t *testing.T) {
		require.GreaterOrEqual(t, len(ids), 2, "needs the failover above")
		// While DR served: a case opened and a setting changed there.
		c, err := stack.DB.Standby.Connect(ctx)
		require.NoError(t, err)
		_, err = c.Exec(ctx, "INSERT INTO cases (title) VALUES ('opened in ca-west-1 during the failover')")
		require.NoError(t, err)
		c.Close(ctx)
		kc, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		cm, err := kc.CoreV1().ConfigMaps("case-management").Get(ctx, "case-api-config", metav1.GetOptions{})
		require.NoError(t, err)
		cm.Data["CHANGED_IN_DR"] = "yes"
		_, err = kc.CoreV1().ConfigMaps("case-management").Update(ctx, cm, metav1.UpdateOptions{})
		require.NoError(t, err)

		require.NoError(t, stack.BringBackPrimary(ctx), "the primary's processes start again on their data")
		pc, err := kubernetes.NewForConfig(stack.Primary.Kube.RESTConfig())
		require.NoError(t, err)
		_, err = pc.CoreV1().ConfigMaps("case-management").Get(ctx, "case-api-config", metav1.GetOptions{})
		require.NoError(t, err, "the primary's etcd kept production through the SIGKILL")
		assert.Equal(t, "primary", pgRole(t, stack.DB.Primary), "the old database came back as a second primary")

		out := cli(t, "failback", ids[1], "--as", "carol", "--reason", "ca-central-1 is back")
		id := strings.TrimSpace(between(out.stdout, "workflow: ", "\n"))
		require.NotEmpty(t, id, out.stdout)
		ids = append(ids, id)
		answered := map[string]bool{}
		deadline := time.Now().Add(8 * time.Minute)
		for {
			s, err := st.Status(ctx, id)
			require.NoError(t, err)
			if s.Finished {
				break
			}
			for _, p := range s.Pending {
				if answered[p.Step] {
					continue
				}
				answered[p.Step] = true
				switch p.Kind {
				case "approval":
					assert.Equal(t, "traffic-home", p.Step)
					cli(t, "approve", id, p.Step, "--as", "bob", "--comment", "primary healthy, data home")
				default:
					t.Fatalf("failback paused: %s", p.Message)
				}
			}
			require.True(t, time.Now().Before(deadline), "the failback did not finish (state %s)", s.State)
			time.Sleep(250 * time.Millisecond)
		}
		ev := waitEvidence(t, st, id)
		recordHistory(t, st, id, "failback-written-restore-order")
		assert.Equal(t, workflows.RunSucceeded, ev.Outcome, "%+v", ev.FailedChecks)
		require.NotNil(t, ev.Failback)
		assert.Equal(t, ids[1], ev.Failback.Of)
		assert.Empty(t, ev.Failback.Manual, "the runbook wrote its way home")
		assert.True(t, answered["traffic-home"], "moving traffic home passed its gate")
		traffic := stepOf(t, ev, "traffic-home")
		for _, data := range []string{"case-db-home", "dr-db-follows-primary", "restore-home"} {
			require.NotNil(t, stepOf(t, ev, data).Ended, data)
			assert.True(t, !stepOf(t, ev, data).Ended.After(*traffic.Started), "%s ended before traffic moved home", data)
		}

		after := stack.Cloudflare.Records(stack.Zone, "case.example.com")
		require.Len(t, after, 1)
		assert.Equal(t, recordBefore.Type, after[0].Type)
		assert.Equal(t, recordBefore.Content, after[0].Content)
		assert.Equal(t, recordBefore.TTL, after[0].TTL)
		assert.Equal(t, "primary", pgRole(t, stack.DB.Primary), "the database is home")
		assert.Equal(t, "standby", pgRole(t, stack.DB.Standby), "DR follows it again")
		p, err := stack.DB.Primary.Connect(ctx)
		require.NoError(t, err)
		defer p.Close(ctx)
		var n int
		require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM cases WHERE title = 'opened in ca-west-1 during the failover'").Scan(&n))
		assert.Equal(t, 1, n, "the case opened in DR is home")
		home, err := pc.CoreV1().ConfigMaps("case-management").Get(ctx, "case-api-config", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "yes", home.Data["CHANGED_IN_DR"], "DR's objects restored into the primary")
		d, err := kc.AppsV1().Deployments("case-management").Get(ctx, "case-api", metav1.GetOptions{})
		require.NoError(t, err)
		assert.EqualValues(t, 0, *d.Spec.Replicas, "DR wound down")
	})

	t.Run("a drill whose backup is missing stops before its first step; an approver's override lets it go on", func(t *testing.T) {
		missing := strings.NewReplacer("name: case-management-region-failover", "name: missing-backup-drill",
			"schedule: production-critical-hourly,", "backup: production-critical-hourly-19700101000000,").Replace(string(stack.Runbook(example)))
		file := filepath.Join(catalog, "d.yaml")
		require.NoError(t, os.WriteFile(file, []byte(missing), 0o644))
		defer os.Remove(file)
		out := cli(t, "drill", "missing-backup-drill", "--as", "alice", "--reason", "drill with a lost backup")
		id := strings.TrimSpace(between(out.stdout, "workflow: ", "\n"))
		require.NotEmpty(t, id, out.stdout)
		var s workflows.Status
		require.Eventually(t, func() bool {
			s, err = st.Status(ctx, id)
			return err == nil && s.State == workflows.StatePrecheckFailed
		}, 2*time.Minute, 250*time.Millisecond, "the drill stops at its pre-flight checks")
		for _, step := range s.Steps {
			assert.Nil(t, step.Started, "step %s started before the checks passed", step.ID)
		}
		status := cli(t, "status", id).stdout
		// restore-case-data's checks: each access it declares, then the backup exists.
		failed := regexp.MustCompile(`pre-flight check (restore-case-data#\d+) failed: backup production-critical-hourly-19700101000000 exists — Velero has no backup production-critical-hourly-19700101000000 in namespace velero; this cluster reads other clusters' backups through ReadOnly location\(s\) default`).FindStringSubmatch(status)
		require.NotNil(t, failed, "status:\n%s", status)
		check := failed[1]
		assert.Contains(t, status, "fix: name an existing backup")
		assert.Contains(t, status, "lifeboat override "+id+" "+check+" --reason TEXT --as NAME")
		out = cli(t, "override", id, check, "--as", "bob", "--reason", "the backup is being copied from the other region")
		require.Contains(t, out.stdout, "the run goes on", "status:\n%s", cli(t, "status", id).stdout)
		// The restore waits for DR's Velero to sync the backup the check
		// found missing (a sync that surely listed the bucket after the
		// step began); aborted meanwhile, it leaves no Restore behind.
		dc, err := cfg.DataConverter()
		require.NoError(t, err)
		var waiting string
		require.Eventually(t, func() bool {
			d, err := c.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				return false
			}
			for _, a := range d.PendingActivities {
				if a.GetActivityType().GetName() == "velero.restore" && a.HeartbeatDetails != nil {
					_ = dc.FromPayloads(a.HeartbeatDetails, &waiting)
				}
			}
			return strings.Contains(waiting, "has not yet synced backup production-critical-hourly-19700101000000")
		}, 2*time.Minute, 250*time.Millisecond, "the restore waits for DR's Velero to sync the missing backup (last heartbeat: %q)", waiting)
		cli(t, "abort", id, "--as", "alice", "--reason", "no backup after all")
		ev := waitEvidence(t, st, id)
		assert.Equal(t, workflows.RunAborted, ev.Outcome)
		assert.Contains(t, stepOf(t, ev, "restore-case-data").Error, "no Restore was created, nothing was restored")
		dyn, err := dynamic.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		restores, err := dyn.Resource(testsuite.RestoreGVR).Namespace("velero").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, r := range restores.Items {
			backup, _, _ := unstructured.NestedString(r.Object, "spec", "backupName")
			assert.NotEqual(t, "production-critical-hourly-19700101000000", backup, "restore %s was created", r.GetName())
		}
		var overridden *record.PrecheckRecord
		for i, c := range ev.Prechecks {
			if c.ID == check {
				overridden = &ev.Prechecks[i]
			}
		}
		require.NotNil(t, overridden, "%+v", ev.Prechecks)
		require.NotNil(t, overridden.Override)
		assert.Equal(t, "bob", overridden.Override.By)
		assert.Contains(t, overridden.Override.Text, "the backup is being copied from the other region")
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop-drill-namespace").State, "the teardown ran")
	})

	t.Run("lifeboat precheck names an expired Cloudflare token before a failover", func(t *testing.T) {
		stack.Cloudflare.ExpireToken(testsuite.PlantedCFToken)
		defer stack.Cloudflare.RenewToken(testsuite.PlantedCFToken)
		out, code := cliCode(t, "precheck", "case-management-region-failover", "--mode", "failover", "--as", "alice")
		assert.Equal(t, 1, code, out.stdout+out.stderr)
		assert.Contains(t, out.stdout, "FAIL shift-traffic#1 ")
		assert.Contains(t, out.stdout, "Cloudflare token active — the token is expired")
		assert.Contains(t, out.stdout, "fix: roll the API token")
		assert.Contains(t, out.stdout, "ok   restore-case-data#")
		assert.NotContains(t, out.stdout, "FAIL restore-case-data#", "the rest passes")
		assert.NotContains(t, out.stdout+out.stderr, testsuite.PlantedCFToken)
	})

	t.Run("a permission the worker was not granted is named by the pre-check", func(t *testing.T) {
		cs, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		// What lifeboat rbac granted in Velero's namespace, taken away.
		require.NoError(t, cs.RbacV1().RoleBindings("velero").Delete(ctx, "lifeboat-worker", metav1.DeleteOptions{}))
		defer grantWorker(t, catalog, stack)
		out, code := cliCode(t, "precheck", "case-management-region-failover", "--mode", "failover", "--as", "alice")
		assert.Equal(t, 1, code, out.stdout+out.stderr)
		assert.Regexp(t, `FAIL restore-case-data#\d+ +may create restores\.velero\.io in velero`, out.stdout)
		assert.Contains(t, out.stdout, "ok   shift-traffic#", "what was granted still passes")
		assert.NotRegexp(t, `FAIL .* in case-management`, out.stdout)

		// And production's: the drill's ClusterRole is bound only in the
		// namespaces drills make, so nothing else grants the failover there.
		require.NoError(t, cs.RbacV1().RoleBindings("case-management").Delete(ctx, "lifeboat-worker", metav1.DeleteOptions{}))
		out, code = cliCode(t, "precheck", "case-management-region-failover", "--mode", "failover", "--as", "alice")
		assert.Equal(t, 1, code, out.stdout+out.stderr)
		assert.Regexp(t, `FAIL \S+#\d+ +may \S+ \S+ in case-management`, out.stdout)
		out, code = cliCode(t, "precheck", "case-management-region-failover", "--mode", "drill", "--as", "alice")
		assert.NotRegexp(t, `FAIL .* in restore-drill-case-management`, out.stdout, "the drill's own namespaces are granted through its role (exit %d)", code)
		assert.Regexp(t, `ok +\S+#\d+ +may \S+ \S+ in restore-drill-case-management`, out.stdout)
	})

	t.Run("reenact the drill from its recorded runbook text", func(t *testing.T) {
		require.GreaterOrEqual(t, len(ids), 2, "needs the drill above")
		// The first drill.
		failover := ids[0]
		// The catalog file changed since the drill: the re-enactment must
		// still run the text the drill ran.
		file := filepath.Join(catalog, "a.yaml")
		orig, err := os.ReadFile(file)
		require.NoError(t, err)
		edited := append(append([]byte(nil), orig...), []byte("# edited after the incident\n")...)
		require.NoError(t, os.WriteFile(file, edited, 0o644))
		t.Cleanup(func() { _ = os.WriteFile(file, orig, 0o644) })
		// The service got slower since: the Case API takes 3 s to answer
		// (an overloaded service), so the business journey is slower.
		// (Not the restore: its duration includes the wait for Velero's
		// once-a-minute sync, 0 to 60 s in either run.)
		stack.SlowCaseAPI(3 * time.Second)
		t.Cleanup(func() { stack.SlowCaseAPI(0) })
		then, err := st.Evidence(ctx, failover)
		require.NoError(t, err)

		out := cli(t, "reenact", failover, "--as", "dana", "--threshold", "1.5", "--min-delta", "1s")
		now := between(out.stderr, "as drill ", "\n")
		require.NotEmpty(t, now, out.stderr)
		ids = append(ids, now)
		ev, err := st.Evidence(ctx, now)
		require.NoError(t, err)
		assert.Equal(t, then.Runbook.Hash, ev.Runbook.Hash, "pinned by the recorded hash")
		assert.NotEqual(t, runbooks.HashOf(edited), ev.Runbook.Hash, "not today's file")
		assert.Equal(t, workflows.ModeDrill, ev.Mode)
		assert.Contains(t, ev.Reason, "re-enactment of "+failover)

		assert.Contains(t, out.stdout, "# Re-enactment of "+failover)
		assert.Contains(t, out.stdout, "the same runbook text ("+then.Runbook.Hash+")")
		assert.Regexp(t, `\| workloads/business-journey \| \S+ \| \S+ \| [0-9.]+× \| \*\*slower\*\* \|`, out.stdout)
		assert.Contains(t, out.stdout, "| edge/shift-traffic |")
		// Other steps may be slower too (a restore that waited longer for
		// Velero's sync).
		assert.Regexp(t, `Slower than 1\.50× \(and by at least 1s\): (\S+, )*business-journey`, out.stdout)
		stored := storedEvidence(t, cfg.EvidenceDir, now)
		md, err := os.ReadFile(strings.TrimSuffix(stored, ".json") + ".reenactment.md")
		require.NoError(t, err, "the comparison is stored beside the evidence")
		assert.Contains(t, string(md), "**slower**")
	})

	t.Run("scheduled drill triggered from the CLI", func(t *testing.T) {
		const id = "lifeboat-drill-case-management-region-failover"
		out := cli(t, "drill", "schedule", "case-management-region-failover", "--cron", "0 3 1 * *", "--pause-on-failure", "--as", "sre-team").stdout
		assert.Contains(t, out, "schedule: "+id)
		assert.Contains(t, out, "next run: ")
		assert.Contains(t, cli(t, "drill", "trigger", id).stdout, "triggered")
		deadline := time.Now().Add(time.Minute)
		for scheduled == "" {
			for _, s := range schedules(t) {
				if s.ID == id && s.LastRun != nil {
					scheduled = s.LastRun.WorkflowID
				}
			}
			require.True(t, time.Now().Before(deadline), "the triggered drill never started")
			time.Sleep(200 * time.Millisecond)
		}
		ids = append(ids, scheduled)
		assert.True(t, strings.HasPrefix(scheduled, "lifeboat-case-management-region-failover-drill-scheduled-"), scheduled)
		ev := waitEvidence(t, st, scheduled)
		assert.Equal(t, "succeeded", ev.Outcome, "%+v", ev.FailedChecks)
		assert.Equal(t, "L4", ev.Level, ev.LevelReason)
		assert.Equal(t, "sre-team", ev.RequestedBy)
		assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "drop-drill-namespace").State)
		require.NotNil(t, ev.NextDrill)
		assert.Equal(t, ev.DeclaredAt.Add(30*24*time.Hour), *ev.NextDrill)
		kc, err := kubernetes.NewForConfig(stack.DR.Kube.RESTConfig())
		require.NoError(t, err)
		_, err = kc.CoreV1().Namespaces().Get(ctx, "restore-drill-case-management", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the drill namespace must be torn down, got %v", err)
		stored := storedEvidence(t, cfg.EvidenceDir, scheduled)
		_, err = os.Stat(stored)
		assert.NoError(t, err, "the scheduled run stored its own evidence")

		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			list := schedules(t)
			require.Len(t, list, 1)
			if list[0].LastRun.Result == "succeeded" {
				assert.Equal(t, "case-management-region-failover", list[0].Runbook)
				assert.True(t, list[0].PauseOnFailure)
				assert.False(t, list[0].Paused)
				break
			}
			require.True(t, time.Now().Before(deadline), "last result never became succeeded: %+v", list[0].LastRun)
		}
		cli(t, "drill", "pause", id, "--note", "change freeze")
		table := cli(t, "drill", "schedules").stdout
		assert.Contains(t, table, "paused (change freeze)")
		assert.Contains(t, table, "succeeded "+scheduled)
		cli(t, "drill", "unpause", id)
		assert.False(t, schedules(t)[0].Paused)
		cli(t, "drill", "delete", id)
		for deadline := time.Now().Add(30 * time.Second); len(schedules(t)) > 0; time.Sleep(200 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "the deleted schedule is still listed")
		}
	})

	t.Run("readiness and the recovery invariant", func(t *testing.T) {
		out := cli(t, "readiness").stdout
		t.Logf("lifeboat readiness:\n%s", out)
		assert.Contains(t, out, "case-management-region-failover — critical (RTO 1h)")
		assert.Regexp(t, `3/3  Last drill +drill lifeboat-case-management-region-failover-drill-\S+ succeeded today at level L4 \(every 30d\)`, out)
		assert.Contains(t, out, "3/3  DNS/edge failover  failover tested: traffic moved in failover "+ids[1])
		assert.Regexp(t, `3/3  Backup age vs RPO +latest backup production-critical-hourly-\d+ of production-critical-hourly is \S+ old \(RPO 15m\), and restores of it are tested`, out)
		assert.Contains(t, out, "never-drilled — critical (RTO 30m)")
		assert.Contains(t, out, "CRITICAL SYSTEMS BELOW 2")
		assert.Contains(t, out, "never-drilled: Last drill 0/3 — never drilled: lifeboat drill never-drilled")
		assert.NotContains(t, out, "case-management-region-failover: ", "example (a) has no row below 2")

		var systems []map[string]any
		require.NoError(t, json.Unmarshal([]byte(cli(t, "readiness", "--json").stdout), &systems))
		require.Len(t, systems, 2)

		sentence := cli(t, "invariant", "case-management-region-failover").stdout
		assert.Regexp(t, `^Given a total loss of the region \(region-failure\), we can restore .* to RPO <= 15m within RTO <= 1h using runbook case-management-region-failover v3, validated by drill DR-\S+ on \d{4}-\d\d-\d\d\.`, sentence)
		missing, code := cliCode(t, "invariant", "never-drilled")
		assert.Equal(t, 1, code)
		assert.Contains(t, missing.stdout, "The recovery invariant of never-drilled is not established")
		assert.Contains(t, missing.stdout, "no drill of never-drilled has run: start one with `lifeboat drill never-drilled`")
	})

	t.Run("no planted secret appears in any history, log or evidence", func(t *testing.T) {
		var haystacks []string
		for _, id := range ids {
			h, err := st.HistoryJSON(ctx, id)
			require.NoError(t, err)
			haystacks = append(haystacks, string(h))
		}
		files := evidenceFiles(t, cfg.EvidenceDir)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			haystacks = append(haystacks, string(b))
		}
		haystacks = append(haystacks, logs.String())
		require.Contains(t, strings.Join(haystacks, "\n"), "case-api-db", "the haystack holds the run (sanity)")
		require.Contains(t, strings.Join(haystacks, "\n"), "case-db-replica", "the database steps are in it")
		for _, secret := range []string{testsuite.PlantedDBPassword, testsuite.PlantedRestoredPass, testsuite.PlantedCFToken, testsuite.PlantedPGPassword} {
			for i, h := range haystacks {
				assert.NotContains(t, h, secret, "haystack %d", i)
			}
		}
	})

	t.Run("evidence survives the loss of its sink", func(t *testing.T) {
		firstDrillRPO := runbooks.Duration(stack.DeclaredAt.Sub(stack.Backups[len(stack.Backups)-1].Started))
		evidenceSurvivesItsSink(t, cli, st, cfg.EvidenceDir, ids, firstDrillRPO)
	})
}

// evidenceSurvivesItsSink reads each run's evidence from the sink, deletes the
// sink, and rebuilds the same JSON from the server's history and from an
// exported history file; then lists the runs.
func evidenceSurvivesItsSink(t *testing.T, cli func(*testing.T, ...string) cliOutput, st *starter.Starter, evidenceDir string, ids []string, firstDrillRPO runbooks.Duration) {
	ctx := context.Background()
	sink := map[string]string{}
	for _, id := range ids {
		out := cli(t, "evidence", id, "-o", "json", "--from", "sink")
		require.Contains(t, out.stderr, "evidence of "+id+" from the evidence sink")
		sink[id] = out.stdout
	}
	require.NoError(t, os.RemoveAll(evidenceDir))
	for _, id := range ids {
		out := cli(t, "evidence", id, "-o", "json")
		assert.Contains(t, out.stderr, "from the workflow history on the server")
		assert.Equal(t, sink[id], out.stdout, "%s: the evidence rebuilt from history must be identical to the stored one", id)

		h, err := st.HistoryJSON(ctx, id)
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "history.json")
		require.NoError(t, os.WriteFile(file, h, 0o644))
		out = cli(t, "evidence", file, "-o", "json")
		assert.Contains(t, out.stderr, "from the history file")
		assert.Equal(t, sink[id], out.stdout)
	}
	list := cli(t, "evidence", "list", "--runbook", "case-management-region-failover").stdout
	t.Logf("lifeboat evidence list:\n%s", list)
	for _, id := range ids {
		assert.Contains(t, list, id)
	}
	assert.Regexp(t, `drill\s+\S+ \S+\s+succeeded\s+L4\s+\S+ / \S+\s+`+regexp.QuoteMeta(firstDrillRPO.String())+` / 15m\s+no`, list)
	assert.Regexp(t, `failover\s+\S+ \S+\s+succeeded\s+L5`, list)
}

// neverDrilled is a critical runbook nobody has drilled: readiness calls it out.
const neverDrilled = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: never-drilled, version: 1, owner: payments-team}
spec:
  scope: application
  objectives: {rto: 30m, rpo: 5m}
  layers:
    workloads:
      - id: health
        action: http.check
        with: {url: "http://127.0.0.1:1/health"}
`

// cliOutput is what the lifeboat binary printed.
type cliOutput struct{ stdout, stderr string }

func waitEvidence(t *testing.T, st *starter.Starter, id string) record.Evidence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ev, err := st.Wait(ctx, id)
	require.NoError(t, err)
	t.Logf("%s", ev.Markdown())
	return ev
}

// pgRole is a rig database server's role: primary, standby, or down.
func pgRole(t *testing.T, s *testsuite.PGServer) string {
	t.Helper()
	ctx := context.Background()
	c, err := s.Connect(ctx)
	if err != nil {
		return "down"
	}
	defer c.Close(ctx)
	var standby bool
	require.NoError(t, c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby))
	return map[bool]string{true: "standby", false: "primary"}[standby]
}

// grantWorker applies `lifeboat rbac CATALOG`'s objects for the rig's
// least-privileged user to each cluster.
func grantWorker(t *testing.T, catalog string, stack *testsuite.Stack) {
	ctx := context.Background()
	for _, k := range []*testsuite.Kube{stack.Primary.Kube, stack.DR.Kube} {
		cmd := exec.Command(buildLifeboat(t), "rbac", catalog, "--subject", "user:"+testsuite.WorkerUser, "--context", k.Context)
		cmd.Env = append(os.Environ(), "LIFEBOAT_BASE_DIR="+stack.BaseDir)
		out, err := cmd.Output()
		require.NoError(t, err, "lifeboat rbac: %s", out)
		applyYAML(t, ctx, k, string(out))
	}
}

// applyYAML creates every object of a multi-document YAML in the cluster.
func applyYAML(t *testing.T, ctx context.Context, k *testsuite.Kube, docs string) {
	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(k.RESTConfig())
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	applied := 0
	for _, doc := range strings.Split(docs, "\n---\n") {
		obj := &unstructured.Unstructured{}
		if err := sigsyaml.Unmarshal([]byte(doc), &obj.Object); err != nil || obj.GetKind() == "" {
			continue // the header's comments
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err)
		ri := dynamic.ResourceInterface(dyn.Resource(m.Resource))
		if ns := obj.GetNamespace(); ns != "" {
			_, _ = dyn.Resource(corev1.SchemeGroupVersion.WithResource("namespaces")).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}, metav1.CreateOptions{})
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "lifeboat-e2e", Force: true})
		require.NoError(t, err, "%s %s", obj.GetKind(), obj.GetName())
		applied++
	}
	require.NotZero(t, applied, "lifeboat rbac granted nothing in %s:\n%s", k.Context, docs)
}
