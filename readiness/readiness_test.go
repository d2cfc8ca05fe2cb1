package readiness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const book = `apiVersion: lifeboat/v1
kind: Runbook
metadata: {name: case-api, version: 3, owner: platform-team, description: Case Intake API}
spec:
  scope: region
  objectives: {rto: 60m, rpo: 15m}
  approvers:
    ic: [alice, bob]
  targets:
    dr: {kubeContext: dr}
  layers:
    storage:
      - id: restore
        action: velero.restore
        with: {target: dr, schedule: hourly, namespaces: [case]}
    edge:
      - id: shift
        action: cloudflare.dnsSwitch
        approval: {from: [ic]}
        with: {zone: example.com, record: case.example.com, type: CNAME, content: dr.example.com}
  drill:
    every: 30d
`

func parse(t *testing.T) *runbooks.Runbook {
	rb, err := runbooks.Parse([]byte(book), "case-api.yaml")
	require.NoError(t, err)
	return rb
}

func run(mode, outcome, level string, age time.Duration) record.Evidence {
	rpo := runbooks.Duration(8 * time.Minute)
	return record.Evidence{WorkflowID: "lifeboat-case-api-" + mode, Mode: mode, Outcome: outcome, Level: level,
		EndedAt: now.Add(-age), RPOActual: &rpo, Runbook: record.RunbookRef{Hash: "sha256:a"},
		Invariant: "Given a total loss of the region, we can restore Case Intake API …"}
}

func scores(s System) map[string]int {
	out := map[string]int{}
	for _, r := range s.Rows {
		out[r.Area] = r.Score
	}
	return out
}

func TestANeverDrilledCriticalRunbookIsCalledOut(t *testing.T) {
	s := Score(Input{Name: "case-api", Runbook: parse(t), Backup: &Backup{Schedule: "hourly", Name: "hourly-1", Age: 40 * time.Minute}}, now, DefaultCriticalRTO)
	assert.True(t, s.Critical)
	assert.Equal(t, map[string]int{AreaRunbook: 2, AreaDrill: 0, AreaRestore: 0, AreaEdge: 2, AreaBackup: 1, AreaApproval: 2, AreaPrecheck: 0}, scores(s))
	text := Text([]System{s})
	assert.Contains(t, text, "CRITICAL SYSTEMS BELOW 2")
	assert.Contains(t, text, "case-api: Last drill 0/3 — never drilled: lifeboat drill case-api")
	assert.Contains(t, text, "latest backup hourly-1 of hourly is 40m old (RPO 15m): older than the RPO")
}

func TestDrilledAndFailedOverScoresThree(t *testing.T) {
	drill := run("drill", "succeeded", "L4", 3*24*time.Hour)
	fo := run("failover", "succeeded", "L5", 10*24*time.Hour)
	fo.Steps = []record.StepRecord{{ID: "shift", Approvals: []record.ApprovalRecord{{By: "bob", Decision: "approved", At: fo.EndedAt}}}}
	drill.Prechecks = []record.PrecheckRecord{{ID: "restore#1", CheckResult: runbooks.Pass("backup fresh", "")}}
	s := Score(Input{Name: "case-api", Runbook: parse(t), Runs: []record.Evidence{drill, fo},
		Backup: &Backup{Schedule: "hourly", Name: "hourly-2", Age: 8 * time.Minute}}, now, DefaultCriticalRTO)
	for area, score := range scores(s) {
		assert.Equal(t, 3, score, area)
	}
	assert.Contains(t, Text([]System{s}), "No critical system scores below 2")
	assert.Contains(t, s.Rows[1].Fact, "succeeded 3 days ago at level L4 (every 30d)")
}

func TestOverdueFailedAndTabletopDrills(t *testing.T) {
	rb := parse(t)
	overdue := Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{run("drill", "succeeded", "L2", 45*24*time.Hour)}}, now, DefaultCriticalRTO)
	assert.Equal(t, 2, scores(overdue)[AreaDrill])
	assert.Equal(t, 2, scores(overdue)[AreaRestore])
	assert.Equal(t, 0, scores(overdue)[AreaBackup], "no backup fact: the runbook's schedule was not checked")
	failed := Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{run("drill", "failed", "", 24*time.Hour)}}, now, DefaultCriticalRTO)
	assert.Equal(t, 1, scores(failed)[AreaDrill])
	paper := Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{run("tabletop", "succeeded", "", time.Hour)}}, now, DefaultCriticalRTO)
	assert.Equal(t, 1, scores(paper)[AreaDrill])
	assert.Equal(t, 2, scores(paper)[AreaRunbook], "a tabletop does not execute the runbook")
	unchecked := Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{run("drill", "succeeded", "L4", time.Hour)},
		Backup: &Backup{Schedule: "hourly", Err: "no kube access"}}, now, DefaultCriticalRTO)
	assert.Equal(t, 2, scores(unchecked)[AreaBackup])
	assert.Contains(t, unchecked.Rows[4].Fact, "not checked now (no kube access)")
}

func TestInvalidAndUnparseableRunbooks(t *testing.T) {
	s := Score(Input{Name: "x", Runbook: parse(t), Errors: []string{"spec.layers.storage[0].with.schedule: …"}}, now, time.Minute)
	assert.Equal(t, 1, scores(s)[AreaRunbook])
	assert.False(t, s.Critical, "RTO 60m is above a 1m critical bound")
	u := Score(Input{Name: "broken.yaml", Errors: []string{"line 3: bad"}}, now, DefaultCriticalRTO)
	assert.Equal(t, []Row{{AreaRunbook, 1, "draft: the file does not parse: line 3: bad"}}, u.Rows)
}

func TestInvariant(t *testing.T) {
	_, ok, missing := Invariant("case-api", text("sha256:a"), nil)
	assert.False(t, ok)
	assert.Equal(t, []string{"no drill of case-api has run: start one with `lifeboat drill case-api`"}, missing)

	bad := run("drill", "failed", "", time.Hour)
	bad.Invariant = "Not established by this run: this run did not succeed (failed)."
	_, ok, missing = Invariant("case-api", text("sha256:a"), []record.Evidence{bad})
	assert.False(t, ok)
	assert.Contains(t, missing[0], "says: this run did not succeed (failed).")

	good := run("drill", "succeeded", "L4", 2*time.Hour)
	sentence, ok, missing := Invariant("case-api", text("sha256:a"), []record.Evidence{bad, run("failover", "succeeded", "L5", time.Hour), good})
	assert.True(t, ok)
	assert.Equal(t, good.Invariant, sentence)
	assert.Empty(t, missing)
}

// A drill counts only for the runbook text it ran: an older version
// drilled shows as "v2 drilled on DATE; v3 never".
func TestOnlyADrillOfTheCurrentTextCounts(t *testing.T) {
	old := run("drill", "succeeded", "L4", 3*24*time.Hour)
	old.Runbook.Version, old.Runbook.Hash = 2, "sha256:old"
	in := Input{Name: "case-api", Runbook: parse(t), Hash: "sha256:current", Runs: []record.Evidence{old}}
	sys := Score(in, now, DefaultCriticalRTO)
	got := scores(sys)
	assert.Equal(t, 1, got[AreaDrill], "%+v", sys.Rows)
	for _, r := range sys.Rows {
		if r.Area == AreaDrill {
			assert.Contains(t, r.Fact, "v2 drilled on 2026-11-18; v3 never")
		}
	}
	assert.Equal(t, 2, got[AreaRunbook], "an older text's run does not make this one 'executed'")
	assert.Equal(t, 0, got[AreaRestore], "the current text's restore was never tested")

	sentence, ok, missing := Invariant("case-api", text("sha256:current"), []record.Evidence{old})
	assert.False(t, ok, "the invariant is not proven for today's text")
	assert.Empty(t, sentence)
	require.NotEmpty(t, missing)
	assert.Contains(t, missing[0], "v2 drilled on 2026-11-18; v3 never")

	current := run("drill", "succeeded", "L4", 24*time.Hour)
	current.Runbook.Version, current.Runbook.Hash = 3, "sha256:current"
	in.Runs = []record.Evidence{current, old}
	assert.Equal(t, 3, scores(Score(in, now, DefaultCriticalRTO))[AreaDrill])
	_, ok, _ = Invariant("case-api", text("sha256:current"), in.Runs)
	assert.True(t, ok)
}

// text is the catalog's current text of case-api (version 3).
func text(hash string) record.RunbookRef {
	return record.RunbookRef{Name: "case-api", Version: 3, Hash: hash}
}

// The newest run's pre-flight checks are a row: a failed one names the
// check and its fix; passed ones go stale after a week.
func TestTheLastPreflightChecksAreARow(t *testing.T) {
	rb := parse(t)
	checked := run("drill-precheck", "failed", "", time.Hour)
	checked.Prechecks = []record.PrecheckRecord{
		{ID: "net#1", CheckResult: runbooks.Pass("terraform binary ready", "")},
		{ID: "restore#2", CheckResult: runbooks.Fail("backup nightly exists", "Velero has no backup nightly", "name an existing backup")},
		{ID: "health#1", CheckResult: runbooks.CheckResult{Name: "URL resolves", Advisory: true}},
	}
	s := Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{checked}}, now, DefaultCriticalRTO)
	row := s.Rows[len(s.Rows)-1]
	assert.Equal(t, Row{AreaPrecheck, 1, "1 of 3 failed in drill-precheck " + checked.WorkflowID + " (today): first restore#2 backup nightly exists — Velero has no backup nightly; fix: name an existing backup"}, row)
	checked.Prechecks = checked.Prechecks[:1]
	checked.EndedAt = now.Add(-10 * 24 * time.Hour)
	s = Score(Input{Name: "x", Runbook: rb, Runs: []record.Evidence{checked}}, now, DefaultCriticalRTO)
	assert.Equal(t, 2, scores(s)[AreaPrecheck], "passed, but 10 days ago")
}
