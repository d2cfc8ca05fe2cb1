package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

const refsBook = `  layers:
    network:
      - id: net
        action: terraform.apply
        with: {dir: infra}
    workloads:
      - id: scale
        action: kube.scale
        needs: [net]
        with: {target: dr, namespace: "${{ steps.net.outputs.namespace }}", replicas: {api: "${{ steps.net.outputs.replicas }}"}}
      - id: health
        action: http.check
        needs: [scale]
        with: {url: "https://${{ steps.net.outputs.lb_hostname }}/healthz"}
  drill:
    namespaceMappings: {case-management: restore-drill-case-management}
    with:
      net: {dir: infra-drill}
      scale: {namespace: case-management}
`

// A step's arguments use an earlier step's outputs: resolved when it runs
// (a whole reference keeps the output's type) and recorded in its evidence.
func TestAStepUsesAnEarlierStepsOutputs(t *testing.T) {
	h := newHarness(t)
	h.rec.script["net"] = func(int) (runbooks.StepResult, error) {
		return runbooks.StepResult{Summary: "applied", Outputs: map[string]any{
			"namespace": "case-management", "replicas": float64(4), "lb_hostname": "lb.dr.example.com"}}, nil
	}
	ev := h.run(book("60m", refsBook), workflows.ModeDrill)
	require.Equal(t, workflows.RunSucceeded, ev.Outcome, "%+v", ev.Steps)
	h.rec.mu.Lock()
	scaleArgs, healthArgs := h.rec.args["scale"], h.rec.args["health"]
	h.rec.mu.Unlock()
	assert.Equal(t, "restore-drill-case-management", scaleArgs["namespace"], "the drill names the namespace (spec.drill.with), then maps it")
	assert.Equal(t, float64(4), scaleArgs["replicas"].(map[string]any)["api"])
	assert.Equal(t, "https://lb.dr.example.com/healthz", healthArgs["url"])
	health := stepOf(t, ev, "health")
	assert.Equal(t, map[string]any{"steps.net.outputs.lb_hostname": "lb.dr.example.com"}, health.Inputs)
	assert.Contains(t, ev.Markdown(), "used steps.net.outputs.lb_hostname = lb.dr.example.com")
}

// An output that is missing or sensitive when the step is about to run
// fails the step before anything runs, naming the reference; the run
// pauses as for any failure.
func TestAMissingOrSensitiveOutputFailsTheStepBeforeItRuns(t *testing.T) {
	for name, outputs := range map[string]map[string]any{
		"missing":   {"namespace": "case-management", "replicas": float64(2)},
		"sensitive": {"namespace": "case-management", "replicas": float64(2), "lb_hostname": runbooks.SensitiveOutput},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.rec.script["net"] = func(int) (runbooks.StepResult, error) {
				return runbooks.StepResult{Outputs: outputs}, nil
			}
			h.at(time.Minute, func() {
				st := h.status()
				assert.Equal(t, workflows.StatePaused, st.State)
				h.mustUpdate(workflows.MsgAbort, workflows.Abort{By: "alice", Reason: "fix the output"})
			})
			ev := h.run(book("60m", refsBook), workflows.ModeFailover)
			health := stepOf(t, ev, "health")
			assert.Equal(t, 0, h.rec.count("health"), "nothing ran")
			want := map[string]string{"missing": `reported no output "lb_hostname"`, "sensitive": "the output is sensitive"}[name]
			assert.Contains(t, health.Error, "${{ steps.net.outputs.lb_hostname }}: ")
			assert.Contains(t, health.Error, want)
		})
	}
}
