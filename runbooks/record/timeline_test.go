package record_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// sample is a run of three steps: an acknowledged manual task, a restore,
// and a gated switch that waited 4 minutes for its approval.
func sample(mode string, rto time.Duration) record.Evidence {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	at := func(m int) *time.Time { t := t0.Add(time.Duration(m) * time.Minute); return &t }
	return record.Evidence{
		ID: "ev-1", WorkflowID: "lifeboat-x", Runbook: record.RunbookRef{Name: "case-api", Version: 3}, Mode: mode, Outcome: "succeeded",
		DeclaredAt: t0, StartedAt: t0, EndedAt: *at(40), RTOTarget: runbooks.Duration(rto), RTOActual: runbooks.Duration(40 * time.Minute),
		RTOBreached: 40*time.Minute > rto,
		Steps: []record.StepRecord{
			{ID: "call-dba", Layer: "network", Action: "manual.task", State: "succeeded", Started: at(1), Ended: at(5), Summary: "acknowledged",
				Approvals: []record.ApprovalRecord{{By: "dan", Decision: "acknowledged", At: *at(5)}}},
			{ID: "restore", Layer: "storage", Action: "velero.restore", State: "succeeded", Started: at(5), Ended: at(30), Summary: "restored <script>alert(1)</script>"},
			{ID: "shift", Layer: "edge", Action: "cloudflare.dnsSwitch", State: "succeeded", Started: at(34), Ended: at(40), ApprovalWait: runbooks.Duration(4 * time.Minute),
				Approvals: []record.ApprovalRecord{{By: "alice", Decision: "approved", At: *at(34)}}},
		},
		Events: []record.EventRecord{{At: *at(5), Kind: "ack", Step: "call-dba", By: "dan", Text: "dan acknowledged call-dba"},
			{At: *at(20), Kind: "note", By: "bob", Text: "restore at 60%"}},
		Prechecks: []record.PrecheckRecord{{ID: "restore", CheckResult: runbooks.CheckResult{Name: "backup fresh", OK: true, Message: "newest backup 12m old"}},
			{ID: "shift", CheckResult: runbooks.CheckResult{Name: "token can edit the zone", OK: true}}},
	}
}

// wellFormed parses the SVG as XML and counts its elements by name.
func wellFormed(t *testing.T, svg string) map[string]int {
	t.Helper()
	count := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return count
		}
		require.NoError(t, err, "the timeline is well-formed XML")
		if el, ok := tok.(xml.StartElement); ok {
			count[el.Name.Local]++
		}
	}
}

func TestTheTimelineDrawsEachStepAgainstTheRTO(t *testing.T) {
	ok := sample("failover", time.Hour).TimelineSVG()
	n := wellFormed(t, ok)
	assert.Equal(t, 1, n["svg"])
	assert.Equal(t, 1+1+3+1, n["rect"], "the hatching's pattern, the background, a bar per step and the approval wait")
	assert.Contains(t, ok, `fill="url(#wait)"`, "the wait for approval is hatched")
	assert.Contains(t, ok, "shift waited 4m for approval")
	assert.Equal(t, 2, n["path"], "a diamond per decision")
	assert.Contains(t, ok, "RTO deadline 04:00:00")
	assert.NotContains(t, ok, "BREACHED")
	breached := sample("failover", 30*time.Minute).TimelineSVG()
	wellFormed(t, breached)
	assert.Contains(t, breached, "BREACHED")
	assert.Contains(t, breached, `stroke="#c0392b" stroke-width="2" stroke-dasharray`, "a breached deadline is a red line")
}

func TestTheMarkdownSaysHowToVerifyAndShowsEachDecisionOnce(t *testing.T) {
	e := sample("failover", time.Hour)
	md := e.MarkdownBeside("lifeboat-x.run-1")
	assert.Contains(t, md, "![Timeline of the run: steps by layer against the RTO deadline](lifeboat-x.run-1.svg)")
	assert.Contains(t, md, "`lifeboat-x.run-1.json.sig`")
	assert.Contains(t, md, "lifeboat evidence verify DIR")
	assert.Contains(t, md, "ssh-keygen -Y verify -n lifeboat-evidence -I lifeboat-worker")
	assert.Contains(t, md, "2 of 2 passed.\n- restore backup fresh: passed — newest backup 12m old\n- shift token can edit the zone: passed\n", "every pre-flight check is listed")
	assert.Equal(t, 1, strings.Count(md, "acknowledged"), "the acknowledgement is shown once, in the timeline:\n%s", md)
	assert.Contains(t, md, "restore at 60%", "other events stay")
	assert.NotContains(t, e.Markdown(), ".svg)", "a terminal's Markdown links no picture")

	tt := sample("tabletop", time.Hour)
	tt.Steps[0].Summary = "acknowledged (tabletop: nothing executed)"
	tabletop := tt.Markdown()
	assert.Equal(t, 1, strings.Count(tabletop, "acknowledged by dan"), "a tabletop's acknowledgement is shown once")
	assert.NotContains(t, tabletop, "acknowledged (tabletop: nothing executed)", "the state says it; the summary does not repeat it")
	assert.Contains(t, tabletop, "| velero.restore | acknowledged (nothing executed) |")
	assert.NotContains(t, tabletop, "| succeeded |")
}

func TestTheHTMLPageShowsThePictureAndTheOutcome(t *testing.T) {
	page, err := sample("drill", 30*time.Minute).HTML()
	require.NoError(t, err)
	assert.Contains(t, page, `<p class="outcome bad" id="outcome">case-api drill: succeeded in 40m (RTO 30m, BREACHED)</p>`)
	assert.Contains(t, page, `<figure id="timeline"><svg`)
	assert.Contains(t, page, "<table>", "the Markdown's tables become tables")
	assert.NotContains(t, page, "<script>alert(1)</script>", "a record's texts never become markup")
}
