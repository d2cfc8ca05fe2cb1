package worker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// A worker without a kubeconfig, terraform or a Cloudflare token refuses
// example (a) before anything runs, each step naming the configuration it
// lacks — not "cannot run yet".
func TestAWorkerWithoutConfigurationSaysWhatIsMissing(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	cfg := worker.Defaults()
	cfg.Catalog = []string{"../runbooks/examples"}
	res := &activities.Resolver{Dirs: cfg.Catalog, Registry: worker.Registry(cfg)}
	_, err := res.Resolve(context.Background(), runbooks.ResolveInput{Runbook: "case-management-region-failover", Mode: "failover"})
	require.Error(t, err)
	for _, want := range []string{
		"terraform.apply (spec.layers.network[0], step dr-network): no terraform binary: install terraform on the worker's PATH or set terraform.binary",
		"kube.apply (spec.layers.identity[0], step identity-bindings): no kubeconfig configured: set kube.kubeconfig",
		"velero.restore (spec.layers.storage[1], step restore-case-data): no kubeconfig configured",
		"argocd.sync (spec.layers.workloads[0], step gitops-sync): no kubeconfig configured",
		"cloudflare.dnsSwitch (spec.layers.edge[0], step shift-traffic): no Cloudflare token configured: set cloudflare.tokenEnv or cloudflare.tokenFile",
		"Nothing was executed",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "cannot run yet")

	// Configured, the same worker runs them.
	cfg.Kube.Kubeconfig, cfg.Terraform.Binary, cfg.Cloudflare.TokenEnv = "/etc/kubeconfig", "/usr/bin/terraform", "CF_TOKEN"
	reg := worker.Registry(cfg)
	for _, a := range []string{activities.KubeApply, activities.VeleroRestore, activities.TerraformApply, activities.CloudflareDNSSwitch} {
		assert.True(t, reg.Implemented(a), a)
	}
}
