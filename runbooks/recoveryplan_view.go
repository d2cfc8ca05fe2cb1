package runbooks

import (
	"fmt"
	"io"
	"strings"
)

// PlanView is how a recovery plan will run: its members in parallel waves
// and the critical path of member estimates against the plan's RTO.
type PlanView struct {
	Plan    string           `json:"plan"`
	Version int              `json:"version"`
	RTO     Duration         `json:"rto"`
	Waves   [][]MemberInPlan `json:"waves"`
	// Critical is the longest chain of members by estimate.
	Critical []string `json:"criticalPath"`
	// Estimate is the length of Critical.
	Estimate Duration `json:"estimate"`
	// RTOBound is the longest chain if every member used its whole RTO.
	RTOBound Duration `json:"rtoBound"`
	Fits     bool     `json:"fitsRTO"`
}

// MemberInPlan is one member as planned.
type MemberInPlan struct {
	Runbook  string   `json:"runbook"`
	After    []string `json:"after,omitempty"`
	RTO      Duration `json:"rto"`
	Estimate Duration `json:"estimate"`
	Gated    bool     `json:"approvalGate,omitempty"`
	Optional bool     `json:"optional,omitempty"`
}

// MakePlanView plans a valid recovery plan with its members' refs.
func MakePlanView(p *RecoveryPlan, refs []MemberRef) PlanView {
	byName := map[string]MemberRef{}
	for _, r := range refs {
		byName[r.Runbook] = r
	}
	v := PlanView{Plan: p.Metadata.Name, Version: p.Metadata.Version, RTO: p.Spec.Objectives.RTO}
	members := p.Spec.Members
	for _, wave := range waves(p.AsRunbook(refs).Spec.PlanMembers) {
		var row []MemberInPlan
		for _, i := range wave {
			m := members[i]
			ref := byName[m.Runbook]
			row = append(row, MemberInPlan{Runbook: m.Runbook, After: m.After, RTO: ref.RTO, Estimate: ref.Estimate,
				Gated: m.Approval != nil, Optional: m.Optional})
		}
		v.Waves = append(v.Waves, row)
	}
	v.Critical, v.Estimate = PlanChain(p, refs, func(r MemberRef) Duration { return r.Estimate })
	_, v.RTOBound = PlanChain(p, refs, func(r MemberRef) Duration { return r.RTO })
	v.Fits = v.RTO <= 0 || v.Estimate <= v.RTO
	return v
}

// WriteText prints the plan view for a person.
func (v PlanView) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Recovery plan %s v%d (RTO %s)\n", v.Plan, v.Version, v.RTO)
	for i, wave := range v.Waves {
		label := "in parallel"
		if len(wave) == 1 {
			label = "alone"
		}
		fmt.Fprintf(w, "\nwave %d, %s:\n", i+1, label)
		for _, m := range wave {
			var notes []string
			if len(m.After) > 0 {
				notes = append(notes, "after "+strings.Join(m.After, ", "))
			}
			if m.Gated {
				notes = append(notes, "approval before it starts")
			}
			if m.Optional {
				notes = append(notes, "optional: a failure does not stop the plan")
			}
			extra := ""
			if len(notes) > 0 {
				extra = " — " + strings.Join(notes, "; ")
			}
			fmt.Fprintf(w, "   %s (~%s, RTO %s)%s\n", m.Runbook, m.Estimate, m.RTO, extra)
		}
	}
	verdict := "fits the RTO"
	if !v.Fits {
		verdict = "EXCEEDS the RTO"
	}
	fmt.Fprintf(w, "\nCritical path: %s\n", strings.Join(v.Critical, " → "))
	fmt.Fprintf(w, "Estimated: %s of RTO %s — %s (if every member used its whole RTO: %s)\n", v.Estimate, v.RTO, verdict, v.RTOBound)
}
