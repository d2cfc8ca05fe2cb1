package workflows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// runInline starts text inline while the catalog holds catalogText.
func runInline(t *testing.T, catalogText, text, mode string) (*harness, error) {
	h := newHarness(t)
	req := h.request(catalogText, mode, "alice")
	req.InlineRunbook = text
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	return h, h.workflowError()
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

// An inline tabletop or re-enactment may change steps, but not add
// approvers or targets the catalog runbook of its name lacks.
func TestInlineTextCannotGrantApproversOrTargets(t *testing.T) {
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
			h, err := runInline(t, reviewed, c.text, workflows.ModeTabletop)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, 0, h.rec.count("net-a"), "nothing ran")
		})
	}
	changedSteps := strings.Replace(reviewed, `url: "http://a"`, `url: "http://a2"`, 1)
	require.NotEqual(t, reviewed, changedSteps)
	h := newHarness(t)
	req := h.request(reviewed, workflows.ModeTabletop, "alice")
	req.InlineRunbook = changedSteps
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	err := h.workflowError()
	if err != nil {
		assert.NotContains(t, err.Error(), "cannot start", "the same approvers and targets, other steps: a tabletop of it starts")
	}
}

// Issue 24, scenario 2: a drill of inline text is a re-enactment or
// nothing. Without reenactmentOf it is refused; with it, the text must be
// the one that run recorded.
func TestAnInlineDrillRunsOnlyTheTextItsPastRunRecorded(t *testing.T) {
	reviewed := book("60m", twoLayers)
	then := strings.Replace(reviewed, `url: "http://a"`, `url: "http://a-then"`, 1)
	require.NotEqual(t, reviewed, then)

	h, err := runInline(t, reviewed, then, workflows.ModeDrill)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a drill of other text only re-enacts a past run")
	assert.Equal(t, 0, h.rec.count("net-a"), "nothing ran")

	for name, c := range map[string]struct {
		recorded string
		want     string
	}{
		"the recorded text runs":                 {then, ""},
		"another text than the recorded refused": {reviewed + "# edited\n", "is not the text run lifeboat-test-book-failover-abc123 recorded"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.recordedRun("lifeboat-test-book-failover-abc123", c.recorded)
			req := h.request(reviewed, workflows.ModeDrill, "alice")
			req.InlineRunbook, req.ReenactmentOf = then, "lifeboat-test-book-failover-abc123"
			h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
			require.True(t, h.env.IsWorkflowCompleted())
			if c.want == "" {
				require.NoError(t, h.workflowError())
				assert.Equal(t, 1, h.rec.count("net-a"), "the text of then ran")
				return
			}
			require.Error(t, h.workflowError())
			assert.Contains(t, h.workflowError().Error(), c.want)
			assert.Equal(t, 0, h.rec.count("net-a"), "nothing ran")
		})
	}
}

// A tabletop accepts text nobody reviewed (nothing runs): re-enacting it
// as a drill would launder that text into a run that changes things.
func TestATabletopIsNotReenactedAsADrill(t *testing.T) {
	reviewed := book("60m", twoLayers)
	unreviewed := strings.Replace(reviewed, `url: "http://a"`, `url: "http://attacker.example/exfil"`, 1)
	h := newHarness(t)
	h.res.Records = func(_ context.Context, want string) (runbooks.Resolved, record.Evidence, error) {
		hash := runbooks.HashOf([]byte(unreviewed))
		return runbooks.Resolved{Source: unreviewed, Hash: hash}, record.Evidence{WorkflowID: want, Mode: workflows.ModeTabletop, Outcome: "succeeded",
			Runbook: record.RunbookRef{Hash: hash}}, nil
	}
	req := h.request(reviewed, workflows.ModeDrill, "alice")
	req.InlineRunbook, req.ReenactmentOf = unreviewed, "lifeboat-test-book-tabletop-abc123"
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	require.True(t, h.env.IsWorkflowCompleted())
	require.Error(t, h.workflowError())
	assert.Contains(t, h.workflowError().Error(), "is a tabletop: only a failover or a drill is re-enacted")
	assert.Zero(t, h.rec.count("net-a"), "nothing ran")
}
