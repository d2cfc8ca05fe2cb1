package runbooks

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ValidateDrill checks that running rb as a drill keeps every step inside the
// drill's scope, before anything runs: namespaced changes only through mapped
// namespaces, a teardown that touches only mapping destinations, edge,
// infrastructure and cluster-wide steps skipped or pointed elsewhere through
// spec.drill.with, and overrides that name real steps and arguments. Each
// problem names the step, the argument and the fix.
//
// Validate runs it for every runbook with a spec.drill section; the worker's
// resolver runs it again for every drill (the runbook may have changed since
// it was validated, and a runbook without spec.drill may be drilled too).
func ValidateDrill(rb *Runbook, schema Schema) Problems {
	v := &validator{rb: rb, schema: schema}
	v.drillScope()
	v.out.sortByLine()
	return v.out
}

func (v *validator) drillScope() {
	d := v.rb.Spec.Drill
	skips := map[string]bool{}
	if d != nil {
		for _, id := range d.Skip {
			skips[id] = true
		}
	}
	v.drillOverrides(d, skips)
	v.drillMappings(d)
	for _, ls := range v.rb.AllSteps() {
		if !skips[ls.Step.ID] {
			v.drillStep(ls, d)
		}
	}
	for _, ls := range v.rb.TeardownSteps() {
		v.drillStep(ls, d)
	}
}

// drillMappings refuses mappings that chain or collide: a destination that
// is also a source ({a: payments, payments: drill-payments} made payments
// look like a drill namespace, so a teardown could delete it), a namespace
// mapped to itself, and two sources sharing one destination. A drill
// namespace is a destination and nothing else.
func (v *validator) drillMappings(d *Drill) {
	if d == nil {
		return
	}
	by := map[string]string{}
	for _, from := range sortedKeys(d.NamespaceMappings) {
		to := d.NamespaceMappings[from]
		p := "spec.drill.namespaceMappings." + from
		switch {
		case to == from:
			v.add(p, "maps namespace %q to itself: a drill must restore into a namespace of its own (e.g. restore-drill-%s)", from, from)
		case d.NamespaceMappings[to] != "":
			v.add(p, "maps to %q, which is itself mapped (to %q): mappings may not chain, since a drill namespace must not be a production namespace; map %s to a namespace no runbook step uses in production", to, d.NamespaceMappings[to], from)
		case by[to] != "":
			v.add(p, "maps to %q, as %s does: each production namespace needs its own drill namespace", to, by[to])
		}
		by[to] = from
	}
}

// drillStep checks one step that a drill runs.
func (v *validator) drillStep(ls LayeredStep, d *Drill) {
	spec, ok := v.schema.Action(ls.Step.Action)
	if !ok {
		return // Validate reports the unknown action
	}
	id, p := ls.Step.ID, ls.Path()
	if spec.ChangesWith != nil {
		if why := spec.ChangesWith(d.Args(ls.Step)); why != "" && !overridden(ls.Step, spec, d) {
			v.add(p, "%s %s, an external side effect: in a drill, add %s to spec.drill.skip or point it away from production with spec.drill.with.%s.%s",
				spec.Name, why, id, id, orList(spec.DrillOverrides))
		}
	}
	switch spec.Drill {
	case DrillMapNamespaces:
		v.drillNamespaces(ls, spec, d)
	case DrillOverrideOrSkip:
		if !overridden(ls.Step, spec, d) {
			how := "add " + id + " to spec.drill.skip or point it away"
			if ls.Layer == TeardownLayer {
				how = "point it away" // teardown steps cannot be skipped
			}
			v.add(p, "%s changes %s: in a drill, %s from production with spec.drill.with.%s.%s",
				spec.Name, spec.Effect, how, id, orList(spec.DrillOverrides))
		}
	}
}

// drillNamespaces checks the namespaces a namespaced step names.
func (v *validator) drillNamespaces(ls LayeredStep, spec ActionSpec, d *Drill) {
	args := d.Args(ls.Step)
	dests := d.Destinations()
	var mapping map[string]string
	if d != nil {
		mapping = d.NamespaceMappings
	}
	id, p := ls.Step.ID, ls.Path()
	teardown := ls.Layer == TeardownLayer
	check := func(path, ns string) {
		switch {
		case HasRefs(ns):
			v.add(path, "in a drill the namespace %s is only known when the step runs, so the drill cannot be checked to stay away from production: name the namespace in spec.drill.with.%s, or skip the step",
				ns, id)
		case teardown && !slices.Contains(dests, ns):
			v.add(path, "a drill's teardown may only touch what the drill created: %q is not a destination of spec.drill.namespaceMappings (%s); name the drill namespace instead",
				ns, OrDash(strings.Join(dests, ", ")))
		case !teardown && mapping[ns] == "" && !slices.Contains(dests, ns):
			v.add(path, "in a drill this step would change namespace %q, which spec.drill.namespaceMappings does not map: map it (namespaceMappings: {%s: restore-drill-%s}), override the argument in spec.drill.with.%s, or skip the step",
				ns, ns, ns, id)
		}
	}
	if ns, ok := args["namespace"].(string); ok {
		check(p+".with.namespace", ns)
	}
	names, listed := args["namespaces"].([]any)
	for _, n := range names {
		if ns, ok := n.(string); ok {
			check(p+".with.namespaces", ns)
		}
	}
	if !listed && hasArg(spec, "namespaces") { // a teardown's restore too: it would bring production's namespaces back
		v.add(p+".with.namespaces", "name the namespaces to restore and map each in spec.drill.namespaceMappings: a drill can keep a restore away from production only through the namespaces it maps")
	}
	if own, ok := args["namespaceMappings"].(map[string]any); ok {
		for _, from := range sortedKeys(own) {
			if to, _ := own[from].(string); !slices.Contains(dests, to) {
				v.add(p+".with.namespaceMappings", "maps %q to %q, which is not a drill namespace (%s): in a drill a restore may only land in a destination of spec.drill.namespaceMappings",
					from, to, OrDash(strings.Join(dests, ", ")))
			}
		}
	}
}

// drillOverrides checks spec.drill.with: real steps, their arguments, values
// that differ from production, and types.
func (v *validator) drillOverrides(d *Drill, skips map[string]bool) {
	if d == nil {
		return
	}
	steps := map[string]LayeredStep{}
	for _, ls := range append(v.rb.AllSteps(), v.rb.TeardownSteps()...) {
		steps[ls.Step.ID] = ls
	}
	for _, id := range sortedKeys(d.With) {
		p := "spec.drill.with." + id
		ls, ok := steps[id]
		if !ok {
			v.add(p, "unknown step %q%s", id, suggest(id, keysOf(steps)))
			continue
		}
		if skips[id] {
			v.add(p, "step %s is in spec.drill.skip, so a drill never runs it: remove the override or the skip", id)
			continue
		}
		spec, ok := v.schema.Action(ls.Step.Action)
		if !ok {
			continue
		}
		over := d.With[id]
		for _, arg := range sortedKeys(over) {
			switch {
			case !hasArg(spec, arg):
				v.add(p+"."+arg, "unknown argument for %s (allowed: %s)", spec.Name, strings.Join(spec.argNames(), ", "))
			case slices.Contains(spec.DrillOverrides, arg) && reflect.DeepEqual(over[arg], ls.Step.With[arg]):
				v.add(p+"."+arg, "%v is the production value: a drill override must point the step elsewhere (a non-production hostname, a drill var file)", over[arg])
			}
		}
		for _, msg := range spec.CheckArgs(d.Args(ls.Step)) {
			arg, rest, _ := strings.Cut(msg, ": ")
			if _, set := over[arg]; set && hasArg(spec, arg) {
				v.add(p+"."+arg, "%s", rest)
			}
		}
	}
}

// overridden is true when spec.drill.with points one of the action's
// DrillOverrides arguments somewhere other than production.
func overridden(s Step, spec ActionSpec, d *Drill) bool {
	over := d.overrides(s.ID)
	for _, arg := range spec.DrillOverrides {
		if v, ok := over[arg]; ok && !reflect.DeepEqual(v, s.With[arg]) {
			return true
		}
	}
	return false
}

func hasArg(spec ActionSpec, name string) bool {
	return slices.ContainsFunc(spec.Args, func(a ArgSpec) bool { return a.Name == name })
}

// orList is "a" or "a (or b, c)".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return fmt.Sprintf("%s (or %s)", names[0], strings.Join(names[1:], ", "))
}
