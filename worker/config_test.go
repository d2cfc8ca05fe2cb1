package worker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/worker"
)

func TestConfigFileThenEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lifeboat.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`temporal:
  address: temporal.example.internal:7233
  namespace: dr
  taskQueue: dr-queue
catalog: [`+dir+`]
evidenceDir: `+filepath.Join(dir, "ev")+`
`), 0o644))
	env := map[string]string{"LIFEBOAT_NAMESPACE": "dr-prod", "LIFEBOAT_API_KEY": "k"}
	cfg, err := worker.Load(p, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "temporal.example.internal:7233", cfg.Temporal.Address)
	assert.Equal(t, "dr-prod", cfg.Temporal.Namespace, "the environment overrides the file")
	require.NoError(t, cfg.CheckWorker())
	opts, err := cfg.ClientOptions()
	require.NoError(t, err)
	assert.NotNil(t, opts.ConnectionOptions.TLS, "an API key implies TLS")
	assert.NotNil(t, opts.Credentials)
}

func TestConfigErrorsNameTheFieldAndTheFix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("temporal: {adress: x}\n"), 0o644))
	_, err := worker.Load(p, func(string) string { return "" })
	assert.ErrorContains(t, err, "field adress not found")

	cfg := worker.Defaults()
	cfg.Temporal.TLS.Cert = "/nonexistent/cert.pem"
	cfg.Catalog = []string{"/nonexistent/catalog"}
	err = cfg.CheckWorker()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cert and key go together")
	assert.Contains(t, err.Error(), "temporal.tls.cert")
	assert.Contains(t, err.Error(), "catalog directory /nonexistent/catalog does not exist")
}

// The production example requires signatures, signs evidence and lists
// the secrets runbooks may read; it parses with no unknown field.
func TestTheProductionExampleRequiresSignatures(t *testing.T) {
	cfg, err := worker.Load("../deploy/lifeboat.production.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Signatures.Required || cfg.Signatures.AllowedSigners == "" || cfg.Signatures.WorkerKey == "" {
		t.Fatalf("the production example must require signatures and sign evidence: %+v", cfg.Signatures)
	}
	if len(cfg.Secrets.Env) == 0 || !cfg.Codec.Enabled() {
		t.Fatalf("the production example lists its secrets and encrypts payloads: %+v %+v", cfg.Secrets, cfg.Codec)
	}
}

// Evidence in S3 must say how long records stay locked, and a bad URL or
// lock mode is named with the fix; a reachable-less endpoint is named too.
func TestEvidenceInS3IsConfiguredOrRefusedWithTheFix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s3.yaml")
	require.NoError(t, os.WriteFile(p, []byte("evidence: {url: s3://dr-evidence/lifeboat, endpoint: http://127.0.0.1:1}\n"), 0o644))
	cfg, err := worker.Load(p, func(string) string { return "" })
	require.NoError(t, err)
	_, err = cfg.EvidenceStore()
	assert.ErrorContains(t, err, "evidence.retentionDays: say how long each record stays locked in s3://dr-evidence/lifeboat")
	assert.ErrorContains(t, cfg.CheckWorker(), "evidence.retentionDays")

	cfg.Evidence.RetentionDays = 2555
	st, err := cfg.EvidenceStore()
	require.NoError(t, err)
	assert.Equal(t, "s3://dr-evidence/lifeboat/X.json", st.Location("X.json"))
	assert.ErrorContains(t, cfg.CheckWorker(), "evidence bucket dr-evidence", "nothing answers on the endpoint")

	cfg.Evidence.LockMode = "forever"
	_, err = cfg.EvidenceStore()
	assert.ErrorContains(t, err, `evidence lock mode "forever": use COMPLIANCE or GOVERNANCE`)
	cfg.Evidence.LockMode, cfg.Evidence.URL = "", "https://dr-evidence"
	_, err = cfg.EvidenceStore()
	assert.ErrorContains(t, err, "use s3://BUCKET/PREFIX")
}
