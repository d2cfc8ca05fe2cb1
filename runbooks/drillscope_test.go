package runbooks_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// safeDrill is example (a)'s shape with every step kept inside the drill.
const safeDrill = `  layers:
    network:
      - {id: dr-network, action: terraform.apply, with: {dir: infra/dr-network, vars: {region: ca-west-1}}}
    identity:
      - {id: bindings, action: kube.apply, with: {target: dr, path: manifests/identity}}
      - {id: can-read, action: kube.canI, with: {target: dr, as: "system:serviceaccount:case-management:case-api", verb: get, resource: secrets, namespace: case-management}}
    storage:
      - {id: restore, action: velero.restore, with: {target: dr, schedule: hourly, namespaces: [case-management]}}
    workloads:
      - {id: scale, action: kube.scale, with: {target: dr, namespace: case-management, replicas: {case-api: 2}}}
      - {id: journey, action: http.check, with: {url: "http://case-api"}}
    edge:
      - {id: shift, action: cloudflare.dnsSwitch, with: {zone: example.com, record: case.example.com, to: dr.example.com}}
      - {id: lb, action: cloudflare.lbFailover, with: {zone: example.com, loadBalancer: lb.example.com, drPool: dr}}
  drill:
    namespaceMappings: {case-management: drill-case}
    skip: [shift]
    with:
      dr-network: {varFiles: [drill.tfvars]}
      lb: {loadBalancer: lb.drill.example.com}
    teardown:
      - {id: drop, action: kube.deleteNamespace, with: {target: dr, namespace: drill-case}}
`

func TestASafeDrillValidates(t *testing.T) {
	ps := validate(t, header+safeDrill)
	assert.Empty(t, ps.Errors(), ps.Error())
}

func TestDrillThatCouldTouchProductionIsRefused(t *testing.T) {
	cases := []struct {
		name, old, new, path, msg string
	}{
		{"teardown deletes production", "namespace: drill-case}}\n", "namespace: case-management}}\n",
			"spec.drill.teardown[0].with.namespace", `a drill's teardown may only touch what the drill created: "case-management" is not a destination of spec.drill.namespaceMappings (drill-case)`},
		{"unmapped namespace", "namespace: case-management, replicas", "namespace: billing, replicas",
			"spec.layers.workloads[0].with.namespace", `namespace "billing", which spec.drill.namespaceMappings does not map`},
		{"restore of an unmapped namespace", "namespaces: [case-management]", "namespaces: [case-management, billing]",
			"spec.layers.storage[0].with.namespaces", `namespace "billing", which spec.drill.namespaceMappings does not map`},
		{"restore of every namespace", ", namespaces: [case-management]}", "}",
			"spec.layers.storage[0].with.namespaces", "name the namespaces to restore"},
		{"restore into production through its own mapping", "namespaces: [case-management]}", "namespaces: [case-management], namespaceMappings: {case-management: case-management}}",
			"spec.layers.storage[0].with.namespaceMappings", `maps "case-management" to "case-management", which is not a drill namespace`},
		{"edge step neither skipped nor overridden", "    skip: [shift]\n", "",
			"spec.layers.edge[0]", "cloudflare.dnsSwitch changes edge/DNS: in a drill, add shift to spec.drill.skip or point it away from production with spec.drill.with.shift.record"},
		{"override that changes nothing", "      lb: {loadBalancer: lb.drill.example.com}\n", "      lb: {loadBalancer: lb.example.com}\n",
			"spec.drill.with.lb.loadBalancer", "is the production value"},
		{"infrastructure step neither skipped nor overridden", "      dr-network: {varFiles: [drill.tfvars]}\n", "",
			"spec.layers.network[0]", "terraform.apply changes infrastructure"},
		{"override of an unknown step", "      lb: {loadBalancer", "      lbb: {loadBalancer",
			"spec.drill.with.lbb", `unknown step "lbb" (did you mean "lb"?)`},
		{"override of an unknown argument", "lb: {loadBalancer: lb.drill.example.com}", "lb: {loadBalancer: lb.drill.example.com, hostname: x}",
			"spec.drill.with.lb.hostname", "unknown argument for cloudflare.lbFailover"},
		{"override of a skipped step", "      lb: {loadBalancer", "      shift: {record: case.drill.example.com}\n      lb: {loadBalancer",
			"spec.drill.with.shift", "is in spec.drill.skip"},
		{"a teardown's restore of every namespace", "      - {id: drop, action: kube.deleteNamespace, with: {target: dr, namespace: drill-case}}\n",
			"      - {id: drop, action: kube.deleteNamespace, with: {target: dr, namespace: drill-case}}\n      - {id: sneaky, action: velero.restore, with: {target: dr, backup: hourly-1}}\n",
			"spec.drill.teardown[1].with.namespaces", "name the namespaces to restore"},
		{"kube.apply into an unmapped default namespace", "path: manifests/identity}}", "path: manifests/identity, namespace: billing}}",
			"spec.layers.identity[0].with.namespace", `namespace "billing", which spec.drill.namespaceMappings does not map`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, safeDrill, c.old)
			ps := validate(t, header+strings.Replace(safeDrill, c.old, c.new, 1))
			var found []string
			for _, p := range ps.Errors() {
				found = append(found, p.Path+": "+p.Message)
				if p.Path == c.path && strings.Contains(p.Message, c.msg) {
					return
				}
			}
			t.Errorf("want %s: …%s…; got:\n%s", c.path, c.msg, strings.Join(found, "\n"))
		})
	}
}

func TestEveryActionDeclaresWhatItMayChangeAndHowADrillMakesItSafe(t *testing.T) {
	for _, spec := range activities.Catalogue().Specs() {
		assert.NotEmpty(t, spec.Effect, "%s declares no effect", spec.Name)
		assert.NotEmpty(t, spec.Drill, "%s declares no drill rule", spec.Name)
		if spec.Drill == runbooks.DrillOverrideOrSkip {
			assert.NotEmpty(t, spec.DrillOverrides, "%s: which arguments point it away from production?", spec.Name)
		}
	}
}

func TestRunningAsADrillWithoutADrillSectionIsCheckedToo(t *testing.T) {
	rb, err := runbooks.Parse([]byte(header+`  layers:
    workloads:
      - {id: scale, action: kube.scale, with: {target: dr, namespace: case-management, replicas: {case-api: 2}}}
      - {id: journey, action: http.check, with: {url: "http://case-api"}}
`), "t.yaml")
	require.NoError(t, err)
	assert.Empty(t, runbooks.Validate(rb, activities.Catalogue()).Errors(), "a runbook without spec.drill is valid")
	ps := runbooks.ValidateDrill(rb, activities.Catalogue())
	require.Len(t, ps.Errors(), 1, ps.Error())
	assert.Equal(t, "spec.layers.workloads[0].with.namespace", ps.Errors()[0].Path)
}

// Issue 24, scenario 2: chained mappings {case-management: payments,
// payments: drill-payments} with a teardown deleting payments passed
// validate, since payments was "some mapping's destination".
func TestDrillMappingsMayNotChain(t *testing.T) {
	chained := strings.Replace(safeDrill, "namespaceMappings: {case-management: drill-case}",
		"namespaceMappings: {case-management: payments, payments: drill-payments}", 1)
	chained = strings.Replace(chained, "namespace: drill-case}}", "namespace: payments}}", 1)
	ps := validate(t, header+chained)
	require.NotEmpty(t, ps.Errors())
	assert.Contains(t, ps.Errors().Error(), `spec.drill.namespaceMappings.case-management: maps to "payments", which is itself mapped (to "drill-payments"): mappings may not chain`)

	self := strings.Replace(safeDrill, "{case-management: drill-case}", "{case-management: case-management}", 1)
	assert.Contains(t, validate(t, header+self).Errors().Error(), `maps namespace "case-management" to itself`)
}

// Issue 24 (8): an http.check that POSTs is an external side effect: a
// drill must skip it or point its url away.
func TestAChangingHTTPCheckMustBeSkippedOrPointedAwayInADrill(t *testing.T) {
	post := strings.Replace(safeDrill, `{id: journey, action: http.check, with: {url: "http://case-api"}}`,
		`{id: journey, action: http.check, with: {url: "http://case-api/orders", method: POST}}`, 1)
	ps := validate(t, header+post)
	require.NotEmpty(t, ps.Errors())
	assert.Contains(t, ps.Errors().Error(), "http.check sends POST, an external side effect: in a drill, add journey to spec.drill.skip or point it away from production with spec.drill.with.journey.url")
	pointed := strings.Replace(post, "      lb: {loadBalancer: lb.drill.example.com}\n", "      lb: {loadBalancer: lb.drill.example.com}\n      journey: {url: \"http://case-api.drill/orders\"}\n", 1)
	assert.Empty(t, validate(t, header+pointed).Errors())
}
