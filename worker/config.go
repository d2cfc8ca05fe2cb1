// Package worker runs lifeboat's Temporal worker: a client built from a
// config file plus environment, RestoreWorkflow and the action registry.
package worker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/postgres"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// DefaultTaskQueue is the task queue lifeboat uses unless configured otherwise.
const DefaultTaskQueue = "lifeboat"

// Config is the worker's (and the CLI's) configuration. It is read from a
// YAML file, then LIFEBOAT_* environment variables override it:
//
//	LIFEBOAT_ADDRESS  LIFEBOAT_NAMESPACE  LIFEBOAT_TASK_QUEUE  LIFEBOAT_API_KEY
//	LIFEBOAT_TLS_CERT LIFEBOAT_TLS_KEY    LIFEBOAT_TLS_CA      LIFEBOAT_TLS_SERVER_NAME
//	LIFEBOAT_CATALOG (dirs separated by ':')  LIFEBOAT_EVIDENCE_DIR  LIFEBOAT_EVIDENCE_URL  LIFEBOAT_BASE_DIR
//	LIFEBOAT_KUBECONFIG (default kubeconfig for runbook targets)  LIFEBOAT_TERRAFORM (terraform binary)
//	LIFEBOAT_CLOUDFLARE_TOKEN_ENV / _TOKEN_FILE (where the API token is)  LIFEBOAT_CLOUDFLARE_URL
//	LIFEBOAT_NOTIFY_WEBHOOK (the webhook runs notify)  LIFEBOAT_UI_URL (links in notifications)
//	LIFEBOAT_METRICS_ADDR (host:port serving Prometheus /metrics)
//	LIFEBOAT_CODEC_KEY_FILE / LIFEBOAT_CODEC_KEY_ENV (payload encryption keys, see CodecConfig)
type Config struct {
	Temporal TemporalConfig `yaml:"temporal"`
	// Catalog lists the runbook directories the worker resolves names from.
	Catalog []string `yaml:"catalog"`
	// EvidenceDir is where evidence.store writes (keep it outside the cluster being restored).
	EvidenceDir string `yaml:"evidenceDir"`
	// Evidence keeps evidence in S3 with Object Lock instead (see
	// EvidenceConfig).
	Evidence EvidenceConfig `yaml:"evidence"`
	// BaseDir resolves relative paths runbooks name (manifests, terraform
	// directories); default: the worker's working directory.
	BaseDir string `yaml:"baseDir"`
	// Kube says where the kubeContexts that runbook targets name are found.
	Kube KubeConfig `yaml:"kube"`
	// Terraform is the terraform binary (default: terraform on the PATH).
	Terraform TerraformConfig `yaml:"terraform"`
	// Cloudflare says where the API token is.
	Cloudflare CloudflareConfig `yaml:"cloudflare"`
	// Notify configures the notifications runs send on their own.
	Notify NotifyConfig `yaml:"notify"`
	// MetricsListen is where the worker serves Prometheus metrics at
	// /metrics (host:port; empty: no metrics endpoint).
	MetricsListen string `yaml:"metricsListen"`
	// Codec encrypts payloads (see CodecConfig); off when no key is configured.
	Codec CodecConfig `yaml:"codec"`
	// Signatures: allowed signers, whether signatures are required, and the
	// CLI's signing key (see SignaturesConfig).
	Signatures SignaturesConfig `yaml:"signatures"`
	// Secrets says which secret references runbooks may make.
	Secrets SecretsConfig `yaml:"secrets"`
	// Postgres is this host's PostgreSQL tools (bin: the directory of
	// pg_ctl, pg_basebackup, pg_rewind; runAs: their OS user when the worker
	// runs as root) and the data directories postgres.rewind and a drill's
	// clone may work on (instances: NAME → {dataDir, port, drillClone}).
	// Connection strings are secrets: runbooks name them (dsnFile, dsnEnv).
	Postgres postgres.Local `yaml:"postgres"`
}

// SecretsConfig lists what runbooks may read by reference: environment
// variables (notify.webhook urlEnv, http.check headersEnv) and directories
// of secret files (http.check headersFile). Anything else is refused, so a
// runbook cannot read CLOUDFLARE_API_TOKEN into an error message. The
// notify webhook variable (notify.webhookEnv) is always allowed.
type SecretsConfig struct {
	Env  []string `yaml:"env"`  // LIFEBOAT_SECRET_ENV=NAME1,NAME2
	Dirs []string `yaml:"dirs"` // LIFEBOAT_SECRET_DIRS=dir1:dir2
}

// DefaultNotifyEnv is the environment variable holding the webhook URL runs
// notify (approval needed, step paused, RTO 50 %/80 %/breached, run finished).
const DefaultNotifyEnv = "LIFEBOAT_NOTIFY_WEBHOOK"

// NotifyConfig configures run notifications. They are on when the
// environment variable WebhookEnv is set on the worker; the URL itself (a
// Slack webhook URL is a secret) never sits in the config file or history.
type NotifyConfig struct {
	// WebhookEnv names the variable holding the URL (default LIFEBOAT_NOTIFY_WEBHOOK).
	WebhookEnv string `yaml:"webhookEnv"`
	// UI is the Temporal UI's base URL for the link in each message
	// (LIFEBOAT_UI_URL; default http://localhost:8233).
	UI string `yaml:"ui"`
}

func (n NotifyConfig) webhookEnv() string {
	if n.WebhookEnv == "" {
		return DefaultNotifyEnv
	}
	return n.WebhookEnv
}

// Settings are what resolved runs record, or nil when notifications are off.
func (n NotifyConfig) Settings(getenv func(string) string) *runbooks.NotifySettings {
	env := n.webhookEnv()
	if getenv(env) == "" {
		return nil
	}
	ui := n.UI
	if ui == "" {
		ui = "http://localhost:8233"
	}
	return &runbooks.NotifySettings{URLEnv: env, UI: strings.TrimSuffix(ui, "/")}
}

// CloudflareConfig says where the Cloudflare API token is; the token itself
// never sits in the config file.
type CloudflareConfig struct {
	// TokenEnv names the environment variable holding the token.
	TokenEnv string `yaml:"tokenEnv"`
	// TokenFile is a file holding the token (e.g. a mounted secret).
	TokenFile string `yaml:"tokenFile"`
	// BaseURL overrides the API URL (https://api.cloudflare.com/client/v4).
	BaseURL string `yaml:"baseURL"`
}

// Token returns a function reading the token at run time, or nil when no
// token source is configured (cloudflare.* steps are then refused up front).
func (c CloudflareConfig) Token(getenv func(string) string) func() (string, error) {
	switch {
	case c.TokenFile != "":
		return func() (string, error) {
			b, err := os.ReadFile(c.TokenFile)
			if err != nil {
				return "", fmt.Errorf("reading the API token file %s: %w", c.TokenFile, err)
			}
			return strings.TrimSpace(string(b)), nil
		}
	case c.TokenEnv != "":
		return func() (string, error) {
			if t := getenv(c.TokenEnv); t != "" {
				return t, nil
			}
			return "", fmt.Errorf("environment variable %s (cloudflare.tokenEnv) is empty on the worker: set it to an API token", c.TokenEnv)
		}
	}
	return nil
}

// TerraformConfig locates terraform.
type TerraformConfig struct {
	// Binary is the terraform executable. When empty, terraform on the PATH is
	// used if there is one; without terraform, terraform.* steps are refused
	// before a run starts.
	Binary string `yaml:"binary"`
}

// Configured is true when the worker has a kubeconfig to reach clusters
// with: the config's file or per-context files, $KUBECONFIG, or
// ~/.kube/config.
func (k KubeConfig) Configured(getenv func(string) string) bool {
	if k.Kubeconfig != "" || len(k.Contexts) > 0 || k.InCluster != "" || getenv("KUBECONFIG") != "" {
		return true
	}
	_, err := os.Stat(kube.DefaultKubeconfig(getenv))
	return err == nil
}

// TerraformBinary is the terraform the worker will run, or "" if none.
func (c Config) TerraformBinary() string {
	if c.Terraform.Binary != "" {
		return c.Terraform.Binary
	}
	if p, err := exec.LookPath("terraform"); err == nil {
		return p
	}
	return ""
}

// KubeConfig maps runbook kubeContexts to kubeconfig files.
type KubeConfig struct {
	// Kubeconfig is the default file ($KUBECONFIG or ~/.kube/config when empty).
	Kubeconfig string `yaml:"kubeconfig"`
	// Contexts overrides the file (and the context name) per kubeContext.
	Contexts map[string]kube.ContextRef `yaml:"contexts"`
	// InCluster names the kubeContext that is the cluster the worker's pod
	// runs in: reached with the pod's ServiceAccount token, no kubeconfig.
	InCluster string `yaml:"inCluster"`
	// DrillRole is the ClusterRole a drill binds to the worker in each
	// namespace it makes (lifeboat rbac --name NAME prints it as
	// NAME-drill; default lifeboat-worker-drill). "" binds nothing: for a
	// worker that holds the drill's permissions cluster-wide.
	DrillRole string `yaml:"drillRole"`
}

// DefaultDrillRole is kube.drillRole's default: what `lifeboat rbac`
// names the drill's ClusterRole with its default --name.
const DefaultDrillRole = "lifeboat-worker-drill"

// TemporalConfig says how to reach Temporal.
type TemporalConfig struct {
	Address   string    `yaml:"address"`
	Namespace string    `yaml:"namespace"`
	TaskQueue string    `yaml:"taskQueue"`
	APIKey    string    `yaml:"apiKey"`
	TLS       TLSConfig `yaml:"tls"`
}

// TLSConfig holds TLS / mTLS files. Cert and Key together enable mTLS.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	CA         string `yaml:"ca"`
	ServerName string `yaml:"serverName"`
}

// Defaults returns the configuration of a local dev server.
func Defaults() Config {
	return Config{
		Temporal:    TemporalConfig{Address: "localhost:7233", Namespace: "default", TaskQueue: DefaultTaskQueue},
		Catalog:     []string{"runbooks/examples"},
		EvidenceDir: ".lifeboat/evidence",
		Kube:        KubeConfig{DrillRole: DefaultDrillRole},
	}
}

// Load reads path (if not empty) over the defaults, then applies the environment.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %v (see `lifeboat worker --help` for the fields)", path, err)
		}
	}
	env := func(name string, into *string) {
		if v := getenv(name); v != "" {
			*into = v
		}
	}
	env("LIFEBOAT_ADDRESS", &cfg.Temporal.Address)
	env("LIFEBOAT_NAMESPACE", &cfg.Temporal.Namespace)
	env("LIFEBOAT_TASK_QUEUE", &cfg.Temporal.TaskQueue)
	env("LIFEBOAT_API_KEY", &cfg.Temporal.APIKey)
	env("LIFEBOAT_TLS_CERT", &cfg.Temporal.TLS.Cert)
	env("LIFEBOAT_TLS_KEY", &cfg.Temporal.TLS.Key)
	env("LIFEBOAT_TLS_CA", &cfg.Temporal.TLS.CA)
	env("LIFEBOAT_TLS_SERVER_NAME", &cfg.Temporal.TLS.ServerName)
	env("LIFEBOAT_EVIDENCE_DIR", &cfg.EvidenceDir)
	env("LIFEBOAT_EVIDENCE_URL", &cfg.Evidence.URL)
	env("LIFEBOAT_BASE_DIR", &cfg.BaseDir)
	env("LIFEBOAT_KUBECONFIG", &cfg.Kube.Kubeconfig)
	env("LIFEBOAT_TERRAFORM", &cfg.Terraform.Binary)
	env("LIFEBOAT_CLOUDFLARE_TOKEN_ENV", &cfg.Cloudflare.TokenEnv)
	env("LIFEBOAT_CLOUDFLARE_TOKEN_FILE", &cfg.Cloudflare.TokenFile)
	env("LIFEBOAT_CLOUDFLARE_URL", &cfg.Cloudflare.BaseURL)
	env("LIFEBOAT_UI_URL", &cfg.Notify.UI)
	env("LIFEBOAT_METRICS_ADDR", &cfg.MetricsListen)
	env("LIFEBOAT_CODEC_KEY_FILE", &cfg.Codec.KeyFile)
	env("LIFEBOAT_CODEC_KEY_ENV", &cfg.Codec.KeyEnv)
	env("LIFEBOAT_ALLOWED_SIGNERS", &cfg.Signatures.AllowedSigners)
	env("LIFEBOAT_SIGNING_KEY", &cfg.Signatures.KeyFile)
	env("LIFEBOAT_KEY_DIR", &cfg.Signatures.KeyDir)
	env("LIFEBOAT_WORKER_KEY", &cfg.Signatures.WorkerKey)
	if v := getenv("LIFEBOAT_SIGNATURES_REQUIRED"); v != "" {
		cfg.Signatures.Required = v == "true" || v == "1"
	}
	if v := getenv("LIFEBOAT_SECRET_ENV"); v != "" {
		cfg.Secrets.Env = strings.Split(v, ",")
	}
	if v := getenv("LIFEBOAT_SECRET_DIRS"); v != "" {
		cfg.Secrets.Dirs = filepath.SplitList(v)
	}
	if v := getenv("LIFEBOAT_CATALOG"); v != "" {
		cfg.Catalog = filepath.SplitList(v)
	}
	return cfg, nil
}

// CheckClient reports every problem with the client part of the config.
func (c Config) CheckClient() error {
	var errs []string
	t := c.Temporal
	if t.Address == "" {
		errs = append(errs, "temporal.address is empty: set it (host:port) or LIFEBOAT_ADDRESS")
	}
	if t.Namespace == "" {
		errs = append(errs, "temporal.namespace is empty: set it or LIFEBOAT_NAMESPACE")
	}
	if t.TaskQueue == "" {
		errs = append(errs, "temporal.taskQueue is empty: set it or LIFEBOAT_TASK_QUEUE")
	}
	if (t.TLS.Cert == "") != (t.TLS.Key == "") {
		errs = append(errs, "temporal.tls: cert and key go together for mTLS: set both or neither")
	}
	for name, f := range map[string]string{"cert": t.TLS.Cert, "key": t.TLS.Key, "ca": t.TLS.CA} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, fmt.Sprintf("temporal.tls.%s: %v", name, err))
			}
		}
	}
	if _, err := c.Codec.Codec(os.Getenv); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New("configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// CheckWorker reports every problem with the worker part of the config.
func (c Config) CheckWorker() error {
	var errs []string
	if err := c.CheckClient(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(c.Catalog) == 0 {
		errs = append(errs, "catalog is empty: list the runbook directories (or set LIFEBOAT_CATALOG)")
	}
	for _, d := range c.Catalog {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Sprintf("catalog directory %s does not exist", d))
		}
	}
	for name, ref := range c.Kube.Contexts {
		if ref.Kubeconfig != "" {
			if _, err := os.Stat(ref.Kubeconfig); err != nil {
				errs = append(errs, fmt.Sprintf("kube.contexts.%s.kubeconfig: %v", name, err))
			}
		}
	}
	if c.Terraform.Binary != "" {
		if _, err := exec.LookPath(c.Terraform.Binary); err != nil {
			errs = append(errs, fmt.Sprintf("terraform.binary %q: %v (install terraform 1.5.x or set LIFEBOAT_TERRAFORM)", c.Terraform.Binary, err))
		}
	}
	if tok := c.Cloudflare.Token(os.Getenv); tok != nil {
		if _, err := tok(); err != nil {
			errs = append(errs, "cloudflare: "+err.Error())
		}
	}
	if c.Kube.Kubeconfig != "" {
		if _, err := os.Stat(c.Kube.Kubeconfig); err != nil {
			errs = append(errs, fmt.Sprintf("kube.kubeconfig: %v", err))
		}
	}
	errs = append(errs, c.Signatures.check()...)
	if problem := c.checkEvidence(); problem != "" {
		errs = append(errs, problem)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ClientOptions builds the Temporal client options (TLS, mTLS, API key).
func (c Config) ClientOptions() (client.Options, error) {
	if err := c.CheckClient(); err != nil {
		return client.Options{}, err
	}
	t := c.Temporal
	dc, err := c.DataConverter()
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{HostPort: t.Address, Namespace: t.Namespace, Logger: stderrLogger(), DataConverter: dc}
	if c.Codec.Enabled() {
		// Failure messages and stack traces are encrypted too: without
		// this, Temporal keeps them in clear even with the codec on.
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter: dc, EncodeCommonAttributes: true})
	}
	if t.TLS.Enabled || t.TLS.Cert != "" || t.TLS.CA != "" || t.APIKey != "" {
		tc := &tls.Config{ServerName: t.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if t.TLS.Cert != "" {
			pair, err := tls.LoadX509KeyPair(t.TLS.Cert, t.TLS.Key)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls: loading client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		if t.TLS.CA != "" {
			pem, err := os.ReadFile(t.TLS.CA)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls.ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("temporal.tls.ca: %s holds no PEM certificate", t.TLS.CA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if t.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey)
	}
	return opts, nil
}

// stderrLogger logs the SDK's messages to stderr (never stdout, which carries
// command output) at LIFEBOAT_LOG_LEVEL (debug, info, warn (default), error).
func stderrLogger() sdklog.Logger {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv("LIFEBOAT_LOG_LEVEL")))
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// Dial connects to Temporal with the config; tweaks adjust the client
// options first (a metrics handler, a data converter).
func Dial(c Config, tweaks ...func(*client.Options)) (client.Client, error) {
	opts, err := c.ClientOptions()
	if err != nil {
		return nil, err
	}
	for _, t := range tweaks {
		t(&opts)
	}
	cl, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %s): %w — is the server up? (`lifeboat dev` starts a local one)", c.Temporal.Address, c.Temporal.Namespace, err)
	}
	return cl, nil
}
