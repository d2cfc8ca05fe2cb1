package workflows_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/workflows"
)

// runInline starts text inline while the catalog holds catalogText.
func runInline(t *testing.T, catalogText, text, mode string) (*harness, error) {
	h := newHarness(t)
	req := h.request(catalogText, mode, "alice")
	req.InlineRunbook = text
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	return h, h.env.GetWorkflowError()
}

// A failover runs reviewed catalog text only: an inline runbook that
// declares its own approvers (the attacker's) is refused before anything
// runs; the same text as a catalog runbook's is accepted.
func TestAFailoverOfInlineTextRunsOnlyCatalogText(t *testing.T) {
	reviewed := book("60m", twoLayers)
	own := strings.Replace(reviewed, "ic: [alice, bob, dan]", "ic: [mallory]", 1)
	h, err := runInline(t, reviewed, own, workflows.ModeFailover)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a failover runs only catalog runbooks")
	assert.Equal(t, 0, h.rec.count("net-a"), "nothing ran")

	_, err = runInline(t, reviewed, reviewed, workflows.ModeFailover)
	assert.NoError(t, err, "the catalog's own text")
}

// A drill of inline text (an experiment, a past version) may change steps,
// but not add approvers or targets the catalog runbook of its name lacks.
func TestAnInlineDrillCannotGrantApproversOrTargets(t *testing.T) {
	reviewed := book("60m", twoLayers)
	for name, c := range map[string]struct{ text, want string }{
		"an approver added": {strings.Replace(reviewed, "dba: [carol]", "dba: [carol, mallory]", 1),
			"spec.approvers.dba names mallory, who is not an approver of that group"},
		"an approver moved to another group": {strings.Replace(reviewed, "dba: [carol]", "dba: [carol, dan]", 1),
			"spec.approvers.dba names dan"},
		"another target": {strings.Replace(reviewed, "dr: {kubeContext: dr}", "dr: {kubeContext: production}", 1),
			"spec.targets.dr ({KubeContext:production}) is not a target"},
		"another name": {strings.Replace(reviewed, "name: test-book", "name: mallory-book", 1),
			"the catalog has no runbook named mallory-book"},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := runInline(t, reviewed, c.text, workflows.ModeDrill)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, 0, h.rec.count("net-a"), "nothing ran")
		})
	}
	changedSteps := strings.Replace(reviewed, `url: "http://a"`, `url: "http://a2"`, 1)
	require.NotEqual(t, reviewed, changedSteps)
	_, err := runInline(t, reviewed, changedSteps, workflows.ModeDrill)
	assert.NoError(t, err, "the same approvers and targets, other steps")
}
