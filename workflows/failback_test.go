package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

const failbackBook = `  layers:
    network:
      - {id: net, action: terraform.apply, with: {dir: infra}}
    workloads:
      - {id: scale, action: kube.scale, with: {target: dr, namespace: cm, replicas: {api: 4}}}
      - {id: health, action: http.check, needs: [scale], with: {url: "http://dr"}}
    edge:
      - id: dns
        action: cloudflare.dnsSwitch
        approval: {from: [ic], min: 1}
        with: {zone: example.com, record: case.example.com, to: dr.example.com, ttl: 30}
`

// A failback is built by the worker from the failover's own record: DNS
// goes back first (behind the same gate), then the scale, then the manual
// undo of terraform; checks have nothing to undo; the evidence links the
// failover.
func TestAFailbackUndoesTheFailoverEdgeFirst(t *testing.T) {
	h := newHarness(t)
	text := book("60m", failbackBook)
	failover := record.Evidence{ID: "DR-1", WorkflowID: "lifeboat-x-failover-1", Mode: "failover", Outcome: "succeeded",
		Runbook: record.RunbookRef{Name: "test-book", Hash: runbooks.HashOf([]byte(text))},
		Steps: []record.StepRecord{
			{ID: "net", State: "succeeded", Summary: "applied infra"},
			{ID: "scale", State: "succeeded", Outputs: map[string]any{"previousReplicas": map[string]any{"api": float64(1)}}},
			{ID: "health", State: "succeeded"},
			{ID: "dns", State: "succeeded", Outputs: map[string]any{"previous": map[string]any{"type": "CNAME", "content": "primary.example.com", "ttl": float64(300), "proxied": false}}},
		}}
	h.res.Records = func(_ context.Context, id string) (runbooks.Resolved, record.Evidence, error) {
		require.Equal(t, "lifeboat-x-failover-1", id)
		return runbooks.Resolved{Source: text}, failover, nil
	}
	h.at(time.Minute, func() {
		st := h.status()
		require.Len(t, st.Pending, 1)
		assert.Equal(t, "undo-dns", st.Pending[0].Step, "traffic goes home first, behind the switch's gate")
		h.mustUpdate(workflows.MsgApprove, workflows.Approve{Step: "undo-dns", By: "bob"})
	})
	h.at(2*time.Minute, func() {
		h.mustUpdate(workflows.MsgAck, workflows.Ack{Step: "undo-net", By: "dan", Comment: "destroyed"})
	})
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, workflows.Request{Runbook: "test-book", Mode: workflows.ModeFailback,
		FailbackOf: "lifeboat-x-failover-1", RequestedBy: "alice", Reason: "primary is back"})
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Less(t, h.rec.index("end:undo-dns"), h.rec.index("start:undo-scale"))
	h.rec.mu.Lock()
	dns, scale := h.rec.args["undo-dns"], h.rec.args["undo-scale"]
	h.rec.mu.Unlock()
	assert.Equal(t, "primary.example.com", dns["to"])
	assert.EqualValues(t, 300, dns["ttl"])
	assert.EqualValues(t, 1, scale["replicas"].(map[string]any)["api"])
	require.NotNil(t, ev.Failback)
	assert.Equal(t, "lifeboat-x-failover-1", ev.Failback.Of)
	assert.Equal(t, []string{"net"}, ev.Failback.Manual)
	md := ev.Markdown()
	assert.Contains(t, md, "| Failback of | lifeboat-x-failover-1 (evidence DR-1")
	assert.Contains(t, md, "| Undone by hand | net")
	assert.Contains(t, md, "health (http.check): it changes nothing")
	assert.Equal(t, workflows.StateSucceeded, stepOf(t, ev, "undo-net").State)
}

// A failback the runbook writes (spec.failback) runs in restore order: the
// data goes home before traffic does; a generated undo runs edge first.
func TestAWrittenFailbackRunsInRestoreOrder(t *testing.T) {
	h := newHarness(t)
	text := book("60m", failbackBook+`  failback:
    storage:
      - {id: data-home, action: kube.scale, with: {target: dr, namespace: cm, replicas: {api: 1}}}
    edge:
      - {id: dns-home, action: cloudflare.dnsSwitch, with: {zone: example.com, record: case.example.com, to: primary.example.com}}
`)
	failover := record.Evidence{ID: "DR-1", WorkflowID: "lifeboat-x-failover-1", Mode: "failover", Outcome: "succeeded",
		Runbook: record.RunbookRef{Name: "test-book", Hash: runbooks.HashOf([]byte(text))}}
	h.res.Records = func(context.Context, string) (runbooks.Resolved, record.Evidence, error) {
		return runbooks.Resolved{Source: text}, failover, nil
	}
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, workflows.Request{Runbook: "test-book", Mode: workflows.ModeFailback,
		FailbackOf: "lifeboat-x-failover-1", RequestedBy: "alice", Reason: "primary is back"})
	ev := h.result()
	assert.Equal(t, workflows.RunSucceeded, ev.Outcome)
	assert.Less(t, h.rec.index("end:data-home"), h.rec.index("start:dns-home"), "data home before traffic")
}
