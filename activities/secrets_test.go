package activities_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

const (
	plantedHookToken = "planted-hook-token-77d1e0"
	plantedCFToken   = "planted-cf-token-a1b2c3d4"
	plantedAuth      = "planted-bearer-5e6f7a8b"
)

// secretWorld is a worker environment holding planted secrets, and the
// registry built on it.
func secretWorld(t *testing.T) (*activities.Registry, *secrets.Store, string) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "case-api-token"), []byte(plantedAuth+"\n"), 0o600))
	env := map[string]string{
		// An unreachable webhook (the region is down): its token is its path.
		"DR_WEBHOOK":           "http://127.0.0.1:1/services/T000/B000/" + plantedHookToken + "?token=" + plantedHookToken,
		"CLOUDFLARE_API_TOKEN": plantedCFToken,
		"CASE_API_TOKEN":       "Bearer " + plantedAuth,
	}
	store := &secrets.Store{Getenv: func(k string) string { return env[k] }, Env: []string{"DR_WEBHOOK", "CASE_API_TOKEN"}, Dirs: []string{dir},
		Extra: func() []string { return []string{env["CLOUDFLARE_API_TOKEN"]} }}
	return activities.New(activities.Deps{Secrets: store}), store, dir
}

func call(t *testing.T, reg *activities.Registry, action string, args map[string]any) error {
	t.Helper()
	fn := reg.Activities()[action]
	require.NotNil(t, fn, action)
	var err error
	require.NotPanics(t, func() { _, err = runActivity(t, fn, args) })
	return err
}

func TestAnUnreachableWebhookDoesNotLeakItsToken(t *testing.T) {
	reg, _, _ := secretWorld(t)
	err := call(t, reg, activities.NotifyWebhook, map[string]any{"urlEnv": "DR_WEBHOOK", "text": "x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), plantedHookToken)
	assert.NotContains(t, err.Error(), "/services/")
	assert.Contains(t, err.Error(), "$DR_WEBHOOK", "the error still says which webhook")
}

func TestARunbookCannotReadAnyWorkerVariable(t *testing.T) {
	reg, store, _ := secretWorld(t)
	err := call(t, reg, activities.NotifyWebhook, map[string]any{"urlEnv": "CLOUDFLARE_API_TOKEN", "text": "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "environment variable CLOUDFLARE_API_TOKEN, which the worker does not let runbooks read: add it to secrets.env")
	assert.NotContains(t, err.Error(), plantedCFToken)

	// Refused before anything runs, too.
	res := &activities.Resolver{Registry: activities.Catalogue(), Secrets: store}
	_, err = res.Resolve(context.Background(), runbooks.ResolveInput{Mode: "tabletop", Inline: `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: leak, version: 1}
spec:
  scope: application
  objectives: {rto: 10m}
  layers:
    edge:
      - {id: tell, action: notify.webhook, with: {urlEnv: CLOUDFLARE_API_TOKEN, text: hi}}
`})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names environment variables the worker does not let runbooks read: CLOUDFLARE_API_TOKEN (step tell)")
}

func TestHTTPCheckHeadersComeFromTheEnvironmentOrAFileByReference(t *testing.T) {
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		// A careless service echoes the credentials it refuses.
		http.Error(w, "forbidden for "+r.Header.Get("Authorization"), http.StatusForbidden)
	}))
	defer srv.Close()
	reg, _, dir := secretWorld(t)
	err := call(t, reg, activities.HTTPCheck, map[string]any{"url": srv.URL + "/health", "headersEnv": map[string]any{"Authorization": "CASE_API_TOKEN"}})
	require.Error(t, err)
	assert.Equal(t, "Bearer "+plantedAuth, auth[0], "the header reached the service")
	assert.NotContains(t, err.Error(), plantedAuth, "the echoed credential is scrubbed")

	err = call(t, reg, activities.HTTPCheck, map[string]any{"url": srv.URL, "headersFile": map[string]any{"X-Token": filepath.Join(dir, "case-api-token")}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), plantedAuth)

	outside := filepath.Join(t.TempDir(), "elsewhere")
	require.NoError(t, os.WriteFile(outside, []byte("x"), 0o600))
	err = call(t, reg, activities.HTTPCheck, map[string]any{"url": srv.URL, "headersFile": map[string]any{"X-Token": outside}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside the directories the worker lets runbooks read")
}

func TestRedactURLsKeepsOnlySchemeAndHost(t *testing.T) {
	got := secrets.RedactURLs(`Post "https://user:pw@hooks.slack.com/services/T/B/XYZ?x=1": dial tcp: refused; see https://status.example.com.`)
	assert.Equal(t, `Post "https://hooks.slack.com/…": dial tcp: refused; see https://status.example.com.`, got)
}

// runActivity runs fn as the named activity in the SDK's test environment,
// as the worker would (the registry's wrapper reads the activity info).
func runActivity(t *testing.T, fn activities.StepFunc, args map[string]any) (runbooks.StepResult, error) {
	env := (&sdktest.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: "action"})
	v, err := env.ExecuteActivity("action", in(args))
	var res runbooks.StepResult
	if err == nil {
		err = v.Get(&res)
	}
	return res, err
}
