package readiness

import (
	"fmt"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// notEstablished is how evidence starts an invariant its run did not prove.
const notEstablished = "Not established by this run: "

// Invariant returns the recovery-invariant sentence (DESIGN §4) of a runbook,
// filled from its last successful drill that proved it, and any caveat (the
// runbook changed since). When no drill proved it, ok is false and missing
// says what is needed to complete it. runs are newest first; current names
// the catalog text (its Hash "" when unknown): only a drill of exactly that
// text proves the invariant.
func Invariant(name string, current record.RunbookRef, runs []record.Evidence) (sentence string, ok bool, missing []string) {
	runs, older := byText(runs, current.Hash)
	var lastDrill *record.Evidence
	for i, e := range runs {
		if e.Mode != "drill" {
			continue
		}
		if lastDrill == nil {
			lastDrill = &runs[i]
		}
		if e.Outcome == "succeeded" && e.Invariant != "" && !strings.HasPrefix(e.Invariant, notEstablished) {
			return e.Invariant, true, nil
		}
	}
	if lastDrill == nil && olderDrill(older, current.Version) != "" {
		return "", false, []string{fmt.Sprintf("%s: the runbook text changed since (now %s); drill it again: lifeboat drill %s",
			olderDrill(older, current.Version), current.Hash, name)}
	}
	if lastDrill == nil {
		return "", false, []string{fmt.Sprintf("no drill of %s has run: start one with `lifeboat drill %s`", name, name)}
	}
	missing = append(missing, fmt.Sprintf("no drill of %s proved it; the last one, %s (%s, %s), says: %s",
		name, lastDrill.WorkflowID, lastDrill.Outcome, lastDrill.EndedAt.UTC().Format("2006-01-02"),
		strings.TrimPrefix(lastDrill.Invariant, notEstablished)))
	return "", false, missing
}
