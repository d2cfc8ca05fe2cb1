package record

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

func TestCompareFlagsStepsSlowerBeyondTheThreshold(t *testing.T) {
	at := time.Date(2026, 6, 15, 2, 0, 0, 0, time.UTC)
	ran := func(id, layer string, d time.Duration) StepRecord {
		return StepRecord{ID: id, Layer: layer, State: "succeeded", Started: &at, Duration: runbooks.Duration(d)}
	}
	then := Evidence{WorkflowID: "then", Mode: "failover", Outcome: "succeeded", Runbook: RunbookRef{Hash: "sha256:a"},
		RTOActual: runbooks.Duration(40 * time.Minute), RTOTarget: runbooks.Duration(time.Hour),
		Steps: []StepRecord{ran("restore", "storage", 10*time.Minute), ran("ready", "workloads", 2*time.Minute),
			ran("tiny", "workloads", 10*time.Millisecond), ran("shift", "edge", time.Minute)}}
	now := Evidence{WorkflowID: "now", Mode: "drill", Outcome: "succeeded", Runbook: RunbookRef{Hash: "sha256:a"},
		RTOActual: runbooks.Duration(55 * time.Minute), RTOTarget: runbooks.Duration(time.Hour),
		Steps: []StepRecord{ran("restore", "storage", 25*time.Minute), ran("ready", "workloads", 2*time.Minute+10*time.Second),
			ran("tiny", "workloads", 900*time.Millisecond), {ID: "shift", Layer: "edge", State: "skipped"},
			ran("teardown-ns", "teardown", 30*time.Second)}}
	c := Compare(then, now, 1.5, time.Second)
	assert.True(t, c.SameText)
	assert.Equal(t, []string{"restore"}, c.Slower, "tiny is 90× slower but by less than a second; ready is within 1.5×")
	assert.InDelta(t, 2.5, c.Steps[0].Ratio, 0.001)
	assert.Equal(t, "skipped", c.Steps[3].NowState)
	assert.Zero(t, c.Steps[3].Ratio, "a step that did not run now has no ratio")
	assert.Equal(t, "absent", c.Steps[4].ThenState)
	md := c.Markdown()
	assert.Contains(t, md, "| storage/restore | 10m | 25m | 2.50× | **slower** |")
	assert.Contains(t, md, "| RTO (target 1h) | 40m | 55m |")
	assert.Contains(t, md, "Slower than 1.50× (and by at least 1s): restore")

	now.Runbook.Hash = "sha256:b"
	assert.Contains(t, Compare(then, now, 1.5, time.Second).Markdown(), "DIFFERENT runbook texts")
}
