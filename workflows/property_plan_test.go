package workflows_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// The plan property test generates recovery plans — 2–4 members, each a
// small runbook (gated or not, failing or not), ordered by `after`, some
// optional, some behind a plan-level approval — started in a random mode
// (failover, drill, tabletop, dry run, pre-check only; signed or not),
// and sends the plan random operator messages: aimed at what it waits on
// (member steps it forwards, its own member gates) or at anything, signed
// for the right run, for the wrong run (the plan's instead of the
// member's), by another's key, or not at all. After each sequence it
// checks the plan invariants (checkPlanInvariants) and every member run
// against the runbook invariants' gate and side-effect rules.
var propertyPlans = flag.Int("property.plans", 300, "plan sequences the plan property test generates")

func TestPropertyNoPlanSequenceBreaksTheGuarantees(t *testing.T) {
	seeds := make([]uint64, 0, *propertyPlans)
	if *propertySeed != 0 {
		seeds = append(seeds, *propertySeed)
	} else {
		for i := 1; i <= *propertyPlans; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	outcomes := map[string]int{}
	defer func() {
		t.Logf("%d plan sequences: %d member steps ran, %d gated member steps passed, %d decisions forwarded, outcomes %v",
			len(seeds), planStats.ran, planStats.gated, planStats.forwarded, outcomes)
	}()
	for _, seed := range seeds {
		if !runPlanSequence(t, seed, outcomes) {
			t.Fatalf("plan sequence %d broke a guarantee: replay it with go test ./workflows/ -run TestPropertyNoPlanSequence -property.seed=%d -v", seed, seed)
		}
	}
}

// planStats says what the plan sequences exercised.
var planStats struct{ ran, gated, forwarded int }

// genMember is a generated plan member.
type genMember struct {
	name     string
	after    []string
	optional bool
	gated    bool // a plan-level approval before it starts
	steps    []genStep
}

// genPlan writes a random plan named region-loss and its members.
func genPlan(rng *rand.Rand) (map[string]string, []genMember) {
	files := map[string]string{}
	var members []genMember
	var plan strings.Builder
	plan.WriteString(planHeader)
	for i := 0; i < 2+rng.IntN(3); i++ {
		m := genMember{name: fmt.Sprintf("m%d", i), optional: rng.IntN(3) == 0, gated: rng.IntN(4) == 0}
		for _, prev := range members {
			if rng.IntN(2) == 0 {
				m.after = append(m.after, prev.name)
			}
		}
		var steps strings.Builder
		for j := 0; j < 1+rng.IntN(2); j++ {
			s := genStep{id: fmt.Sprintf("m%ds%d", i, j), attempts: 1 + rng.IntN(2), onFailure: []string{"pause", "abort", "continue"}[rng.IntN(3)]}
			fmt.Fprintf(&steps, "      - id: %s\n        retry: {attempts: %d}\n        onFailure: %s\n", s.id, s.attempts, s.onFailure)
			switch rng.IntN(3) {
			case 0:
				s.action = "http.check"
				steps.WriteString("        action: http.check\n        with: {url: \"http://x\"}\n")
			case 1:
				s.action, s.namespace = "kube.scale", "app"
				steps.WriteString("        action: kube.scale\n        with: {target: dr, namespace: app, replicas: {api: 2}}\n")
			default:
				s.action = "manual.task"
				steps.WriteString("        action: manual.task\n        with: {instructions: \"do it\"}\n")
			}
			if rng.IntN(2) == 0 {
				s.gate = &runbooks.Approval{From: []string{"ic"}, Min: 1 + rng.IntN(2), Separate: rng.IntN(2) == 0}
				fmt.Fprintf(&steps, "        approval: {from: [ic], min: %d, separate: %t}\n", s.gate.Min, s.gate.Separate)
			}
			m.steps = append(m.steps, s)
		}
		files[m.name] = member(m.name, steps.String()) + "  drill:\n    namespaceMappings: {app: drill-app}\n"
		fmt.Fprintf(&plan, "    - runbook: %s\n", m.name)
		if len(m.after) > 0 {
			fmt.Fprintf(&plan, "      after: [%s]\n", strings.Join(m.after, ", "))
		}
		if m.optional {
			plan.WriteString("      optional: true\n")
		}
		if m.gated {
			plan.WriteString("      approval: {from: [ic], min: 1}\n")
		}
		members = append(members, m)
	}
	files["plan"] = plan.String()
	return files, members
}

func runPlanSequence(t *testing.T, seed uint64, outcomes map[string]int) (ok bool) {
	rng := rand.New(rand.NewPCG(seed, 2401))
	files, members := genPlan(rng)
	h := newHarness(t)
	h.env.SetTestTimeout(30 * time.Second)
	mode := []string{workflows.ModeFailover, workflows.ModeDrill, workflows.ModeTabletop, "dryRun", "precheckOnly"}[rng.IntN(5)]
	req := h.plan(mode, files)
	switch mode {
	case "dryRun", "precheckOnly":
		req.Mode = []string{workflows.ModeFailover, workflows.ModeDrill}[rng.IntN(2)]
		req.DryRun, req.PrecheckOnly = mode == "dryRun", mode == "precheckOnly"
	}
	signed := rng.IntN(2) == 0
	if signed {
		req = signedStart(h, req)
	}
	for _, m := range members {
		for _, s := range m.steps {
			if rng.IntN(4) == 0 {
				h.rec.script[s.id] = fails(1 + rng.IntN(3))
			}
		}
	}
	memberRuns := map[string]record.Evidence{} // member run id → its evidence
	h.env.SetOnChildWorkflowCompletedListener(func(info *workflow.Info, result converter.EncodedValue, err error) {
		var ev record.Evidence
		if err == nil && result != nil && result.Get(&ev) == nil {
			memberRuns[info.WorkflowExecution.ID] = ev
		}
	})
	var report strings.Builder
	kinds := []string{workflows.MsgApprove, workflows.MsgApprove, workflows.MsgReject, workflows.MsgSkip, workflows.MsgRetry, workflows.MsgAck, workflows.MsgAbort}
	for i := 0; i < 4+rng.IntN(12); i++ {
		at := time.Duration(1+rng.IntN(50)) * time.Minute
		kind, by := kinds[rng.IntN(len(kinds))], propertyPeople[rng.IntN(len(propertyPeople))]
		how, asSignal, pick := rng.IntN(6), rng.IntN(2) == 0, rng.Uint64()
		h.at(at, func() {
			step, memberRun := "", ""
			if v, err := h.env.QueryWorkflow(workflows.QueryStatus); err == nil {
				var st workflows.Status
				if v.Get(&st) == nil && len(st.Pending) > 0 {
					p := st.Pending[pick%uint64(len(st.Pending))]
					step, memberRun = p.Step, p.MemberRun
					if pick%5 != 0 { // most messages answer what is pending
						kind = map[string]string{"approval": workflows.MsgApprove, "acknowledgement": workflows.MsgAck, "operator": workflows.MsgRetry}[p.Kind]
						if len(p.Approvers) > 0 && pick%3 != 0 {
							by = p.Approvers[(pick/5)%uint64(len(p.Approvers))]
						}
					}
				}
			}
			m := operatorMessage(kind, step, by)
			// 0-2: signed by by for the run that owns the step; 3: unsigned;
			// 4: another's key; 5: signed for the plan's run, not the member's.
			wf, run, key := testWorkflowID, testRunID, by
			if memberRun != "" && how != 5 {
				wf, run = memberRun, memberRun+"_RunID"
			}
			switch how {
			case 3:
				key = ""
			case 4:
				key = propertyPeople[(slices.Index(propertyPeople, by)+1)%len(propertyPeople)]
			}
			if key != "" && testKeys[key] != nil {
				now := h.env.Now()
				if sig, err := proof.SignDecision(workflows.MessageDecision(wf, run, m, now), testKeys[key]); err == nil {
					m = workflows.WithSigned(m, workflows.Signed{SignedAt: &now, Signature: sig})
				}
			}
			name := msgName(m)
			fmt.Fprintf(&report, "  T+%s %s %s by=%s key=%s for=%s signal=%t\n", at, name, step, m.Actor(), key, wf, asSignal)
			if asSignal {
				h.env.SignalWorkflow(name, m)
				return
			}
			h.env.UpdateWorkflow(name, fmt.Sprintf("u-%d", pick), &testsuite.TestUpdateCallback{
				OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}, m)
		})
	}
	h.at(55*time.Minute, func() {
		h.env.SignalWorkflow(workflows.MsgAbort, signedWith(h, workflows.Abort{By: "alice", Reason: "end of sequence"}, "alice", testWorkflowID, testRunID, h.env.Now()))
	})
	h.env.ExecuteWorkflow(workflows.RecoveryPlanWorkflowName, req)
	defer func() {
		if !ok {
			t.Logf("seed %d, mode %s, signed start %t\nplan:\n%s\nmembers: %+v\nmessages:\n%s", seed, mode, signed, files["plan"], members, report.String())
		}
	}()
	if !h.env.IsWorkflowCompleted() {
		t.Errorf("the plan did not end")
		return false
	}
	if err := h.workflowError(); err != nil {
		t.Errorf("the plan failed instead of ending with evidence: %v", err)
		return false
	}
	var ev record.Evidence
	if err := h.env.GetWorkflowResult(&ev); err != nil {
		t.Errorf("no evidence: %v", err)
		return false
	}
	outcomes[ev.Mode+":"+ev.Outcome]++
	for _, m := range members {
		for _, s := range m.steps {
			if n := h.rec.count(s.id); n > 0 {
				planStats.ran++
				if s.gate != nil {
					planStats.gated++
				}
			}
		}
	}
	for _, e := range ev.Events {
		if e.Kind == "forwarded" {
			planStats.forwarded++
		}
	}
	problems := checkPlanInvariants(h, req, ev, members, memberRuns)
	for _, p := range problems {
		t.Error(p)
	}
	return len(problems) == 0
}

// checkPlanInvariants returns every guarantee the finished plan broke:
//
//	P1 a dry run, pre-check or tabletop plan invokes no member's action, and
//	   a drill touches no namespace but its own;
//	P2 succeeded ⇒ every required member succeeded;
//	P3 no member runs a step before every required member it comes after
//	   succeeded (an optional one that ended lets it start);
//	P4 inside each member run: its RTO clock runs from the plan's
//	   declaration, no gated step ran without its quorum of proven approvals
//	   under separation (the plan's requester is the member's), no step ran
//	   more often than its attempts and retries allow;
//	P5 the plan and every member run stored their evidence exactly once.
func checkPlanInvariants(h *harness, req workflows.Request, ev record.Evidence, members []genMember, memberRuns map[string]record.Evidence) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if ev.Plan == nil {
		return []string{"the plan's evidence has no members"}
	}
	outcome := map[string]string{}
	for _, m := range ev.Plan.Members {
		outcome[m.Runbook] = m.Outcome
	}
	changesNothing := req.DryRun || req.PrecheckOnly || req.Mode == workflows.ModeTabletop
	byName := map[string]genMember{}
	for _, m := range members {
		byName[m.name] = m
	}
	for _, m := range members {
		ran := 0
		for _, s := range m.steps {
			ran += h.rec.count(s.id)
			if n := h.rec.count(s.id); n > 0 && changesNothing {
				bad("P1 step %s of member %s ran %d time(s) in a plan that changes nothing (%s)", s.id, m.name, n, req.ModeLabel())
			}
			if h.rec.count(s.id) > 0 && req.Mode == workflows.ModeDrill && s.namespace != "" && h.rec.args[s.id]["namespace"] != "drill-app" {
				bad("P1 the drill's step %s touched namespace %v", s.id, h.rec.args[s.id]["namespace"])
			}
		}
		if ev.Outcome == workflows.RunSucceeded && !m.optional && outcome[m.name] != workflows.RunSucceeded {
			bad("P2 the plan succeeded but required member %s ended %s", m.name, outcome[m.name])
		}
		if ran > 0 {
			for _, a := range m.after {
				if !byName[a].optional && outcome[a] != workflows.RunSucceeded {
					bad("P3 member %s ran steps although required member %s it comes after ended %s", m.name, a, outcome[a])
				}
			}
		}
	}
	for id, mev := range memberRuns {
		name := strings.TrimPrefix(id, testWorkflowID+".")
		name, _, _ = strings.Cut(name, ".")
		if !mev.DeclaredAt.Equal(ev.DeclaredAt) {
			bad("P4 member run %s's RTO clock starts at %s, not at the plan's declaration %s", id, mev.DeclaredAt, ev.DeclaredAt)
		}
		state, _ := stepsAndRetries(mev)
		for _, s := range byName[name].steps {
			rec := state[s.id]
			if g := s.gate; g != nil && req.Mode != workflows.ModeTabletop && rec.State == workflows.StateSucceeded {
				need := max(g.Min, 1)
				if g.Separate && mev.RequestProof == nil && need < 2 {
					need = 2
				}
				var who []string
				for _, a := range rec.Approvals {
					if a.Decision == "approved" && a.Proof != nil && slices.Contains([]string{"alice", "bob"}, a.By) && !(g.Separate && a.By == req.RequestedBy) && !slices.Contains(who, a.By) {
						who = append(who, a.By)
					}
				}
				if len(who) < need {
					bad("P4 member run %s: gated step %s succeeded with %d proven approval(s) of %d needed: %+v", id, s.id, len(who), need, rec.Approvals)
				}
			}
		}
	}
	for _, m := range members {
		var allowed int
		for _, s := range m.steps {
			allowed = s.attempts
			var asked int
			for id, mev := range memberRuns {
				if strings.HasPrefix(id, testWorkflowID+"."+m.name) {
					asked++
					for _, e := range mev.Events {
						if e.Kind == workflows.MsgRetry && e.Step == s.id {
							asked++
						}
					}
				}
			}
			if n := h.rec.count(s.id); n > allowed*max(asked, 1) {
				bad("P4 step %s ran %d times; %d attempt(s) in %d run(s) or operator retries allow %d", s.id, n, allowed, asked, allowed*max(asked, 1))
			}
		}
	}
	h.rec.mu.Lock()
	stored := h.rec.stored
	h.rec.mu.Unlock()
	if stored != 1+len(memberRuns) {
		bad("P5 %d evidence stores for the plan and %d member run(s)", stored, len(memberRuns))
	}
	return out
}
