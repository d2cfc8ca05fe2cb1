package runbooks

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Plan is how a runbook will run: its layers in order, the parallel groups
// (waves) inside each layer, and the critical path compared with the RTO.
type Plan struct {
	Runbook string      `json:"runbook"`
	Version int         `json:"version"`
	RTO     Duration    `json:"rto"`
	Layers  []PlanLayer `json:"layers"`
	// Critical is the longest chain of steps by estimate (expect, else timeout).
	Critical []string `json:"criticalPath"`
	// Estimate is the length of Critical.
	Estimate Duration `json:"estimate"`
	// TimeoutBound is the longest chain if every step used its whole timeout.
	TimeoutBound Duration `json:"timeoutBound"`
	// Fits is true when Estimate is within the RTO.
	Fits bool `json:"fitsRTO"`
}

// PlanLayer is one layer of a Plan.
type PlanLayer struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Waves are groups of steps that start together: wave 0 has no same-layer
	// needs, wave n needs something in wave n-1.
	Waves    [][]PlanStep `json:"waves"`
	Estimate Duration     `json:"estimate"`
}

// PlanStep is one step as planned.
type PlanStep struct {
	ID       string   `json:"id"`
	Action   string   `json:"action"`
	Estimate Duration `json:"estimate"`
	Gated    bool     `json:"approvalGate,omitempty"`
}

// MakePlan plans a valid runbook.
func MakePlan(rb *Runbook) Plan {
	p := Plan{Runbook: rb.Metadata.Name, Version: rb.Metadata.Version, RTO: rb.Spec.Objectives.RTO}
	for i, l := range rb.Spec.Layers.Ordered() {
		if len(l.Steps) == 0 {
			continue
		}
		pl := PlanLayer{Name: l.Name, Reason: LayerOrder[i].Reason}
		for w, ids := range waves(l.Steps) {
			_ = w
			var wave []PlanStep
			for _, idx := range ids {
				s := l.Steps[idx]
				wave = append(wave, PlanStep{ID: s.ID, Action: s.Action, Estimate: Duration(s.Estimate()), Gated: s.Approval != nil})
			}
			pl.Waves = append(pl.Waves, wave)
		}
		d, _ := longestInLayer(l.Steps, Step.Estimate)
		pl.Estimate = Duration(d)
		p.Layers = append(p.Layers, pl)
	}
	est, path := criticalChain(rb, Step.Estimate)
	bound, _ := criticalChain(rb, Step.EffectiveTimeout)
	p.Critical, p.Estimate, p.TimeoutBound = path, Duration(est), Duration(bound)
	p.Fits = p.RTO <= 0 || est <= p.RTO.D()
	return p
}

// WriteText prints the plan for a person.
func (p Plan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Plan for %s v%d (RTO %s)\n", p.Runbook, p.Version, p.RTO)
	for i, l := range p.Layers {
		fmt.Fprintf(w, "\n%d. %s  (~%s) — %s\n", i+1, l.Name, l.Estimate, l.Reason)
		for j, wave := range l.Waves {
			var parts []string
			for _, s := range wave {
				gate := ""
				if s.Gated {
					gate = " [approval]"
				}
				parts = append(parts, fmt.Sprintf("%s (%s, ~%s)%s", s.ID, s.Action, s.Estimate, gate))
			}
			label := "in parallel"
			if len(wave) == 1 {
				label = "alone"
			}
			fmt.Fprintf(w, "   wave %d, %s: %s\n", j+1, label, strings.Join(parts, ", "))
		}
	}
	verdict := "fits the RTO"
	if !p.Fits {
		verdict = "EXCEEDS the RTO"
	}
	fmt.Fprintf(w, "\nCritical path: %s\n", strings.Join(p.Critical, " → "))
	fmt.Fprintf(w, "Estimated: %s of RTO %s — %s (if every step used its whole timeout: %s)\n", p.Estimate, p.RTO, verdict, p.TimeoutBound)
}

// waves groups a layer's steps by depth in its same-layer needs graph.
// The layer must be acyclic (Validate guarantees it).
func waves(steps []Step) [][]int {
	index := map[string]int{}
	for i, s := range steps {
		index[s.ID] = i
	}
	depth := make([]int, len(steps))
	for i := range depth {
		depth[i] = -1
	}
	var visit func(i, guard int) int
	visit = func(i, guard int) int {
		if depth[i] >= 0 || guard > len(steps) {
			return max(depth[i], 0)
		}
		d := 0
		for _, n := range steps[i].Needs {
			if j, ok := index[n]; ok && j != i {
				d = max(d, visit(j, guard+1)+1)
			}
		}
		depth[i] = d
		return d
	}
	var out [][]int
	for i := range steps {
		d := visit(i, 0)
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], i)
	}
	return out
}

// longestInLayer returns the longest chain of a layer's steps by cost.
func longestInLayer(steps []Step, cost func(Step) time.Duration) (time.Duration, []string) {
	index := map[string]int{}
	for i, s := range steps {
		index[s.ID] = i
	}
	memo := make([]time.Duration, len(steps))
	next := make([]int, len(steps)) // predecessor on the longest chain ending here
	seen := make([]bool, len(steps))
	var end func(i, guard int) time.Duration
	end = func(i, guard int) time.Duration {
		if seen[i] || guard > len(steps) {
			return memo[i]
		}
		best, from := time.Duration(0), -1
		for _, n := range steps[i].Needs {
			if j, ok := index[n]; ok && j != i {
				if d := end(j, guard+1); d > best || from < 0 {
					best, from = d, j
				}
			}
		}
		seen[i], memo[i], next[i] = true, best+cost(steps[i]), from
		return memo[i]
	}
	best, last := time.Duration(0), -1
	for i := range steps {
		if d := end(i, 0); d > best || last < 0 {
			best, last = d, i
		}
	}
	var chain []string
	for i := last; i >= 0; i = next[i] {
		chain = append([]string{steps[i].ID}, chain...)
	}
	return best, chain
}

// criticalChain sums the longest chain of each layer (layers are barriers).
func criticalChain(rb *Runbook, cost func(Step) time.Duration) (time.Duration, []string) {
	var total time.Duration
	var path []string
	for _, l := range rb.Spec.Layers.Ordered() {
		if len(l.Steps) == 0 {
			continue
		}
		d, chain := longestInLayer(l.Steps, cost)
		total += d
		path = append(path, chain...)
	}
	return total, path
}
