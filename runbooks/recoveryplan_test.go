package runbooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// memberBook is a one-step runbook with the given name and RTO.
func memberBook(name, rto string) string {
	return `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: ` + name + `, version: 1}
spec:
  scope: application
  objectives: {rto: ` + rto + `, rpo: 15m}
  layers:
    workloads:
      - {id: check, action: http.check, with: {url: "http://x"}, timeout: 1m, expect: 10s}
`
}

const planHeader = `apiVersion: lifeboat/v1
kind: RecoveryPlan
metadata: {name: region-loss, version: 1}
spec:
  scope: region
  objectives: {rto: 2h, mtd: 8h}
  approvers:
    ic: [alice, bob]
  members:
`

// planCatalog writes the plan beside runbooks a (30m), b (60m) and c (45m).
func planCatalog(t *testing.T, members string) (*runbooks.Catalog, *runbooks.RecoveryPlan) {
	t.Helper()
	dir := t.TempDir()
	for name, rto := range map[string]string{"a": "30m", "b": "60m", "c": "45m"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(memberBook(name, rto)), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plan.yaml"), []byte(planHeader+members), 0o644))
	cat, err := runbooks.LoadCatalog(dir)
	require.NoError(t, err)
	e, err := cat.Plan("region-loss")
	require.NoError(t, err)
	return cat, e.Plan
}

func TestAPlanWithItsMembersIsValidAndPlanned(t *testing.T) {
	cat, plan := planCatalog(t, `    - runbook: a
    - runbook: b
    - runbook: c
      after: [a, b]
      approval: {from: [ic], min: 1}
      optional: true
`)
	require.Empty(t, runbooks.ValidatePlan(plan, cat))
	v := runbooks.MakePlanView(plan, cat.MemberRefs(plan))
	require.Len(t, v.Waves, 2)
	assert.Len(t, v.Waves[0], 2, "a and b have no dependencies: they start together")
	assert.Equal(t, "c", v.Waves[1][0].Runbook)
	assert.True(t, v.Waves[1][0].Gated)
	assert.Len(t, v.Critical, 2)
	assert.Equal(t, "c", v.Critical[1])
	assert.Equal(t, "20s", v.Estimate.String(), "two 10s members one after the other")
	assert.Equal(t, "1h45m", v.RTOBound.String())
	assert.True(t, v.Fits)
	var out strings.Builder
	v.WriteText(&out)
	assert.Contains(t, out.String(), "wave 1, in parallel:")
	assert.Contains(t, out.String(), "if every member used its whole RTO: 1h45m")
}

func TestPlanValidationNamesEveryProblemWithItsLine(t *testing.T) {
	cat, plan := planCatalog(t, `    - runbook: a
      after: [c]
    - runbook: bb
    - runbook: c
      after: [a, nobody]
      approval: {from: [ics], min: 1}
    - runbook: b
    - runbook: b
`)
	ps := runbooks.ValidatePlan(plan, cat)
	text := ps.Error()
	for _, want := range []string{
		`line 14: spec.members[2].after: cycle in layer members: a → c → a`,
		`line 12: spec.members[1].runbook: no runbook named "bb" in the catalog (did you mean "b"?)`,
		`line 14: spec.members[2].after[1]: "nobody" is not a member of this plan`,
		`line 15: spec.members[2].approval.from[0]: unknown approver group "ics" (did you mean "ic"?)`,
		`line 17: spec.members[4].runbook: runbook "b" is already member 4`,
	} {
		assert.Contains(t, text, want)
	}
}

func TestPlanMembersWhoseRTOsDoNotFitAreRefused(t *testing.T) {
	cat, plan := planCatalog(t, `    - runbook: a
    - runbook: b
      after: [a]
    - runbook: c
      after: [b]
`)
	ps := runbooks.ValidatePlan(plan, cat)
	require.Len(t, ps.Errors(), 1)
	assert.Equal(t, "spec.objectives.rto", ps[0].Path)
	assert.Contains(t, ps[0].Message, "the members' RTOs along a → b → c add up to 2h15m, longer than the plan's RTO 2h")
}

func TestPlansAndRunbooksShareOneNamespace(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(memberBook("a", "30m")), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(strings.Replace(planHeader, "region-loss", "a", 1)+"    - runbook: a\n"), 0o644))
	_, err := runbooks.LoadCatalog(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `b.yaml:3: metadata.name: name "a" is also used by`)

	cat, plan := planCatalog(t, "    - runbook: a\n")
	_, err = cat.Get("region-loss")
	assert.ErrorContains(t, err, `"region-loss" is a recovery plan, not a runbook`)
	_, err = cat.Plan("a")
	assert.ErrorContains(t, err, `"a" is a runbook, not a recovery plan`)
	e, _ := cat.Plan(plan.Metadata.Name)
	_, _, err = runbooks.LoadFile(e.Path)
	assert.ErrorContains(t, err, "is a recovery plan, not a runbook")
}

func TestAPlanFileRefusesUnknownFields(t *testing.T) {
	_, err := runbooks.ParsePlan([]byte(planHeader+"    - runbook: a\n      afterr: [b]\n"), "p.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `p.yaml:11: spec.members[0].afterr: unknown field "afterr" (allowed here: runbook, after, approval, optional)`)
}
