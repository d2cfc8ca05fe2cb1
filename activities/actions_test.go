package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/activities/httpcheck"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/notify"
	"github.com/lifeboat-dr/lifeboat/activities/postgres"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

func in(args map[string]any) runbooks.StepInput {
	return runbooks.StepInput{WorkflowID: "lifeboat-book-drill-abc123", Runbook: "book", Mode: "drill", StepID: "s", Args: args}
}

func nonRetryable(t *testing.T, err error) bool {
	t.Helper()
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable()
}

func TestHTTPCheck(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "status: healthy")
	}))
	defer srv.Close()
	c := httpcheck.New(srv.Client(), nil)
	ctx := context.Background()

	_, err := c.Check(ctx, in(map[string]any{"url": srv.URL + "/health"}))
	require.Error(t, err, "503 must fail")
	assert.False(t, nonRetryable(t, err), "a 503 is retryable: the service may be starting")
	assert.Contains(t, err.Error(), "answered 503, expected 200")

	res, err := c.Check(ctx, in(map[string]any{"url": srv.URL + "/health", "expectBody": "healthy"}))
	require.NoError(t, err)
	assert.Contains(t, res.Summary, "→ 200")
	assert.Equal(t, 200, res.Outputs["status"])

	_, err = c.Check(ctx, in(map[string]any{"url": srv.URL, "expectBody": "ready"}))
	assert.ErrorContains(t, err, `body does not contain "ready"`)

	_, err = c.Check(ctx, in(map[string]any{"url": "case-api/health"}))
	require.Error(t, err)
	assert.True(t, nonRetryable(t, err), "a malformed URL cannot be fixed by retrying")
	assert.Contains(t, err.Error(), "fix with.url in step s")
}

func TestNotifyWebhook(t *testing.T) {
	var got []notify.Message
	status := atomic.Int32{}
	status.Store(500)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		_ = json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	env := map[string]string{"HOOK": srv.URL}
	n := notify.New(srv.Client(), &secrets.Store{Getenv: func(k string) string { return env[k] }, Env: []string{"HOOK", "MISSING"}})
	ctx := context.Background()
	args := map[string]any{"urlEnv": "HOOK", "text": "{runbook} {mode} {workflowId}"}

	_, err := n.Send(ctx, in(args))
	require.Error(t, err)
	assert.False(t, nonRetryable(t, err), "a 500 is retryable")
	assert.NotContains(t, err.Error(), srv.URL, "the secret URL must not appear in errors")

	status.Store(400)
	_, err = n.Send(ctx, in(args))
	assert.True(t, nonRetryable(t, err), "a 400 is not retryable")

	status.Store(200)
	res, err := n.Send(ctx, in(args))
	require.NoError(t, err)
	assert.Equal(t, "posted to $HOOK (200)", res.Summary)
	assert.Equal(t, "book drill lifeboat-book-drill-abc123", got[len(got)-1].Text)

	_, err = n.Send(ctx, in(map[string]any{"urlEnv": "MISSING", "text": "x"}))
	require.Error(t, err)
	assert.True(t, nonRetryable(t, err))
	assert.Contains(t, err.Error(), "environment variable MISSING is empty on the worker")
}

func TestEvidenceStoreWritesJSONAndMarkdown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "evidence")
	sink := evidence.NewDirSink(dir)
	rpo := runbooks.Duration(8 * time.Minute)
	ended := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	ev := record.Evidence{ID: "DR-1", WorkflowID: "lifeboat-book-drill-abc123", RunID: "run-1", Outcome: "succeeded", RPOActual: &rpo, EndedAt: ended,
		Steps: []record.StepRecord{{ID: "restore", Layer: "storage", Action: "velero.restore", State: "succeeded"}}}
	res, err := sink.Store(context.Background(), in(map[string]any{"evidence": ev}))
	require.NoError(t, err)
	assert.Contains(t, res.Summary, "lifeboat-book-drill-abc123.run-1.json")

	// A second run under the same (reused) workflow id overwrites nothing.
	second := ev
	second.ID, second.RunID, second.Outcome, second.EndedAt = "DR-2", "run-2", "failed", ended.Add(time.Hour)
	_, err = sink.Store(context.Background(), in(map[string]any{"evidence": second}))
	require.NoError(t, err)
	back, path, runs, err := sink.Load(ev.WorkflowID)
	require.NoError(t, err)
	assert.Equal(t, 2, runs)
	assert.Equal(t, "DR-2", back.ID, "the latest run of the id")
	assert.Equal(t, filepath.Join(dir, "lifeboat-book-drill-abc123.run-2.json"), path)
	first, err := os.ReadFile(filepath.Join(dir, "lifeboat-book-drill-abc123.run-1.json"))
	require.NoError(t, err)
	assert.Contains(t, string(first), `"id": "DR-1"`)
	assert.Equal(t, rpo, *back.RPOActual)
	md, err := os.ReadFile(filepath.Join(dir, ev.WorkflowID+".run-1.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "storage/restore")
	left, _ := filepath.Glob(filepath.Join(dir, ".evidence-*"))
	assert.Empty(t, left, "no temporary files left behind")

	_, err = evidence.NewDirSink("").Store(context.Background(), in(map[string]any{"evidence": ev}))
	assert.True(t, nonRetryable(t, err))
}

func TestRegistryDeclaresTheWholeCatalogue(t *testing.T) {
	design := []string{"terraform.apply", "terraform.output", "kube.apply", "kube.canI", "kube.secretsPresent", "kube.pvcBound",
		"kube.crdsEstablished", "kube.scale", "kube.waitReady", "kube.deleteNamespace", "velero.restore", "velero.latestBackup", "velero.backup",
		"argocd.sync", "cloudflare.dnsSwitch", "cloudflare.lbFailover", "cloudflare.lbRestore", "http.check", "notify.webhook", "manual.task", "evidence.store",
		"postgres.replicationLag", "postgres.promote", "postgres.verify", "postgres.rewind", "postgres.removeClone"}
	reg := activities.New(activities.Deps{})
	assert.ElementsMatch(t, design, reg.ActionNames())
	var implemented []string
	for _, n := range reg.ActionNames() {
		spec, _ := reg.Action(n)
		assert.NotEmpty(t, spec.Doc, n)
		if reg.Implemented(n) {
			implemented = append(implemented, n)
		}
	}
	// the SQL-only postgres.* actions need nothing but a connection string
	assert.ElementsMatch(t, []string{"http.check", "notify.webhook", "manual.task", "evidence.store",
		"postgres.replicationLag", "postgres.promote", "postgres.verify"}, implemented)

	full := activities.New(activities.Deps{Kube: &kube.KubeconfigSource{}, Terraform: "terraform",
		CloudflareToken: func() (string, error) { return "t", nil }, Postgres: postgres.Local{Bin: "/usr/lib/postgresql/15/bin"}})
	for _, n := range design {
		assert.True(t, full.Implemented(n), "%s has no implementation", n)
	}
}

func TestResolverRefusesUnimplementedActionsExceptInTabletop(t *testing.T) {
	dir := t.TempDir()
	doc := `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: needs-velero, version: 1}
spec:
  scope: namespace
  objectives: {rto: 30m}
  targets: {dr: {kubeContext: dr}}
  layers:
    storage:
      - {id: restore, action: velero.restore, with: {target: dr, backup: b1}}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(doc), 0o644))
	res := &activities.Resolver{Dirs: []string{dir}, Registry: activities.New(activities.Deps{})}
	_, err := res.Resolve(context.Background(), runbooks.ResolveInput{Runbook: "needs-velero", Mode: "failover"})
	require.Error(t, err)
	assert.True(t, nonRetryable(t, err))
	assert.Contains(t, err.Error(), "velero.restore (spec.layers.storage[0], step restore)")

	// As a drill it is refused first for what it could touch: a restore of
	// a namespace no mapping sends to the drill.
	_, err = res.Resolve(context.Background(), runbooks.ResolveInput{Runbook: "needs-velero", Mode: "drill"})
	require.Error(t, err)
	assert.True(t, nonRetryable(t, err))
	assert.Contains(t, err.Error(), "cannot run as a drill")
	assert.Contains(t, err.Error(), "spec.layers.storage[0].with.namespaces: name the namespaces to restore")

	got, err := res.Resolve(context.Background(), runbooks.ResolveInput{Runbook: "needs-velero", Mode: "tabletop"})
	require.NoError(t, err)
	assert.Equal(t, runbooks.HashOf([]byte(doc)), got.Hash)
	assert.Equal(t, doc, got.Source)

	_, err = res.Resolve(context.Background(), runbooks.ResolveInput{Runbook: "needs-velro", Mode: "tabletop"})
	assert.ErrorContains(t, err, `did you mean "needs-velero"`)
	assert.True(t, strings.Contains(err.Error(), "no runbook named"))
}

// TestBadArgumentsAreNotRetryable: arguments that do not fit an action fail
// once, as a non-retryable InvalidArgument error, whatever the action.
func TestBadArgumentsAreNotRetryable(t *testing.T) {
	reg := activities.New(activities.Deps{Kube: &kube.KubeconfigSource{}, Terraform: "terraform",
		CloudflareToken: func() (string, error) { return "t", nil }})
	for _, name := range []string{activities.HTTPCheck, activities.KubeScale, activities.VeleroRestore, activities.TerraformApply, activities.CloudflareDNSSwitch, activities.ArgoCDSync} {
		env := (&sdktest.WorkflowTestSuite{}).NewTestActivityEnvironment()
		env.RegisterActivityWithOptions(reg.Activities()[name], activity.RegisterOptions{Name: name})
		failover := in(map[string]any{"no-such-argument": 1})
		failover.Mode = "failover"
		_, err := env.ExecuteActivity(name, failover)
		require.Error(t, err, name)
		ae := appErrOf(t, err)
		assert.True(t, ae.NonRetryable(), name)
		assert.Equal(t, "InvalidArgument", ae.Type(), name)
		assert.Contains(t, err.Error(), "step s: arguments:", name)
	}
}

// The runtime half of the drill guard: in a drill or a teardown, an action
// whose drill safety is an override runs only when spec.drill.with replaced
// one of its declared arguments, and is refused before its implementation
// is called otherwise, whoever built the step's input.
func TestAnOverrideOrSkipActionRefusesAProductionStepInADrill(t *testing.T) {
	for _, name := range []string{activities.TerraformApply, activities.ArgoCDSync, activities.CloudflareDNSSwitch, activities.CloudflareLBFailover, activities.CloudflareLBRestore} {
		called := 0
		reg := activities.NewWithFuncs(map[string]activities.StepFunc{name: func(context.Context, runbooks.StepInput) (runbooks.StepResult, error) {
			called++
			return runbooks.StepResult{Summary: "changed"}, nil
		}})
		spec, _ := reg.Action(name)
		for _, mode := range []string{"drill", "teardown"} {
			env := (&sdktest.WorkflowTestSuite{}).NewTestActivityEnvironment()
			env.RegisterActivityWithOptions(reg.Activities()[name], activity.RegisterOptions{Name: name})
			step := in(nil)
			step.Mode = mode
			_, err := env.ExecuteActivity(name, step)
			require.Error(t, err, name)
			assert.Equal(t, "DrillScope", appErrOf(t, err).Type(), name)
			assert.Contains(t, err.Error(), "not pointed away from production (spec.drill.with.s."+spec.DrillOverrides[0], name)
			assert.Zero(t, called, "%s: nothing called in a %s", name, mode)

			step.DrillOverridden = []string{spec.DrillOverrides[len(spec.DrillOverrides)-1]}
			_, err = env.ExecuteActivity(name, step)
			require.NoError(t, err, name)
			assert.Equal(t, 1, called, "%s: pointed away, it runs", name)
			called = 0
		}
		step := in(nil)
		step.Mode = "failover"
		env := (&sdktest.WorkflowTestSuite{}).NewTestActivityEnvironment()
		env.RegisterActivityWithOptions(reg.Activities()[name], activity.RegisterOptions{Name: name})
		_, err := env.ExecuteActivity(name, step)
		require.NoError(t, err, "%s in a failover", name)
	}
}

func appErrOf(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want an application error, got %v", err)
	return ae
}

// TestAMaximalRunbookResolvesUnderThePayloadLimit: a 1 MiB runbook at the
// step limit resolves to one copy of its text (the parsed runbook and its
// source were 2.07 MB, over Temporal's 2 MB blob limit).
func TestAMaximalRunbookResolvesUnderThePayloadLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: lifeboat/v1\nkind: Runbook\nmetadata: {name: huge, version: 1}\nspec:\n  scope: region\n  objectives: {rto: 60m}\n  layers:\n    workloads:\n")
	for i := 0; i < runbooks.MaxSteps; i++ {
		fmt.Fprintf(&b, "      - {id: check-%04d, action: http.check, with: {url: \"http://svc-%04d.dr.example.internal/health\", expectBody: healthy}}\n", i, i)
	}
	b.WriteString("# " + strings.Repeat("padding ", (runbooks.MaxFileSize-b.Len()-16)/8) + "\n")
	require.LessOrEqual(t, b.Len(), runbooks.MaxFileSize)
	require.Greater(t, b.Len(), runbooks.MaxFileSize-64)
	res := &activities.Resolver{Registry: activities.New(activities.Deps{})}
	got, err := res.Resolve(context.Background(), runbooks.ResolveInput{Inline: b.String(), Mode: "tabletop"})
	require.NoError(t, err)
	payload, err := json.Marshal(got)
	require.NoError(t, err)
	t.Logf("a %d-byte runbook resolves to a %d-byte payload", b.Len(), len(payload))
	assert.Less(t, len(payload), runbooks.MaxFileSize+64<<10, "the text once, not the text and its parse")
	require.NoError(t, got.Parse())
	assert.Len(t, got.Runbook.AllSteps(), runbooks.MaxSteps)
}

// Issue 24 (8): http.check counted as read-only whatever its method, so a
// drill POSTed to production. In a drill a changing method is sent only to
// an overridden (drill) URL; a GET is sent as before.
func TestHTTPCheckInADrillSendsNoChangingMethodToProduction(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
	}))
	defer srv.Close()
	c := httpcheck.New(srv.Client(), nil)
	drill := func(args map[string]any, overridden ...string) runbooks.StepInput {
		i := in(args)
		i.Mode, i.DrillRun, i.DrillOverridden = "drill", "drill-1", overridden
		return i
	}
	_, err := c.Check(context.Background(), drill(map[string]any{"url": srv.URL, "method": "post"}))
	require.Error(t, err)
	assert.True(t, nonRetryable(t, err))
	assert.Contains(t, err.Error(), "http.check in a drill refused, nothing sent: it sends POST")
	assert.Equal(t, int32(0), posts.Load())
	_, err = c.Check(context.Background(), drill(map[string]any{"url": srv.URL, "method": "POST"}, "url"))
	require.NoError(t, err, "pointed at a drill URL (spec.drill.with.STEP.url)")
	_, err = c.Check(context.Background(), drill(map[string]any{"url": srv.URL}))
	require.NoError(t, err, "a GET reads")
	assert.Equal(t, int32(1), posts.Load())
}
