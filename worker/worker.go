package worker

import (
	"context"
	"net/http"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/activities/kube"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// Registry returns the action registry with this build's implementations,
// wired to the config's dependencies. Actions whose configuration is missing
// stay unimplemented, and the resolver's refusal names what to configure.
func Registry(cfg Config) *activities.Registry {
	// CheckWorker has read the key already; an unreadable key leaves records unsigned.
	key, _ := cfg.Signatures.EvidenceKey()
	store, _ := cfg.EvidenceStore() // CheckWorker has said what is wrong with it
	d := activities.Deps{
		HTTPClient:  &http.Client{Timeout: time.Minute},
		Evidence:    store,
		EvidenceKey: key,
		Secrets:     cfg.SecretStore(),
		BaseDir:     cfg.BaseDir,
		Terraform:   cfg.TerraformBinary(),

		CloudflareToken: cfg.Cloudflare.Token(os.Getenv),
		CloudflareURL:   cfg.Cloudflare.BaseURL,
		Postgres:        cfg.Postgres,
		Unconfigured:    map[string]string{},
	}
	if cfg.Postgres.Bin == "" {
		d.Unconfigured["postgres"] = "no PostgreSQL tools configured: set postgres.bin (the directory of pg_ctl, pg_basebackup, pg_rewind) and postgres.instances in the worker config"
	}
	if cfg.Kube.Configured(os.Getenv) {
		d.Kube = &kube.KubeconfigSource{Default: cfg.Kube.Kubeconfig, Contexts: cfg.Kube.Contexts, InCluster: cfg.Kube.InCluster, DrillRole: cfg.Kube.DrillRole}
	} else {
		d.Unconfigured["kube"] = "no kubeconfig configured: set kube.kubeconfig (or LIFEBOAT_KUBECONFIG) in the worker config, or KUBECONFIG, or create ~/.kube/config"
	}
	if d.Terraform == "" {
		d.Unconfigured["terraform"] = "no terraform binary: install terraform on the worker's PATH or set terraform.binary (LIFEBOAT_TERRAFORM)"
	}
	if d.CloudflareToken == nil {
		d.Unconfigured["cloudflare"] = "no Cloudflare token configured: set cloudflare.tokenEnv or cloudflare.tokenFile (LIFEBOAT_CLOUDFLARE_TOKEN_ENV, LIFEBOAT_CLOUDFLARE_TOKEN_FILE) in the worker config"
	}
	return activities.New(d)
}

// New builds a worker on the config's task queue with RestoreWorkflow, the
// runbook resolver and every implemented action registered by its name.
func New(c client.Client, cfg Config, reg *activities.Registry, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, cfg.Temporal.TaskQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.RestoreWorkflow, workflow.RegisterOptions{Name: workflows.RestoreWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.RecoveryPlanWorkflow, workflow.RegisterOptions{Name: workflows.RecoveryPlanWorkflowName})
	st := starter.New(c, cfg.Temporal.TaskQueue)
	resolver := &activities.Resolver{Dirs: cfg.Catalog, Registry: reg, Notify: cfg.Notify.Settings(os.Getenv),
		Signers: cfg.Signatures.Signers(), SignaturesRequired: cfg.Signatures.Required, Secrets: cfg.SecretStore(),
		Records: records(c, cfg), Drills: recorded(c, cfg), StartIdentity: st.StartIdentity}
	w.RegisterActivityWithOptions(resolver.Resolve, activity.RegisterOptions{Name: workflows.ResolveActivity})
	w.RegisterActivityWithOptions(identities(c, cfg), activity.RegisterOptions{Name: workflows.IdentitiesActivity})
	w.RegisterActivityWithOptions(st.OtherChains, activity.RegisterOptions{Name: workflows.StartRunsActivity})
	w.RegisterActivityWithOptions(reg.Precheck, activity.RegisterOptions{Name: workflows.PrecheckActivity}) // runs recorded before batched pre-checks
	w.RegisterActivityWithOptions(reg.Prechecks, activity.RegisterOptions{Name: workflows.PrechecksActivity})
	w.RegisterActivityWithOptions(reg.DryRun, activity.RegisterOptions{Name: workflows.DryRunActivity})
	for name, fn := range reg.Activities() {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return w
}

// records reads a past run's resolved runbook and evidence from its
// history, with the worker's own client and data converter (a failback is
// built from them; a re-enactment's text is checked against them).
func records(c client.Client, cfg Config) func(context.Context, string) (runbooks.Resolved, record.Evidence, error) {
	dc, _ := cfg.DataConverter()
	st := starter.New(c, cfg.Temporal.TaskQueue).WithDataConverter(dc)
	dc = st.DataConverter() // the default when the config sets none
	return func(ctx context.Context, id string) (runbooks.Resolved, record.Evidence, error) {
		h, err := st.OwnHistory(ctx, id)
		if err != nil {
			return runbooks.Resolved{}, record.Evidence{}, err
		}
		res, err := starter.ResolvedFromHistory(h, dc)
		if err != nil {
			return res, record.Evidence{}, err
		}
		ev, err := starter.EvidenceFromHistory(h, dc)
		return res, ev, err
	}
}

// recorded reads a past run's resolved runbook and mode from its history
// (a teardown runs the teardown its drill recorded).
func recorded(c client.Client, cfg Config) func(context.Context, string) (runbooks.Resolved, string, error) {
	dc, _ := cfg.DataConverter()
	return starter.New(c, cfg.Temporal.TaskQueue).WithDataConverter(dc).Recorded
}

// identities is the lifeboat.identities activity on the worker's own
// client, decoding payloads with the worker's data converter.
func identities(c client.Client, cfg Config) func(context.Context, string, string) ([]workflows.MessageIdentity, error) {
	dc, _ := cfg.DataConverter() // CheckWorker has read the keys already
	return starter.New(c, cfg.Temporal.TaskQueue).WithDataConverter(dc).Identities
}
