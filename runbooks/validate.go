package runbooks

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	stepID   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$`)
)

// MaxSteps is the most steps (main layers and teardown) a runbook may hold.
// At 1,000 steps a run stays well inside Temporal's default limits: all of
// one layer pending at once is half the 2,000 pending activities; about four
// history events a step keep a run far from the 50,000-event limit; the
// evidence of 1,000 steps is a few hundred KB against the 2 MB payload limit.
const MaxSteps = 1000

// Scopes a runbook may declare.
var Scopes = []string{"pod", "namespace", "application", "cluster", "region", "provider", "journey"}

// Strategies a runbook may declare.
var Strategies = []string{"backup-restore", "pilot-light", "warm-standby", "active-active"}

// Validate checks a runbook against the format and the action schema and
// returns every problem it finds, each with its path and (when loaded from
// YAML) its line. Warnings are included, marked as such.
func Validate(rb *Runbook, schema Schema) Problems {
	v := &validator{rb: rb, schema: schema}
	v.header()
	v.objectives()
	v.approvers()
	v.steps()
	v.drill()
	v.failback()
	v.criticalPath()
	v.out.sortByLine()
	return v.out
}

type validator struct {
	rb     *Runbook
	schema Schema
	out    Problems
}

func (v *validator) add(path, format string, args ...any) {
	v.out = append(v.out, Problem{Line: v.rb.LineOf(path), Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(path, format string, args ...any) {
	v.out = append(v.out, Problem{Line: v.rb.LineOf(path), Path: path, Message: fmt.Sprintf(format, args...), Warning: true})
}

func (v *validator) header() {
	rb := v.rb
	if rb.APIVersion != APIVersion {
		v.add("apiVersion", "must be %q, got %q", APIVersion, rb.APIVersion)
	}
	if rb.Kind != Kind {
		v.add("kind", "must be %q, got %q", Kind, rb.Kind)
	}
	v.identity("runbook", "case-management-region-failover", rb.Metadata, rb.Spec.Scope)
	if rb.Spec.Strategy != "" && !slices.Contains(Strategies, rb.Spec.Strategy) {
		v.add("spec.strategy", "%q is not a strategy: use one of %s", rb.Spec.Strategy, strings.Join(Strategies, ", "))
	}
	for _, name := range sortedKeys(rb.Spec.Targets) {
		if !dnsLabel.MatchString(name) {
			v.add("spec.targets."+name, "target name %q is not a DNS label", name)
		}
	}
}

// identity checks a document's name, version and scope (what is a runbook
// or a plan, with an example name).
func (v *validator) identity(what, example string, m Metadata, scope string) {
	switch {
	case m.Name == "":
		v.add("metadata.name", "missing: give the %s a DNS-label name such as %s", what, example)
	case len(m.Name) > 63 || !dnsLabel.MatchString(m.Name):
		v.add("metadata.name", "%q is not a DNS label: use lower-case letters, digits and '-', at most 63 characters", m.Name)
	}
	if m.Version < 1 {
		v.add("metadata.version", "missing or below 1: number the %s's versions from 1 and raise it on every change", what)
	}
	if !slices.Contains(Scopes, scope) {
		v.add("spec.scope", "%q is not a scope: use one of %s", scope, strings.Join(Scopes, ", "))
	}
}

func (v *validator) objectives() {
	o := v.rb.Spec.Objectives
	if o.RTO <= 0 {
		v.add("spec.objectives.rto", "missing or not positive: set the recovery time objective, e.g. rto: 60m")
	}
	if o.RPO < 0 || o.MTD < 0 {
		v.add("spec.objectives", "rpo and mtd cannot be negative")
	}
	if o.MTD > 0 && o.RTO >= o.MTD {
		v.add("spec.objectives", "rto (%s) must be below mtd (%s): a plan that recovers after the maximum tolerable downtime is not a plan", o.RTO, o.MTD)
	}
}

func (v *validator) approvers() {
	for _, g := range sortedKeys(v.rb.Spec.Approvers) {
		p := "spec.approvers." + g
		people := v.rb.Spec.Approvers[g]
		if len(people) == 0 {
			v.add(p, "approver group %q has nobody in it", g)
		}
		seen := map[string]bool{}
		for i, who := range people {
			if strings.TrimSpace(who) == "" {
				v.add(pathf("%s[%d]", p, i), "empty approver name")
			} else if seen[who] {
				v.add(pathf("%s[%d]", p, i), "%q is listed twice", who)
			}
			seen[who] = true
		}
	}
}

func (v *validator) steps() {
	rb := v.rb
	all := rb.AllSteps()
	if len(all) == 0 {
		v.add("spec.layers", "no steps: a runbook needs at least one step in network, identity, secrets, storage, workloads or edge")
	}
	if n := len(all) + len(rb.TeardownSteps()); n > MaxSteps {
		v.add("spec.layers", "%d steps: a runbook may hold at most %d (with margin below Temporal's limits: 2,000 pending activities, 50,000 history events, 2 MB per payload); split it into runbooks composed by a recovery plan", n, MaxSteps)
	}
	layerIndex := map[string]int{}
	for i, l := range LayerOrder {
		layerIndex[l.Name] = i
	}
	where := map[string]LayeredStep{} // id → first definition
	for _, s := range append(all, rb.TeardownSteps()...) {
		if s.Step.ID == "" {
			continue
		}
		if first, dup := where[s.Step.ID]; dup {
			v.add(s.Path()+".id", "duplicate step id %q (first defined at %s): step ids are unique across the runbook", s.Step.ID, first.Path())
			continue
		}
		where[s.Step.ID] = s
	}
	// Several steps may be rpoSource (a backup restored, a replica
	// promoted): the run's RPO is the worst of them.
	for _, s := range append(all, rb.TeardownSteps()...) {
		v.step(s)
		v.refs(s, where)
		for i, n := range s.Step.Needs {
			p := pathf("%s.needs[%d]", s.Path(), i)
			dep, ok := where[n]
			switch {
			case !ok:
				v.add(p, "unknown step %q%s", n, suggest(n, keysOf(where)))
			case n == s.Step.ID:
				v.add(p, "step %q needs itself", n)
			case s.Layer == TeardownLayer && dep.Layer != TeardownLayer:
				v.add(p, "teardown steps may only need other teardown steps; %q is in layer %s", n, dep.Layer)
			case s.Layer != TeardownLayer && dep.Layer == TeardownLayer:
				v.add(p, "%q is a teardown step, which runs after every layer", n)
			case s.Layer != TeardownLayer && layerIndex[dep.Layer] > layerIndex[s.Layer]:
				v.add(p, "%q is in the later layer %s: needs may only point to the same or an earlier layer", n, dep.Layer)
			}
		}
	}
	for _, l := range rb.Spec.Layers.Ordered() {
		v.cycles(l.Name, l.Steps, func(i int) string { return pathf("spec.layers.%s[%d].needs", l.Name, i) })
	}
	if d := rb.Spec.Drill; d != nil {
		v.cycles(TeardownLayer, d.Teardown, func(i int) string { return pathf("spec.drill.teardown[%d].needs", i) })
	}
}

func (v *validator) step(ls LayeredStep) {
	s, p := ls.Step, ls.Path()
	if s.ID == "" {
		v.add(p+".id", "missing: every step needs an id")
	} else if len(s.ID) > 63 || !stepID.MatchString(s.ID) {
		v.add(p+".id", "%q is not a valid step id: use lower-case letters, digits, '-', '_' or '.'", s.ID)
	}
	v.action(p, s)
	if s.Timeout < 0 || s.Expect < 0 {
		v.add(p, "timeout and expect must be positive")
	}
	if s.Approval != nil && s.Approval.Timeout < 0 {
		v.add(p+".approval.timeout", "must be positive")
	}
	if s.Retry != nil && s.Retry.Backoff < 0 {
		v.add(p+".retry.backoff", "must be positive")
	}
	if r := s.Retry; r != nil {
		if r.Attempts < 1 || r.Attempts > 100 {
			v.add(p+".retry.attempts", "must be between 1 and 100, got %d", r.Attempts)
		}
	}
	switch s.OnFailure {
	case "", OnFailurePause, OnFailureAbort, OnFailureContinue:
	default:
		v.add(p+".onFailure", "%q is not a failure policy: use pause, abort or continue", s.OnFailure)
	}
	if a := s.Approval; a != nil {
		v.approval(p+".approval", *a)
	}
	if s.RPOSource {
		if spec, ok := v.schema.Action(s.Action); ok && !spec.RecoveryPoint {
			v.add(p+".rpoSource", "action %s does not report a recovery point; mark the restore step (e.g. velero.restore) instead", s.Action)
		}
	}
}

func (v *validator) action(p string, s Step) {
	if s.Action == "" {
		v.add(p+".action", "missing: name an action from the catalogue (lifeboat actions lists them)")
		return
	}
	spec, ok := v.schema.Action(s.Action)
	if !ok {
		v.add(p+".action", "unknown action %q%s", s.Action, suggest(s.Action, v.schema.ActionNames()))
		return
	}
	for _, msg := range spec.CheckArgs(s.With) {
		arg, rest, _ := strings.Cut(msg, ": ")
		v.add(p+".with."+arg, "%s", rest)
	}
	if t, ok := s.With["target"].(string); ok {
		if _, declared := v.rb.Spec.Targets[t]; !declared {
			v.add(p+".with.target", "target %q is not declared in spec.targets%s", t, suggest(t, sortedKeys(v.rb.Spec.Targets)))
		}
	}
}

func (v *validator) approval(p string, a Approval) {
	if len(a.From) == 0 {
		v.add(p+".from", "missing: name the approver groups that may approve")
	}
	people := map[string]bool{}
	for i, g := range a.From {
		members, ok := v.rb.Spec.Approvers[g]
		if !ok {
			v.add(pathf("%s.from[%d]", p, i), "unknown approver group %q%s", g, suggest(g, sortedKeys(v.rb.Spec.Approvers)))
			continue
		}
		for _, m := range members {
			people[m] = true
		}
	}
	if a.Min < 0 {
		v.add(p+".min", "must be at least 1")
	} else if len(people) > 0 && a.Needed() > len(people) {
		v.add(p+".min", "needs %d distinct approvers but the groups hold only %d people", a.Needed(), len(people))
	}
	switch a.OnTimeout {
	case "", OnTimeoutAbort, OnTimeoutProceed, OnTimeoutEscalate:
	default:
		v.add(p+".onTimeout", "%q is not a timeout policy: use abort, proceed or escalate", a.OnTimeout)
	}
	if a.OnTimeout != "" && a.Timeout <= 0 {
		v.add(p+".timeout", "onTimeout is set but timeout is not: say how long to wait, e.g. timeout: 15m")
	}
}

// cycles reports needs-cycles among the steps of one layer.
func (v *validator) cycles(layer string, steps []Step, path func(int) string) {
	index := map[string]int{}
	for i, s := range steps {
		index[s.ID] = i
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(steps))
	var visit func(i int, chain []string) bool
	visit = func(i int, chain []string) bool {
		state[i] = visiting
		chain = append(chain, steps[i].ID)
		for _, n := range steps[i].Needs {
			j, ok := index[n]
			if !ok || n == steps[i].ID {
				continue
			}
			if state[j] == visiting {
				start := 0
				for k, id := range chain {
					if id == n {
						start = k
					}
				}
				v.add(path(i), "cycle in layer %s: %s → %s", layer, strings.Join(chain[start:], " → "), n)
				return true
			}
			if state[j] == unseen && visit(j, chain) {
				return true
			}
		}
		state[i] = done
		return false
	}
	for i := range steps {
		if state[i] == unseen {
			visit(i, nil)
		}
	}
}

func (v *validator) drill() {
	d := v.rb.Spec.Drill
	if d == nil {
		return
	}
	ids := map[string]bool{}
	for _, s := range v.rb.AllSteps() {
		ids[s.Step.ID] = true
	}
	for i, s := range d.Skip {
		if !ids[s] {
			v.add(pathf("spec.drill.skip[%d]", i), "unknown step %q%s", s, suggest(s, keysOf(ids)))
		}
	}
	for _, from := range sortedKeys(d.NamespaceMappings) {
		to := d.NamespaceMappings[from]
		p := "spec.drill.namespaceMappings." + from
		if !dnsLabel.MatchString(from) || !dnsLabel.MatchString(to) {
			v.add(p, "namespace names must be DNS labels (%q → %q)", from, to)
		}
		if from == to {
			v.add(p, "maps %q onto itself: a drill must restore into a different namespace", from)
		}
	}
	if d.Every < 0 {
		v.add("spec.drill.every", "must be positive")
	}
	v.drillScope()
}

// criticalPath warns when the longest chain of step timeouts exceeds the RTO.
func (v *validator) criticalPath() {
	rto := v.rb.Spec.Objectives.RTO.D()
	if rto <= 0 || len(v.out.Errors()) > 0 {
		return
	}
	total, path := criticalChain(v.rb, func(s Step) time.Duration { return s.EffectiveTimeout() })
	if total > rto {
		v.warn("spec.objectives.rto", "the critical path of step timeouts adds up to %s, longer than the RTO %s (%s): a run that uses its timeouts breaches the RTO",
			Duration(total), v.rb.Spec.Objectives.RTO, strings.Join(path, " → "))
	}
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

// suggest returns ` (did you mean "x"?)` for the closest candidate, if close enough.
func suggest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(2, len(got)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(candidates) > 0 && len(candidates) <= 12 {
		c := append([]string(nil), candidates...)
		sort.Strings(c)
		return fmt.Sprintf(" (known: %s)", strings.Join(c, ", "))
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// refs checks the ${{ steps.ID.outputs.NAME }} references in a step's
// arguments (and its spec.drill.with overrides): the step exists, is needed
// by this one (directly or through others, so it has ended before this one
// starts), its action declares the output, and the output is not secret.
func (v *validator) refs(ls LayeredStep, where map[string]LayeredStep) {
	check := func(path string, args map[string]any) {
		refs, malformed := RefsIn(args)
		for _, m := range malformed {
			v.add(path, "%q opens a reference with ${{ but is not ${{ steps.ID.outputs.NAME }}", m)
		}
		if len(refs) == 0 {
			return
		}
		needed := v.transitiveNeeds(ls.Step, where)
		for _, r := range refs {
			dep, ok := where[r.Step]
			switch {
			case !ok:
				v.add(path, "%s: unknown step %q%s", r.Text, r.Step, suggest(r.Step, keysOf(where)))
				continue
			case !needed[r.Step]:
				v.add(path, "%s: step %s does not need %s, so its output may not exist yet: add %s to needs (directly or through a step it needs)",
					r.Text, ls.Step.ID, r.Step, r.Step)
				continue
			}
			spec, ok := v.schema.Action(dep.Step.Action)
			if !ok {
				continue // the unknown action is reported on its own step
			}
			out, ok := spec.Output(r.Output)
			switch {
			case !ok:
				v.add(path, "%s: action %s of step %s has no output %q%s", r.Text, dep.Step.Action, r.Step, r.Output, suggest(r.Output, spec.OutputNames()))
			case out.Secret:
				v.add(path, "%s: output %q of %s is secret and cannot be used in arguments: its value would be written to the run's history", r.Text, r.Output, dep.Step.Action)
			}
		}
	}
	check(ls.Path()+".with", ls.Step.With)
	if d := v.rb.Spec.Drill; d != nil && ls.Layer != TeardownLayer && ls.Layer != MembersLayer {
		if over := d.With[ls.Step.ID]; len(over) > 0 {
			check("spec.drill.with."+ls.Step.ID, over)
		}
	}
}

// transitiveNeeds is every step s needs, directly or through other steps.
func (v *validator) transitiveNeeds(s Step, where map[string]LayeredStep) map[string]bool {
	seen := map[string]bool{}
	stack := append([]string(nil), s.Needs...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		if dep, ok := where[id]; ok {
			stack = append(stack, dep.Step.Needs...)
		}
	}
	return seen
}

// failback checks spec.failback as the runbook a failback runs (its steps,
// needs, approvals and arguments), reported under spec.failback, and each
// ${{ failover.steps.ID.outputs.NAME }}: a step of the main layers whose
// action declares the output.
func (v *validator) failback() {
	f := v.rb.Spec.Failback
	if f == nil {
		return
	}
	lines := map[string]int{}
	for p, l := range v.rb.lines {
		if rest, ok := strings.CutPrefix(p, "spec.failback."); ok {
			lines["spec.layers."+rest] = l
		}
	}
	sub := &validator{rb: &Runbook{APIVersion: APIVersion, Kind: Kind, Metadata: v.rb.Metadata, lines: lines,
		Spec: Spec{Scope: v.rb.Spec.Scope, Objectives: v.rb.Spec.Objectives, Approvers: v.rb.Spec.Approvers, Targets: v.rb.Spec.Targets, Layers: *f}},
		schema: v.schema}
	sub.steps()
	for _, p := range sub.out {
		p.Path = strings.Replace(p.Path, "spec.layers", "spec.failback", 1)
		p.Message = strings.ReplaceAll(p.Message, "a runbook needs at least one step", "a failback needs at least one step")
		v.out = append(v.out, p)
	}
	main := map[string]Step{}
	for _, ls := range v.rb.AllSteps() {
		main[ls.Step.ID] = ls.Step
	}
	for _, ls := range sub.rb.AllSteps() {
		path := strings.Replace(ls.Path(), "spec.layers", "spec.failback", 1) + ".with"
		walkStrings(ls.Step.With, func(s string) {
			for _, m := range failoverRef.FindAllStringSubmatch(s, -1) {
				dep, ok := main[m[1]]
				if !ok {
					v.out = append(v.out, Problem{Line: v.rb.LineOf(path), Path: path,
						Message: fmt.Sprintf("%s: the failover has no step %q%s", m[0], m[1], suggest(m[1], keysOf(main)))})
					continue
				}
				if spec, ok := v.schema.Action(dep.Action); ok {
					if _, ok := spec.Output(m[2]); !ok {
						v.out = append(v.out, Problem{Line: v.rb.LineOf(path), Path: path,
							Message: fmt.Sprintf("%s: action %s of step %s has no output %q%s", m[0], dep.Action, m[1], m[2], suggest(m[2], spec.OutputNames()))})
					}
				}
			}
		})
	}
}
