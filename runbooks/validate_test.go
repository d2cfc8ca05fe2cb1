package runbooks_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/activities"
	"github.com/lifeboat-dr/lifeboat/runbooks"
)

const header = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: book, version: 1}
spec:
  scope: region
  objectives: {rto: 60m, rpo: 15m, mtd: 4h}
  approvers:
    ic: [alice, bob]
  targets:
    dr: {kubeContext: dr}
`

func validate(t *testing.T, doc string) runbooks.Problems {
	t.Helper()
	rb, err := runbooks.Parse([]byte(doc), "t.yaml")
	require.NoError(t, err)
	return runbooks.Validate(rb, activities.Catalogue())
}

func TestValidateReportsEveryErrorClassWithItsPath(t *testing.T) {
	cases := []struct {
		name, body, path, msg string
	}{
		{"unknown action", `  layers:
    network:
      - {id: a, action: terraform.aply, with: {dir: x}}
`, "spec.layers.network[0].action", `unknown action "terraform.aply" (did you mean "terraform.apply"?)`},
		{"missing argument", `  layers:
    network:
      - {id: a, action: terraform.apply}
`, "spec.layers.network[0].with.dir", "missing required argument"},
		{"unknown argument", `  layers:
    network:
      - {id: a, action: http.check, with: {url: "http://x", colour: red}}
`, "spec.layers.network[0].with.colour", "unknown argument for http.check"},
		{"bad argument type", `  layers:
    network:
      - {id: a, action: http.check, with: {url: "http://x", expectStatus: "ok"}}
`, "spec.layers.network[0].with.expectStatus", "must be a whole number"},
		{"action rule", `  layers:
    storage:
      - {id: a, action: velero.restore, with: {target: dr, backup: b, schedule: s}}
`, "spec.layers.storage[0].with.backup", "exactly one of"},
		{"duplicate id", `  layers:
    network:
      - {id: a, action: http.check, with: {url: "http://x"}}
    edge:
      - {id: a, action: http.check, with: {url: "http://x"}}
`, "spec.layers.edge[0].id", `duplicate step id "a" (first defined at spec.layers.network[0])`},
		{"cycle", `  layers:
    network:
      - {id: a, action: http.check, needs: [b], with: {url: "http://x"}}
      - {id: b, action: http.check, needs: [a], with: {url: "http://x"}}
`, "spec.layers.network[", "cycle in layer network"},
		{"forward needs", `  layers:
    network:
      - {id: a, action: http.check, needs: [b], with: {url: "http://x"}}
    edge:
      - {id: b, action: http.check, with: {url: "http://x"}}
`, "spec.layers.network[0].needs[0]", `"b" is in the later layer edge`},
		{"unknown needs", `  layers:
    network:
      - {id: abc, action: http.check, with: {url: "http://x"}}
      - {id: b, action: http.check, needs: [abd], with: {url: "http://x"}}
`, "spec.layers.network[1].needs[0]", `unknown step "abd" (did you mean "abc"?)`},
		{"unknown approver group", `  layers:
    edge:
      - {id: a, action: http.check, approval: {from: [dba]}, with: {url: "http://x"}}
`, "spec.layers.edge[0].approval.from[0]", `unknown approver group "dba"`},
		{"quorum larger than groups", `  layers:
    edge:
      - {id: a, action: http.check, approval: {from: [ic], min: 3}, with: {url: "http://x"}}
`, "spec.layers.edge[0].approval.min", "needs 3 distinct approvers but the groups hold only 2"},
		{"undeclared target", `  layers:
    secrets:
      - {id: a, action: kube.secretsPresent, with: {target: prod, namespace: n, names: [s]}}
`, "spec.layers.secrets[0].with.target", `target "prod" is not declared`},
		{"bad failure policy", `  layers:
    network:
      - {id: a, action: http.check, onFailure: ignore, with: {url: "http://x"}}
`, "spec.layers.network[0].onFailure", "use pause, abort or continue"},
		{"rpoSource on an action without recovery point", `  layers:
    network:
      - {id: a, action: http.check, rpoSource: true, with: {url: "http://x"}}
`, "spec.layers.network[0].rpoSource", "does not report a recovery point"},
		{"drill skips unknown step", `  layers:
    network:
      - {id: a, action: http.check, with: {url: "http://x"}}
  drill:
    skip: [b]
`, "spec.drill.skip[0]", `unknown step "b"`},
		{"no steps", `  layers: {}
`, "spec.layers", "no steps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := validate(t, header+c.body).Errors()
			require.NotEmpty(t, ps, "expected an error")
			found := false
			for _, p := range ps {
				if strings.HasPrefix(p.Path, c.path) && strings.Contains(p.Message, c.msg) {
					found = true
					assert.Greater(t, p.Line, 0, "problem without a line: %s", p)
				}
			}
			assert.True(t, found, "no problem at %s containing %q in:\n%s", c.path, c.msg, ps.Error())
		})
	}
}

func TestValidateRTOAboveMTDAndHeader(t *testing.T) {
	doc := strings.Replace(header, "rto: 60m", "rto: 5h", 1)
	doc = strings.Replace(doc, "name: book", "name: Book_1", 1)
	ps := validate(t, doc+"  layers:\n    network:\n      - {id: a, action: http.check, with: {url: \"http://x\"}}\n").Errors()
	assert.Contains(t, ps.Error(), "spec.objectives: rto (5h) must be below mtd (4h)")
	assert.Contains(t, ps.Error(), `metadata.name: "Book_1" is not a DNS label`)
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	ps := validate(t, header+`  layers:
    network:
      - {id: a, action: nope}
      - {id: a, action: http.check}
      - {id: c, action: http.check, needs: [zzz], with: {url: "http://x"}}
`).Errors()
	assert.Len(t, ps, 4, ps.Error()) // unknown action, duplicate id, missing url, unknown needs
}

func TestCriticalPathLongerThanRTOIsAWarning(t *testing.T) {
	ps := validate(t, header+`  layers:
    network:
      - {id: a, action: http.check, timeout: 40m, with: {url: "http://x"}}
    edge:
      - {id: b, action: http.check, timeout: 30m, with: {url: "http://x"}}
`)
	require.Empty(t, ps.Errors())
	require.Len(t, ps.Warnings(), 1)
	assert.Contains(t, ps.Warnings()[0].Message, "adds up to 1h10m, longer than the RTO 1h (a → b)")
}

func TestExamplesAreValid(t *testing.T) {
	files, err := runbooks.RunbookFiles("examples")
	require.NoError(t, err)
	require.Len(t, files, 4)
	cat, err := runbooks.LoadCatalog("examples")
	require.NoError(t, err)
	for _, f := range files {
		rb, plan, err := runbooks.LoadDocument(f)
		require.NoError(t, err, f)
		if plan != nil {
			assert.Empty(t, runbooks.ValidatePlan(plan, cat), f)
			continue
		}
		assert.Empty(t, runbooks.Validate(rb, activities.Catalogue()).Errors(), f)
	}
}

func TestValidateChecksSpecFailback(t *testing.T) {
	ps := validate(t, header+`  layers:
    edge:
      - {id: dns, action: cloudflare.dnsSwitch, with: {zone: example.com, record: a.example.com, to: dr.example.com}}
  failback:
    edge:
      - id: dns-home
        action: cloudflare.dnsSwitch
        with: {zone: example.com, record: a.example.com, to: "${{ failover.steps.dns.outputs.previus }}"}
      - {id: dns-home, action: http.chek, with: {url: x}}
`)
	text := ps.Error()
	assert.Contains(t, text, `spec.failback.edge[0].with: ${{ failover.steps.dns.outputs.previus }}: action cloudflare.dnsSwitch of step dns has no output "previus" (did you mean "previous"?)`)
	assert.Contains(t, text, `spec.failback.edge[1].id: duplicate step id "dns-home"`)
	assert.Contains(t, text, `spec.failback.edge[1].action: unknown action "http.chek"`)
}
