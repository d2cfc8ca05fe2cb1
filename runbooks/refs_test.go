package runbooks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

func TestReferencesToEarlierStepsOutputsAreChecked(t *testing.T) {
	body := `  layers:
    network:
      - {id: net, action: terraform.apply, with: {dir: infra}}
    workloads:
      - id: health
        action: http.check
        needs: [scale]
        with: {url: "https://${{ steps.net.outputs.lb_hostname }}/healthz"}
      - id: scale
        action: kube.scale
        needs: [net]
        with: {target: dr, namespace: ns, replicas: {api: 2}}
      - id: late
        action: http.check
        with: {url: "${{ steps.health.outputs.status }}"}
      - id: wrong-output
        action: http.check
        needs: [scale]
        with: {url: "${{ steps.scale.outputs.replicas }}"}
      - id: nobody
        action: http.check
        needs: [net]
        with: {url: "${{ steps.nets.outputs.x }}"}
      - id: typo
        action: http.check
        needs: [net]
        with: {url: "${{ step.net.outputs.x }}"}
      - id: whole
        action: kube.scale
        needs: [net]
        with: {target: dr, namespace: "${{ steps.net.outputs.namespace }}", replicas: "${{ steps.net.outputs.replicas }}"}
`
	ps := validate(t, header+body)
	text := ps.Error()
	for _, want := range []string{
		`line 25: spec.layers.workloads[2].with: ${{ steps.health.outputs.status }}: step late does not need health, so its output may not exist yet: add health to needs`,
		`line 29: spec.layers.workloads[3].with: ${{ steps.scale.outputs.replicas }}: action kube.scale of step scale has no output "replicas" (known: previousReplicas)`,
		`spec.layers.workloads[4].with: ${{ steps.nets.outputs.x }}: unknown step "nets" (did you mean "net"?)`,
		`spec.layers.workloads[5].with: "${{ step.net.outputs.x }}" opens a reference with ${{ but is not ${{ steps.ID.outputs.NAME }}`,
	} {
		assert.Contains(t, text, want)
	}
	assert.Len(t, ps.Errors(), 4, "health (through scale) and whole (a number from a reference) are fine:\n%s", text)
}

func TestResolveRefsKeepsTypesAndRecordsWhatItUsed(t *testing.T) {
	outputs := map[string]any{"lb_hostname": "lb.dr.example.com", "replicas": float64(3), "pools": []any{"a", "b"}, "password": runbooks.SensitiveOutput}
	lookup := func(r runbooks.Ref) (any, error) {
		v, ok := outputs[r.Output]
		if !ok {
			return nil, fmt.Errorf("no output %s", r.Output)
		}
		return v, nil
	}
	args := map[string]any{
		"url":      "https://${{ steps.net.outputs.lb_hostname }}/healthz",
		"replicas": map[string]any{"api": "${{steps.net.outputs.replicas}}"},
		"note":     "pools ${{ steps.net.outputs.pools }}",
		"plain":    "no reference",
	}
	got, used, err := runbooks.ResolveRefs(args, lookup)
	require.NoError(t, err)
	assert.Equal(t, "https://lb.dr.example.com/healthz", got["url"])
	assert.Equal(t, float64(3), got["replicas"].(map[string]any)["api"], "a whole reference keeps the output's type")
	assert.Equal(t, `pools ["a","b"]`, got["note"])
	assert.Equal(t, "no reference", got["plain"])
	assert.Equal(t, map[string]any{"steps.net.outputs.lb_hostname": "lb.dr.example.com", "steps.net.outputs.replicas": float64(3),
		"steps.net.outputs.pools": []any{"a", "b"}}, used)
	assert.Equal(t, "${{ steps.net.outputs.lb_hostname }}", args["url"].(string)[8:44], "the runbook's own map is not changed")

	_, _, err = runbooks.ResolveRefs(map[string]any{"x": "${{ steps.net.outputs.password }}"}, lookup)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "the output is sensitive"), err.Error())
	_, _, err = runbooks.ResolveRefs(map[string]any{"x": "${{ steps.net.outputs.nope }}"}, lookup)
	assert.ErrorContains(t, err, "${{ steps.net.outputs.nope }}: no output nope")
}

// A drill cannot check where a namespace read from an output points: the
// drill names it (spec.drill.with) or skips the step.
func TestADrillRefusesANamespaceItCannotCheck(t *testing.T) {
	rb, err := runbooks.Parse([]byte(header+`  layers:
    network:
      - {id: net, action: terraform.output, with: {dir: infra}}
    workloads:
      - id: scale
        action: kube.scale
        needs: [net]
        with: {target: dr, namespace: "${{ steps.net.outputs.ns }}", replicas: {api: 2}}
  drill:
    namespaceMappings: {case-management: restore-drill-case-management}
`), "t.yaml")
	require.NoError(t, err)
	ps := runbooks.ValidateDrill(rb, activities.Catalogue()).Errors()
	require.Len(t, ps, 1)
	assert.Contains(t, ps[0].Message, "the namespace ${{ steps.net.outputs.ns }} is only known when the step runs")
}
