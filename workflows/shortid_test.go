package workflows

import (
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
)

func TestShortID(t *testing.T) {
	for id, want := range map[string]string{
		"lifeboat-case-api-drill-a1b2c3":                         "a1b2c3",
		"lifeboat-case-api-drill-scheduled-2026-11-21T03:00:00Z": "030000",
		"my-run":      "my-run",
		"q3-tabletop": "q3-tabletop",
		"Q4 Tabletop": "q4-tabletop",
	} {
		if got := shortID(id); got != want {
			t.Errorf("shortID(%q) = %q, want %q", id, got, want)
		}
	}
}

// Evidence ids are unique per run: ids typed in the UI that end alike, and a
// workflow id reused for a second run, each get their own.
func TestEvidenceIDsAreUniquePerRun(t *testing.T) {
	day := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	seen := map[string]string{}
	for _, run := range [][2]string{
		{"q3-tabletop", "0195a1b2-0000-7000-8000-000000000001"},
		{"q4-tabletop", "0195a1b2-0000-7000-8000-000000000002"},
		{"q4-tabletop", "0296c3d4-0000-7000-8000-000000000003"},
	} {
		id := evidenceID(day, "warm-standby-failover", run[0], run[1])
		if prev, dup := seen[id]; dup {
			t.Errorf("%v and %s share the evidence id %s", run, prev, id)
		}
		seen[id] = run[0] + "/" + run[1]
	}
	if got := evidenceID(day, "book", "lifeboat-book-drill-a1b2c3", "0195a1b2-0000"); got != "DR-2026-11-21-book-a1b2c3-a1b20000" {
		t.Errorf("evidenceID = %s", got)
	}
}

// An action cancelled by an abort says what it left behind.
func TestCauseMessageOfACancellationCarriesItsReason(t *testing.T) {
	err := temporal.NewCanceledError("velero restore r1 left InProgress")
	if got := causeMessage(err); got != "cancelled: velero restore r1 left InProgress" {
		t.Errorf("causeMessage = %q", got)
	}
	if got := causeMessage(temporal.NewCanceledError()); got != "cancelled" {
		t.Errorf("causeMessage = %q", got)
	}
}
