package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// checkInline decides whether an inline runbook may run in its mode.
// Whoever can start a workflow can send an inline runbook, and such a
// runbook names its own approvers, targets and steps, so:
//   - text equal to a catalog runbook's (a re-run of reviewed text, whatever
//     its name) is accepted in any mode;
//   - a failover runs only catalog text;
//   - a drill of other text must re-enact a past run (in.ReenactmentOf,
//     checked against that run's record by checkReenactment): an
//     experiment is merged into the catalog, or rehearsed as a tabletop;
//   - a tabletop (nothing runs) or a re-enactment may not grant approval
//     rights or reach targets that the catalog runbook of the same name does
//     not: every approver must be in the same group there, every target the
//     same.
func checkInline(rb *runbooks.Runbook, src []byte, in runbooks.ResolveInput, cat *runbooks.Catalog) error {
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
	if in.Mode == "failover" {
		return refuse("InlineRefused", fmt.Sprintf("a failover runs only catalog runbooks: this inline runbook (%s, %s) is not the text of any runbook in the worker's catalog. Merge it into the catalog through review, or run it as a drill", rb.Metadata.Name, hash))
	}
	if in.Mode != "tabletop" && in.ReenactmentOf == "" {
		return refuse("InlineRefused", fmt.Sprintf("inline runbook %s (%s) is not the text of any runbook in the worker's catalog: a %s of other text only re-enacts a past run (lifeboat reenact RUN names it in \"reenactmentOf\"). Merge the text into the catalog through review, or rehearse it as a tabletop. Nothing was executed", rb.Metadata.Name, hash, in.Mode))
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

// checkReenactment checks an inline text against the run it re-enacts
// (nothing to check when of is empty): the text must be the one that run
// recorded — the runbook it resolved, or, for a past plan run, the plan's
// text (member == "") or the text its member named member ran, as the
// plan's evidence names it.
func (r *Resolver) checkReenactment(ctx context.Context, member string, src []byte, of string) error {
	if of == "" {
		return nil
	}
	if r.Records == nil {
		return refuse("ReenactmentRefused", "this worker cannot read past runs, so it re-enacts none")
	}
	res, ev, err := r.Records(ctx, of)
	if err != nil {
		return refuseUnlessUnanswered("ReenactmentRefused", fmt.Sprintf("run %s cannot be re-enacted: %v", of, err), err)
	}
	// Only a run that executed reviewed text is re-enacted: a failover runs
	// catalog text, a drill catalog text or a re-enactment of such a run.
	// A tabletop accepts any text (nothing runs), so re-enacting one would
	// turn unreviewed text into a drill.
	if base, _, _ := strings.Cut(ev.Mode, "-"); base != "failover" && base != "drill" {
		return refuse("ReenactmentRefused", fmt.Sprintf("run %s is a %s: only a failover or a drill is re-enacted (their text was reviewed); rehearse this text as a tabletop again, or merge it into the catalog", of, cmp.Or(ev.Mode, "run of unknown mode")))
	}
	want, what := res.Hash, "run "+of
	if ev.Plan != nil && member != "" {
		want, what = "", fmt.Sprintf("member %s of plan run %s", member, of)
		for _, m := range ev.Plan.Members {
			if m.Runbook == member {
				want = m.Hash
			}
		}
	}
	if got := runbooks.HashOf(src); want == "" || got != want {
		return refuse("ReenactmentRefused", fmt.Sprintf("the inline text (%s) is not the text %s recorded (%s): a re-enactment runs exactly what ran then (lifeboat reenact %s sends it). Nothing was executed", got, what, cmp.Or(want, "none"), of))
	}
	return nil
}

// errCatalogUnreadable is the retryable error of a catalog directory that
// cannot be read.
var errCatalogUnreadable = errors.New("the catalog cannot be read")
