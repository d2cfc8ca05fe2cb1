package failback_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/failback"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// exampleFailover is example (a) without its written failback (so the undo
// is generated) and the evidence of a failover in which every step
// succeeded, as the actions report their outputs.
func exampleFailover(t *testing.T) (*runbooks.Runbook, record.Evidence) {
	t.Helper()
	rb, _, err := runbooks.LoadFile("../examples/case-management-region-failover.yaml")
	require.NoError(t, err)
	rb.Spec.Failback = nil
	ev := record.Evidence{WorkflowID: "lifeboat-cm-failover-abc123", Mode: "failover"}
	outputs := map[string]map[string]any{
		"dr-network":        {"vpc_id": "vpc-ca-west-1", "lb_hostname": "dr-lb.ca-west-1.example.com"},
		"scale-up":          {"previousReplicas": map[string]any{"case-api": float64(1)}},
		"restore-case-data": {"restore": "r-1"},
		"shift-traffic":     {"previous": map[string]any{"type": "CNAME", "content": "primary-lb.ca-central-1.example.com", "ttl": float64(300), "proxied": false}},
	}
	for _, ls := range rb.AllSteps() {
		ev.Steps = append(ev.Steps, record.StepRecord{ID: ls.Step.ID, Layer: ls.Layer, Action: ls.Step.Action, State: "succeeded",
			Summary: "did " + ls.Step.ID, Outputs: outputs[ls.Step.ID]})
	}
	return rb, ev
}

// Example (a)'s own failback is the plan, marked written (it runs in restore
// order: the data home before the traffic).
func TestExampleAFailsBackAsItsRunbookWrites(t *testing.T) {
	rb, _, err := runbooks.LoadFile("../examples/case-management-region-failover.yaml")
	require.NoError(t, err)
	plan, err := failback.Build(rb, record.Evidence{WorkflowID: "f", Mode: "failover"}, activities.Catalogue())
	require.NoError(t, err)
	assert.True(t, plan.Written)
	require.Empty(t, runbooks.Validate(plan.Runbook, activities.Catalogue()).Errors())
	var order []string
	for _, ls := range plan.Runbook.AllSteps() {
		order = append(order, ls.Layer+"/"+ls.Step.ID)
	}
	assert.Equal(t, []string{"storage/case-db-follows-dr", "storage/case-db-home", "storage/dr-db-follows-primary", "storage/backup-in-dr",
		"storage/restore-home", "edge/traffic-home", "edge/dr-winds-down"}, order)
}

func TestTheGeneratedFailbackReversesWhatTheFailoverChanged(t *testing.T) {
	rb, ev := exampleFailover(t)
	plan, err := failback.Build(rb, ev, activities.Catalogue())
	require.NoError(t, err)
	fb := plan.Runbook
	require.Empty(t, runbooks.Validate(fb, activities.Catalogue()).Errors(), "the failback is a valid runbook")
	steps := map[string]runbooks.Step{}
	for _, ls := range fb.AllSteps() {
		steps[ls.Step.ID] = ls.Step
	}
	dns := steps["undo-shift-traffic"]
	assert.Equal(t, "cloudflare.dnsSwitch", dns.Action)
	assert.Equal(t, map[string]any{"zone": "example.com", "record": "case.example.com", "to": "primary-lb.ca-central-1.example.com",
		"type": "CNAME", "ttl": float64(300), "proxied": false}, dns.With)
	require.NotNil(t, dns.Approval, "moving traffic back keeps the switch's gate")
	scale := steps["undo-scale-up"]
	assert.Equal(t, "kube.scale", scale.Action)
	assert.Equal(t, map[string]any{"case-api": float64(1)}, scale.With["replicas"])
	for _, id := range []string{"dr-network", "identity-bindings", "restore-case-data", "gitops-sync"} {
		assert.Equal(t, "manual.task", steps["undo-"+id].Action, id)
		assert.Contains(t, plan.Manual, id)
	}
	assert.Contains(t, steps["undo-restore-case-data"].With["instructions"], "Undo step restore-case-data (velero.restore), which did: did restore-case-data.")
	var nothing []string
	for _, n := range plan.NothingToUndo {
		nothing = append(nothing, strings.SplitN(n, " ", 2)[0])
	}
	assert.ElementsMatch(t, []string{"case-api-can-read-secrets", "secrets-present", "crds-established", "case-db-replica", "verify-case-db", "ready", "business-journey"}, nothing)
	assert.Equal(t, "failback of lifeboat-cm-failover-abc123 (case-management-region-failover)", fb.Metadata.Description)
	assert.Nil(t, fb.Spec.Drill)
}

func TestAFailbackOfAStepThatFailedOrWasNotRecordedIsAManualTask(t *testing.T) {
	rb, ev := exampleFailover(t)
	for i := range ev.Steps {
		switch ev.Steps[i].ID {
		case "shift-traffic":
			ev.Steps[i].State, ev.Steps[i].Error, ev.Steps[i].Outputs = "failed", "cloudflare 500", nil
		case "scale-up":
			ev.Steps[i].Outputs = nil
		case "gitops-sync":
			ev.Steps[i].State = "skipped"
		}
	}
	plan, err := failback.Build(rb, ev, activities.Catalogue())
	require.NoError(t, err)
	steps := map[string]runbooks.Step{}
	for _, ls := range plan.Runbook.AllSteps() {
		steps[ls.Step.ID] = ls.Step
	}
	assert.Equal(t, "manual.task", steps["undo-shift-traffic"].Action)
	assert.Contains(t, steps["undo-shift-traffic"].With["instructions"], "It ended failed (cloudflare 500), so what it changed is not recorded.")
	assert.Contains(t, steps["undo-scale-up"].With["instructions"], "The previous replica counts were not recorded.")
	assert.NotContains(t, steps, "undo-gitops-sync")
	assert.Contains(t, strings.Join(plan.NothingToUndo, "\n"), "gitops-sync (argocd.sync): it did not run (skipped)")
}

func TestAWrittenFailbackUsesTheFailoversOutputs(t *testing.T) {
	rb, ev := exampleFailover(t)
	rb.Spec.Failback = &runbooks.Layers{Edge: []runbooks.Step{{ID: "dns-home", Action: "cloudflare.dnsSwitch",
		With: map[string]any{"zone": "example.com", "record": "case.example.com", "to": "${{ failover.steps.shift-traffic.outputs.previous }}"}}}}
	_, err := failback.Build(rb, ev, activities.Catalogue())
	require.NoError(t, err)
	rb.Spec.Failback.Edge[0].With["to"] = "${{ failover.steps.dr-network.outputs.nope }}"
	_, err = failback.Build(rb, ev, activities.Catalogue())
	assert.ErrorContains(t, err, `${{ failover.steps.dr-network.outputs.nope }}: step dr-network recorded no output "nope"`)

	ev.Mode = "drill"
	_, err = failback.Build(rb, ev, activities.Catalogue())
	assert.ErrorContains(t, err, "is a drill: only a failover is failed back")
}
