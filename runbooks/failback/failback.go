// Package failback builds the runbook that undoes a failover (Build): traffic
// goes home, the DR side winds down.
// Its runbook is built from the failover's own record (the runbook text it
// ran and its evidence), never from today's catalog:
//   - spec.failback, when the runbook has one: its layers, with every
//     ${{ failover.steps.ID.outputs.NAME }} replaced by what the failover
//     recorded;
//   - otherwise the reverse of every step the failover ran that changed
//     something: cloudflare.dnsSwitch back to the previous record,
//     cloudflare.lbFailover back with cloudflare.lbRestore, kube.scale back to
//     the previous replica counts; a step lifeboat cannot reverse
//     (terraform, manifests, restores, syncs) becomes a manual.task that
//     says what to undo — nothing is silently dropped.
//
// A generated failback runs its layers in reverse restore order (edge first:
// traffic moves home before the DR side winds down); a written one
// (spec.failback) runs in restore order, data home before traffic. Each
// undo step keeps the approval gate of the step it undoes.
package failback

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// Plan is a failback runbook with what it leaves out and why.
type Plan struct {
	Runbook *runbooks.Runbook
	// NothingToUndo names the failover's steps that changed nothing (read-only
	// checks), or did not run, with the reason.
	NothingToUndo []string
	// Manual names the steps lifeboat cannot reverse, each a manual task.
	Manual []string
	// Written is true when the runbook's spec.failback is the plan: it runs
	// in restore order (a generated undo runs in reverse order).
	Written bool
}

// Build builds the failback of a failover that ran rb and left ev.
func Build(rb *runbooks.Runbook, ev record.Evidence, schema runbooks.Schema) (Plan, error) {
	if ev.Mode != "failover" {
		return Plan{}, fmt.Errorf("run %s is a %s: only a failover is failed back", ev.WorkflowID, ev.Mode)
	}
	out := &runbooks.Runbook{APIVersion: runbooks.APIVersion, Kind: runbooks.Kind, Metadata: rb.Metadata,
		Spec: runbooks.Spec{Scope: rb.Spec.Scope, Disaster: rb.Spec.Disaster, Strategy: rb.Spec.Strategy, Capability: rb.Spec.Capability,
			Objectives: rb.Spec.Objectives, Approvers: rb.Spec.Approvers, Targets: rb.Spec.Targets}}
	out.Metadata.Description = fmt.Sprintf("failback of %s (%s)", ev.WorkflowID, rb.Metadata.Name)
	records := map[string]record.StepRecord{}
	for _, s := range ev.Steps {
		records[s.ID] = s
	}
	plan := Plan{Runbook: out}
	if rb.Spec.Failback != nil {
		layers, err := withFailoverOutputs(*rb.Spec.Failback, records)
		if err != nil {
			return Plan{}, err
		}
		out.Spec.Layers = layers
		plan.Written = true
		return plan, nil
	}
	byLayer := map[string][]runbooks.Step{}
	undoOf := map[string]string{} // failover step → its undo step
	for _, ls := range rb.AllSteps() {
		rec, ok := records[ls.Step.ID]
		undo, why := reverse(ls.Step, rec, ok, schema)
		if undo == nil {
			plan.NothingToUndo = append(plan.NothingToUndo, fmt.Sprintf("%s (%s): %s", ls.Step.ID, ls.Step.Action, why))
			continue
		}
		if undo.Action == "manual.task" {
			plan.Manual = append(plan.Manual, ls.Step.ID)
		}
		undoOf[ls.Step.ID] = undo.ID
		byLayer[ls.Layer] = append(byLayer[ls.Layer], *undo)
	}
	// B needed A, so A's undo waits for B's (same layer; layers run in reverse).
	for _, ls := range rb.AllSteps() {
		for _, n := range ls.Step.Needs {
			a, b := undoOf[n], undoOf[ls.Step.ID]
			if a == "" || b == "" {
				continue
			}
			for i := range byLayer[ls.Layer] {
				if s := &byLayer[ls.Layer][i]; s.ID == a && sameLayer(byLayer[ls.Layer], b) {
					s.Needs = append(s.Needs, b)
				}
			}
		}
	}
	out.Spec.Layers = runbooks.Layers{Network: byLayer["network"], Identity: byLayer["identity"], Secrets: byLayer["secrets"],
		Storage: byLayer["storage"], Workloads: byLayer["workloads"], Edge: byLayer["edge"]}
	if len(out.AllSteps()) == 0 {
		return plan, fmt.Errorf("failover %s changed nothing lifeboat knows how to undo or can name: %s", ev.WorkflowID, strings.Join(plan.NothingToUndo, "; "))
	}
	return plan, nil
}

func sameLayer(steps []runbooks.Step, id string) bool {
	return slices.ContainsFunc(steps, func(s runbooks.Step) bool { return s.ID == id })
}

// reverse is the undo of one failover step, or nil and why there is none.
func reverse(s runbooks.Step, rec record.StepRecord, ran bool, schema runbooks.Schema) (*runbooks.Step, string) {
	spec, known := schema.Action(s.Action)
	switch {
	case !ran || rec.State == "not-run" || rec.State == "skipped" || rec.State == "blocked" || rec.State == "rejected":
		state := "not in the failover's evidence"
		if ran {
			state = rec.State
		}
		return nil, "it did not run (" + state + ")"
	case known && spec.Effect == runbooks.EffectReadOnly:
		return nil, "it changes nothing"
	}
	undo := &runbooks.Step{ID: "undo-" + s.ID, Description: fmt.Sprintf("undo %s (%s)", s.ID, s.Action), Approval: s.Approval,
		Timeout: s.Timeout, Retry: s.Retry}
	if rec.State != "succeeded" {
		return manualUndo(undo, s, rec, fmt.Sprintf("it ended %s (%s), so what it changed is not recorded", rec.State, runbooks.OrDash(rec.Error))), ""
	}
	switch s.Action {
	case "cloudflare.dnsSwitch":
		prev, ok := rec.Outputs["previous"].(map[string]any)
		if !ok || prev["content"] == nil {
			return manualUndo(undo, s, rec, "the record's previous value was not recorded"), ""
		}
		undo.Action = s.Action
		undo.With = map[string]any{"zone": s.With["zone"], "record": s.With["record"], "to": prev["content"]}
		for _, k := range []string{"type", "ttl", "proxied"} {
			if v, ok := prev[k]; ok && v != nil {
				undo.With[k] = v
			}
		}
	case "cloudflare.lbFailover":
		pools, ok := rec.Outputs["previousDefaultPools"].([]any)
		if !ok {
			return manualUndo(undo, s, rec, "the previous default pools were not recorded"), ""
		}
		undo.Action = "cloudflare.lbRestore"
		undo.With = map[string]any{"zone": s.With["zone"], "loadBalancer": s.With["loadBalancer"], "defaultPools": pools}
		if was, _ := rec.Outputs["primaryWasEnabled"].(bool); was && s.With["primaryPool"] != nil {
			undo.With["enablePool"] = s.With["primaryPool"]
		}
	case "kube.scale":
		prev, ok := rec.Outputs["previousReplicas"].(map[string]any)
		if !ok || len(prev) == 0 {
			return manualUndo(undo, s, rec, "the previous replica counts were not recorded"), ""
		}
		undo.Action = s.Action
		undo.With = map[string]any{"target": s.With["target"], "namespace": s.With["namespace"], "replicas": prev}
	default:
		return manualUndo(undo, s, rec, "lifeboat cannot reverse "+s.Action+" automatically"), ""
	}
	return undo, ""
}

// manualUndo turns undo into a manual task that says what to undo.
func manualUndo(undo *runbooks.Step, s runbooks.Step, rec record.StepRecord, why string) *runbooks.Step {
	undo.Action, undo.Approval, undo.Retry, undo.Timeout = "manual.task", nil, nil, 0
	hint := map[string]string{
		"terraform.apply":      "destroy or scale down what it built, if the DR side should go",
		"kube.apply":           "remove the objects it applied, if they should not stay",
		"velero.restore":       "the restored namespaces stay in the DR cluster: delete them once production serves again, or keep them warm",
		"argocd.sync":          "point the Application back or suspend it",
		"kube.deleteNamespace": "recreate the namespace if it should exist",
		"velero.backup":        "delete the backup if it should not be kept",
	}[s.Action]
	what := fmt.Sprintf("Undo step %s (%s)", s.ID, s.Action)
	if rec.Summary != "" {
		what += ", which did: " + rec.Summary
	}
	text := what + ". " + capitalize(why) + "."
	if hint != "" {
		text += " " + capitalize(hint) + "."
	}
	text += " Acknowledge when done (lifeboat ack RUN " + undo.ID + ")."
	undo.With = map[string]any{"instructions": text}
	return undo
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// withFailoverOutputs copies the failback layers with every failover
// reference replaced by the failover's recorded output.
func withFailoverOutputs(l runbooks.Layers, records map[string]record.StepRecord) (runbooks.Layers, error) {
	lookup := func(ref runbooks.Ref) (any, error) {
		rec, ok := records[ref.Step]
		if !ok || rec.State != "succeeded" {
			state := "is not in the failover's evidence"
			if ok {
				state = "ended " + rec.State
			}
			return nil, fmt.Errorf("step %s %s, so it has no outputs", ref.Step, state)
		}
		v, ok := rec.Outputs[ref.Output]
		if !ok {
			return nil, fmt.Errorf("step %s recorded no output %q", ref.Step, ref.Output)
		}
		return v, nil
	}
	var firstErr error
	copySteps := func(steps []runbooks.Step) []runbooks.Step {
		out := make([]runbooks.Step, len(steps))
		for i, s := range steps {
			with, _, err := runbooks.ResolveFailoverRefs(s.With, lookup)
			if firstErr == nil {
				firstErr = err
			}
			s.With = with
			out[i] = s
		}
		return out
	}
	out := runbooks.Layers{Network: copySteps(l.Network), Identity: copySteps(l.Identity), Secrets: copySteps(l.Secrets),
		Storage: copySteps(l.Storage), Workloads: copySteps(l.Workloads), Edge: copySteps(l.Edge)}
	return out, firstErr
}
