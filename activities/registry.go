// Package activities is lifeboat's action registry: the explicit table of
// action name → argument schema, one-line doc and implementation. The worker
// registers the implementations under their action names; the validator checks
// runbooks against the schema of the whole catalogue, implemented or not.
package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/activities/argocd"
	"github.com/lifeboat-dr/lifeboat/activities/cloudflare"
	"github.com/lifeboat-dr/lifeboat/activities/evidence"
	"github.com/lifeboat-dr/lifeboat/activities/httpcheck"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/activities/notify"
	"github.com/lifeboat-dr/lifeboat/activities/postgres"
	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/activities/terraform"
	"github.com/lifeboat-dr/lifeboat/activities/velero"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Action names: exactly the `action:` keys a runbook may use.
const (
	TerraformApply       = "terraform.apply"
	TerraformOutput      = "terraform.output"
	KubeApply            = "kube.apply"
	KubeCanI             = "kube.canI"
	KubeSecretsPresent   = "kube.secretsPresent"
	KubePVCBound         = "kube.pvcBound"
	KubeCRDsEstablished  = "kube.crdsEstablished"
	KubeScale            = "kube.scale"
	KubeWaitReady        = "kube.waitReady"
	KubeDeleteNamespace  = "kube.deleteNamespace"
	VeleroRestore        = "velero.restore"
	VeleroLatestBackup   = "velero.latestBackup"
	VeleroBackup         = "velero.backup"
	ArgoCDSync           = "argocd.sync"
	CloudflareDNSSwitch  = "cloudflare.dnsSwitch"
	CloudflareLBFailover = "cloudflare.lbFailover"
	CloudflareLBRestore  = "cloudflare.lbRestore"
	HTTPCheck            = "http.check"
	NotifyWebhook        = "notify.webhook"
	ManualTask           = "manual.task"
	EvidenceStore        = "evidence.store"
	PostgresLag          = "postgres.replicationLag"
	PostgresPromote      = "postgres.promote"
	PostgresVerify       = "postgres.verify"
	PostgresRewind       = "postgres.rewind"
	PostgresRemoveClone  = "postgres.removeClone"
)

// StepFunc is the shape of every action activity.
type StepFunc func(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error)

// Deps are what the implementations need from the worker; tests pass fakes.
type Deps struct {
	// HTTPClient is used by http.check and notify.webhook.
	HTTPClient *http.Client
	// Evidence is where evidence.store writes JSON and Markdown (nil: the
	// store fails, naming what to configure).
	Evidence evidence.Store
	// EvidenceKey signs every evidence record (nil: records are chained but unsigned).
	EvidenceKey ssh.Signer
	// Secrets reads the secret references runbooks may make (webhook URLs,
	// header values) and scrubs every action's errors; nil: none allowed.
	Secrets *secrets.Store
	// Kube resolves kubeContexts to cluster clients; nil leaves kube.* unimplemented.
	Kube kube.Source
	// BaseDir resolves relative paths in runbooks (manifests, terraform dirs).
	BaseDir string
	// Terraform is the terraform binary; empty leaves terraform.* unimplemented.
	Terraform string
	// CloudflareToken returns the API token; nil leaves cloudflare.* unimplemented.
	CloudflareToken func() (string, error)
	// CloudflareURL overrides the API base URL (the emulator in tests and demos).
	CloudflareURL string
	// Postgres is the worker host's PostgreSQL tools and instances, for the
	// postgres.* actions that work on a data directory (a drill's clone,
	// postgres.rewind); the SQL-only ones need nothing but a connection string.
	Postgres postgres.Local
	// Unconfigured says, per action family left unimplemented ("kube" — which
	// velero.* and argocd.* go through —, "terraform", "cloudflare"), which
	// configuration is missing; a refusal quotes it.
	Unconfigured map[string]string
}

// Registry is the catalogue of actions, with implementations when built by New.
// It implements runbooks.Schema.
type Registry struct {
	specs        map[string]runbooks.ActionSpec
	impls        map[string]StepFunc
	prechecks    map[string]PrecheckFunc
	dryruns      map[string]DryRunFunc
	secrets      *secrets.Store
	unconfigured map[string]string
}

// Catalogue returns the registry's schemas only: enough to validate runbooks.
func Catalogue() *Registry {
	r := &Registry{specs: map[string]runbooks.ActionSpec{}, impls: map[string]StepFunc{}, prechecks: map[string]PrecheckFunc{}, dryruns: map[string]DryRunFunc{}}
	for _, s := range table {
		r.specs[s.Name] = s
	}
	return r
}

// New returns the registry with the implementations this build has.
func New(d Deps) *Registry {
	r := Catalogue()
	if d.HTTPClient == nil {
		d.HTTPClient = http.DefaultClient
	}
	hc, nt := httpcheck.New(d.HTTPClient, d.Secrets), notify.New(d.HTTPClient, d.Secrets)
	impls := map[string]StepFunc{
		HTTPCheck:     hc.Check,
		NotifyWebhook: nt.Send,
		EvidenceStore: evidence.NewSink(d.Evidence).WithKey(d.EvidenceKey).Store,
	}
	r.prechecks[HTTPCheck], r.prechecks[NotifyWebhook] = hc.Precheck, nt.Precheck
	pg := &postgres.Actions{Secrets: d.Secrets, Local: d.Postgres}
	impls[PostgresLag], impls[PostgresPromote], impls[PostgresVerify] = pg.ReplicationLag, pg.Promote, pg.Verify
	if d.Postgres.Bin != "" { // they run PostgreSQL's tools on a local data directory
		impls[PostgresRewind], impls[PostgresRemoveClone] = pg.Rewind, pg.RemoveClone
	}
	maps.Copy(r.prechecks, pg.Prechecks())
	maps.Copy(r.dryruns, pg.DryRuns())
	if d.Kube != nil {
		k := &kube.Actions{Source: d.Kube, BaseDir: d.BaseDir}
		impls[KubeApply], impls[KubeCanI], impls[KubeSecretsPresent] = k.Apply, k.CanI, k.SecretsPresent
		impls[KubePVCBound], impls[KubeCRDsEstablished], impls[KubeScale] = k.PVCBound, k.CRDsEstablished, k.Scale
		impls[KubeWaitReady], impls[KubeDeleteNamespace] = k.WaitReady, k.DeleteNamespace
		v := &velero.Actions{Source: d.Kube}
		impls[VeleroRestore], impls[VeleroLatestBackup], impls[VeleroBackup] = v.Restore, v.LatestBackup, v.Backup
		ac := &argocd.Actions{Source: d.Kube}
		impls[ArgoCDSync], r.prechecks[ArgoCDSync] = ac.Sync, ac.Precheck
		maps.Copy(r.prechecks, k.Prechecks())
		maps.Copy(r.prechecks, v.Prechecks())
		maps.Copy(r.dryruns, k.DryRuns())
		maps.Copy(r.dryruns, v.DryRuns())
		r.dryruns[ArgoCDSync] = ac.DryRun
	}
	if d.Terraform != "" {
		tf := &terraform.Actions{Binary: d.Terraform, BaseDir: d.BaseDir}
		impls[TerraformApply], impls[TerraformOutput] = tf.Apply, tf.Output
		maps.Copy(r.prechecks, tf.Prechecks())
		r.dryruns[TerraformApply] = tf.DryRun
	}
	if d.CloudflareToken != nil {
		c := &cloudflare.Actions{Token: d.CloudflareToken, BaseURL: d.CloudflareURL, HTTP: d.HTTPClient}
		impls[CloudflareDNSSwitch], impls[CloudflareLBFailover], impls[CloudflareLBRestore] = c.DNSSwitch, c.LBFailover, c.LBRestore
		maps.Copy(r.prechecks, c.Prechecks())
		maps.Copy(r.dryruns, c.DryRuns())
	}
	r.secrets, r.unconfigured = d.Secrets, d.Unconfigured
	for name, fn := range impls {
		r.impls[name] = withAttempt(drillScoped(r.specs[name], fn), d.Secrets)
	}
	return r
}

// KubeAccesses are the declarations of every action that works in a
// Kubernetes cluster (see kube.AccessFunc): what its pre-flight check asks
// for and what `lifeboat rbac` grants. baseDir resolves kube.apply's
// manifests.
func KubeAccesses(baseDir string) map[string]kube.AccessFunc {
	out := (&kube.Actions{BaseDir: baseDir}).Accesses()
	maps.Copy(out, (&velero.Actions{}).Accesses())
	out[ArgoCDSync] = (&argocd.Actions{}).Access()
	return out
}

// Action implements runbooks.Schema.
func (r *Registry) Action(name string) (runbooks.ActionSpec, bool) {
	s, ok := r.specs[name]
	return s, ok
}

// ActionNames implements runbooks.Schema.
func (r *Registry) ActionNames() []string {
	names := make([]string, 0, len(r.specs))
	for n := range r.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Implemented reports whether this build can run the action: it has an
// activity, or it is a human step the workflow itself waits on.
func (r *Registry) Implemented(name string) bool {
	if s, ok := r.specs[name]; ok && s.Human {
		return true
	}
	_, ok := r.impls[name]
	return ok
}

// WhyNotImplemented says why this worker cannot run the action: the
// configuration it lacks (Deps.Unconfigured), or that this build has none.
func (r *Registry) WhyNotImplemented(name string) string {
	family, _, _ := strings.Cut(name, ".")
	if family == "velero" || family == "argocd" {
		family = "kube"
	}
	if why := r.unconfigured[family]; why != "" {
		return why
	}
	return "this worker has no implementation of " + name
}

// Activities returns the activity functions by registered name.
func (r *Registry) Activities() map[string]StepFunc { return r.impls }

// Specs returns every action declaration in name order.
func (r *Registry) Specs() []runbooks.ActionSpec {
	out := make([]runbooks.ActionSpec, 0, len(r.specs))
	for _, n := range r.ActionNames() {
		out = append(out, r.specs[n])
	}
	return out
}

// AttemptDetail is attached to an action's error so the workflow can record
// which attempt failed.
type AttemptDetail struct {
	Attempt int `json:"attempt"`
}

// withAttempt records the attempt number on success and failure, keeping the
// error's type and retryability.
// Every error is redacted (secret values and URLs' paths removed) and
// every summary scrubbed of secret values on the way out.
func withAttempt(fn StepFunc, s *secrets.Store) StepFunc {
	return func(ctx context.Context, in runbooks.StepInput) (runbooks.StepResult, error) {
		attempt := int(activity.GetInfo(ctx).Attempt)
		res, err := fn(ctx, in)
		res.Attempt = attempt
		res.Summary = s.Scrub(res.Summary)
		if err == nil {
			return res, nil
		}
		err = redacted(err, s)
		var argsErr *runbooks.ArgsError
		if errors.As(err, &argsErr) {
			return res, temporal.NewApplicationErrorWithOptions(err.Error(), "InvalidArgument", temporal.ApplicationErrorOptions{
				NonRetryable: true, Details: []any{AttemptDetail{attempt}}})
		}
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return res, temporal.NewApplicationErrorWithOptions(err.Error(), ae.Type(), temporal.ApplicationErrorOptions{
				NonRetryable: ae.NonRetryable(), Details: []any{AttemptDetail{attempt}}, NextRetryDelay: ae.NextRetryDelay()})
		}
		var canceled *temporal.CanceledError
		if errors.Is(err, context.Canceled) || errors.As(err, &canceled) {
			return res, err
		}
		return res, temporal.NewApplicationErrorWithOptions(err.Error(), fmt.Sprintf("%T", err), temporal.ApplicationErrorOptions{
			Details: []any{AttemptDetail{attempt}}})
	}
}

// NewWithFuncs returns the catalogue with the given implementations instead of
// this build's; tests use it to run workflows against fakes.
func NewWithFuncs(impls map[string]StepFunc) *Registry {
	r := Catalogue()
	for name, fn := range impls {
		r.impls[name] = withAttempt(drillScoped(r.specs[name], fn), nil)
	}
	return r
}

// redacted is err with its message redacted, its kind kept: an
// ArgsError, an ApplicationError (type, retryability, delay, details) or a
// cancellation (left whole: its reason is lifeboat's own text).
func redacted(err error, s *secrets.Store) error {
	msg := s.Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	var argsErr *runbooks.ArgsError
	if errors.As(err, &argsErr) {
		return &runbooks.ArgsError{Step: argsErr.Step, Err: errors.New(s.Redact(argsErr.Err.Error()))}
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return temporal.NewApplicationErrorWithOptions(msg, ae.Type(), temporal.ApplicationErrorOptions{
			NonRetryable: ae.NonRetryable(), NextRetryDelay: ae.NextRetryDelay()})
	}
	var canceled *temporal.CanceledError
	if errors.Is(err, context.Canceled) || errors.As(err, &canceled) {
		return err
	}
	return errors.New(msg)
}
