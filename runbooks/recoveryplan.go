package runbooks

import (
	"strings"
	"time"
)

// PlanKind is the kind of a recovery plan document: many runbooks, one
// incident (a region loss is never one application).
const PlanKind = "RecoveryPlan"

// MembersLayer is the pseudo-layer a recovery plan's members run under: each
// member is one step of the plan's run, executed as a child RestoreWorkflow.
const MembersLayer = "members"

// ActionPlanMember is the action of a plan's member steps. It is not in the
// action catalogue: the workflow runs it as a child workflow, not an activity.
const ActionPlanMember = "plan.member"

// RecoveryPlan is one lifeboat/v1 RecoveryPlan document:
//
//	apiVersion: lifeboat/v1
//	kind: RecoveryPlan
//	metadata: {name: region-ca-central-1-loss, version: 1, owner: platform-team}
//	spec:
//	  scope: region
//	  objectives: {rto: 2h, mtd: 8h}
//	  approvers: {incident-commander: [alice, bob]}
//	  members:
//	    - runbook: identity-provider-failover
//	    - runbook: case-management-region-failover
//	      after: [identity-provider-failover]
//	      approval: {from: [incident-commander], min: 1}
//	    - runbook: reporting-restore
//	      after: [case-management-region-failover]
//	      optional: true
type RecoveryPlan struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       PlanSpec `yaml:"spec" json:"spec"`

	lines map[string]int
}

// PlanSpec is what a recovery plan runs: member runbooks in dependency order
// against one RTO clock.
type PlanSpec struct {
	Scope      string              `yaml:"scope" json:"scope"`
	Disaster   string              `yaml:"disaster" json:"disaster,omitempty"`
	Objectives Objectives          `yaml:"objectives" json:"objectives"`
	Approvers  map[string][]string `yaml:"approvers" json:"approvers,omitempty"`
	Members    []Member            `yaml:"members" json:"members"`
	Drill      *PlanDrill          `yaml:"drill" json:"drill,omitempty"`
}

// PlanDrill is what a plan's drills need beyond its members' own: how often.
type PlanDrill struct {
	Every Duration `yaml:"every" json:"every,omitempty"`
}

// Member is one runbook of a plan.
type Member struct {
	Runbook string `yaml:"runbook" json:"runbook"`
	// After names members that must have ended (succeeded, or failed while
	// optional) before this one starts.
	After []string `yaml:"after" json:"after,omitempty"`
	// Approval is a gate before the member starts, answered on the plan's run
	// with the member's runbook name as the step (lifeboat approve PLANRUN MEMBER).
	Approval *Approval `yaml:"approval" json:"approval,omitempty"`
	// Optional: a failure is recorded and the plan goes on; the plan's
	// outcome does not depend on it.
	Optional bool `yaml:"optional" json:"optional,omitempty"`
}

// MemberRef is what the worker tells a plan's run about one member when it
// resolves the plan: the exact text's hash and the objectives, so the plan
// projects its finish and names what ran.
type MemberRef struct {
	Runbook string   `json:"runbook"`
	Version int      `json:"version"`
	Hash    string   `json:"hash"`
	RTO     Duration `json:"rto"`
	// Estimate is the member's planned critical path (expect, else timeout).
	Estimate Duration `json:"estimate"`
}

// LineOf returns the line of the YAML node at path (or its closest parent).
func (p *RecoveryPlan) LineOf(path string) int {
	return (&Runbook{lines: p.lines}).LineOf(path)
}

// AsRunbook is the plan as the workflow runs it: a runbook whose steps, in
// the members pseudo-layer, are the members (action plan.member, needs =
// after, the member's gate, onFailure continue for an optional member and
// pause otherwise, so an operator can retry, skip or abort). refs give each
// member's expected duration (its estimate; its RTO when unknown).
func (p *RecoveryPlan) AsRunbook(refs []MemberRef) *Runbook {
	byName := map[string]MemberRef{}
	for _, r := range refs {
		byName[r.Runbook] = r
	}
	rb := &Runbook{APIVersion: p.APIVersion, Kind: p.Kind, Metadata: p.Metadata, lines: p.lines,
		Spec: Spec{Scope: p.Spec.Scope, Disaster: p.Spec.Disaster, Objectives: p.Spec.Objectives, Approvers: p.Spec.Approvers}}
	for _, m := range p.Spec.Members {
		s := Step{ID: m.Runbook, Action: ActionPlanMember, Needs: m.After, Approval: m.Approval,
			With: map[string]any{"runbook": m.Runbook}, OnFailure: OnFailurePause}
		if m.Optional {
			s.OnFailure = OnFailureContinue
			s.With["optional"] = true
		}
		if ref, ok := byName[m.Runbook]; ok {
			s.Expect = cmpDuration(ref.Estimate, ref.RTO)
			s.Timeout = ref.RTO
		}
		rb.Spec.PlanMembers = append(rb.Spec.PlanMembers, s)
	}
	return rb
}

func cmpDuration(ds ...Duration) Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// IsPlan is true for a runbook that is a recovery plan run (see AsRunbook).
func (r *Runbook) IsPlan() bool { return r.Kind == PlanKind }

// ValidatePlan checks a plan against the catalog it runs from: members exist
// and are runbooks, appear once, after names members, no cycles, gates name
// the plan's approver groups, and every chain of member RTOs fits the plan's
// RTO. Each problem has its path and line.
func ValidatePlan(p *RecoveryPlan, cat *Catalog) Problems {
	rb := p.AsRunbook(nil)
	v := &validator{rb: rb}
	if p.APIVersion != APIVersion {
		v.add("apiVersion", "must be %q, got %q", APIVersion, p.APIVersion)
	}
	v.identity("plan", "region-ca-central-1-loss", p.Metadata, p.Spec.Scope)
	v.objectives()
	v.approvers()
	if len(p.Spec.Members) == 0 {
		v.add("spec.members", "no members: a recovery plan runs at least one runbook, e.g. - runbook: case-management-region-failover")
	}
	names := map[string]int{}
	for i, m := range p.Spec.Members {
		path := pathf("spec.members[%d]", i)
		switch {
		case m.Runbook == "":
			v.add(path+".runbook", "missing: name a runbook of the catalog")
		case names[m.Runbook] > 0:
			v.add(path+".runbook", "runbook %q is already member %d: a runbook runs once in a plan", m.Runbook, names[m.Runbook])
		case cat != nil:
			if _, isPlan := cat.plans[m.Runbook]; isPlan {
				v.add(path+".runbook", "%q is a recovery plan: members are runbooks (list its members here instead)", m.Runbook)
			} else if _, err := cat.Get(m.Runbook); err != nil {
				v.add(path+".runbook", "%s", err.Error())
			}
		}
		names[m.Runbook] = i + 1
		if m.Approval != nil {
			v.approval(path+".approval", *m.Approval)
		}
	}
	for i, m := range p.Spec.Members {
		for j, a := range m.After {
			path := pathf("spec.members[%d].after[%d]", i, j)
			switch {
			case a == m.Runbook:
				v.add(path, "member %q comes after itself", a)
			case names[a] == 0:
				v.add(path, "%q is not a member of this plan%s", a, suggest(a, keysOf(names)))
			}
		}
	}
	v.cycles(MembersLayer, rb.Spec.PlanMembers, func(i int) string { return pathf("spec.members[%d].after", i) })
	if len(v.out.Errors()) == 0 && cat != nil {
		refs := cat.MemberRefs(p)
		chain, rto := PlanChain(p, refs, func(r MemberRef) Duration { return r.RTO })
		if plan := p.Spec.Objectives.RTO; plan > 0 && rto > plan {
			v.add("spec.objectives.rto", "the members' RTOs along %s add up to %s, longer than the plan's RTO %s: raise the plan's RTO or shorten the members'",
				strings.Join(chain, " → "), rto, plan)
		}
	}
	v.out.sortByLine()
	return v.out
}

// PlanChain is the longest chain of members by cost (members run in
// parallel unless one comes after another).
func PlanChain(p *RecoveryPlan, refs []MemberRef, cost func(MemberRef) Duration) ([]string, Duration) {
	byName := map[string]MemberRef{}
	for _, r := range refs {
		byName[r.Runbook] = r
	}
	steps := p.AsRunbook(nil).Spec.PlanMembers
	d, chain := longestInLayer(steps, func(s Step) time.Duration { return cost(byName[s.ID]).D() })
	return chain, Duration(d)
}

// MemberRefs describes each member of p as the catalog holds it (members
// the catalog lacks are left out).
func (c *Catalog) MemberRefs(p *RecoveryPlan) []MemberRef {
	var out []MemberRef
	for _, m := range p.Spec.Members {
		e, err := c.Get(m.Runbook)
		if err != nil {
			continue
		}
		out = append(out, MemberRef{Runbook: m.Runbook, Version: e.Runbook.Metadata.Version, Hash: e.Hash,
			RTO: e.Runbook.Spec.Objectives.RTO, Estimate: MakePlan(e.Runbook).Estimate})
	}
	return out
}
