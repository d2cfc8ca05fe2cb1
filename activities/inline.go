package activities

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// checkInline decides whether an inline runbook may run in mode. Whoever
// can start a workflow can send an inline runbook, and such a runbook names
// its own approvers and targets, so:
//   - a failover runs only catalog text: an inline runbook whose hash
//     equals a catalog runbook's (a re-run of reviewed text) is accepted,
//     any other is refused;
//   - a drill, tabletop or teardown of inline text (a re-enactment of a
//     past version, an experiment) may not grant approval rights or reach
//     targets that the catalog runbook of the same name does not: every
//     approver must be in the same group there, every target the same.
func checkInline(rb *runbooks.Runbook, src []byte, mode string, cat *runbooks.Catalog) error {
	hash := runbooks.HashOf(src)
	var same *runbooks.Entry
	if cat != nil {
		for _, name := range cat.Names() {
			e, err := cat.Get(name)
			if err != nil {
				continue
			}
			if e.Hash == hash {
				return nil // reviewed text, whatever its name
			}
			if name == rb.Metadata.Name {
				same = &e
			}
		}
	}
	if mode == "failover" {
		return refuse("InlineRefused", fmt.Sprintf("a failover runs only catalog runbooks: this inline runbook (%s, %s) is not the text of any runbook in the worker's catalog. Merge it into the catalog through review, or run it as a drill", rb.Metadata.Name, hash))
	}
	var catApprovers map[string][]string
	catTargets := map[string]runbooks.Target{}
	where := "the catalog has no runbook named " + rb.Metadata.Name
	if same != nil {
		catApprovers, catTargets = same.Runbook.Spec.Approvers, same.Runbook.Spec.Targets
		where = "catalog runbook " + same.Path
	}
	var problems []string
	for _, group := range slices.Sorted(maps.Keys(rb.Spec.Approvers)) {
		for _, person := range rb.Spec.Approvers[group] {
			if !slices.Contains(catApprovers[group], person) {
				problems = append(problems, fmt.Sprintf("spec.approvers.%s names %s, who is not an approver of that group in %s", group, person, where))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rb.Spec.Targets)) {
		if want, ok := catTargets[name]; !ok || want != rb.Spec.Targets[name] {
			problems = append(problems, fmt.Sprintf("spec.targets.%s (%+v) is not a target of %s", name, rb.Spec.Targets[name], where))
		}
	}
	if len(problems) > 0 {
		return refuse("InlineRefused", fmt.Sprintf("inline runbook %s may not grant approval rights or reach targets the catalog does not (nothing was executed):\n  %s",
			rb.Metadata.Name, strings.Join(problems, "\n  ")))
	}
	return nil
}

// errCatalogUnreadable is the retryable error of a catalog directory that
// cannot be read.
var errCatalogUnreadable = errors.New("the catalog cannot be read")
