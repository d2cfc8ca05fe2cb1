package workflows_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

// The property test hunts for the next hole instead of replaying the
// scenarios someone thought of: it generates runbooks (gates with quorum and
// separation, needs, failure policies, drills with mappings and teardowns),
// a start in a random mode (failover, drill, dry run, pre-check only,
// tabletop; signed or not), and a random sequence of operator messages from
// random principals — signed, unsigned, forged (another's key), relabelled
// (one person's signature under another's name), replayed — sent as updates
// and as signals, interleaved with activity failures and cancellations.
// After every sequence it checks the invariants of issue 24 (see
// checkInvariants). Each sequence is seeded: a failure prints the seed, and
// -property.seed=N replays exactly that one.
var (
	propertyRuns = flag.Int("property.n", 1500, "sequences the property test generates")
	propertySeed = flag.Uint64("property.seed", 0, "run only the sequence of this seed")
)

func TestPropertyNoSequenceBreaksTheGuarantees(t *testing.T) {
	seeds := make([]uint64, 0, *propertyRuns)
	if *propertySeed != 0 {
		seeds = append(seeds, *propertySeed)
	} else {
		for i := 1; i <= *propertyRuns; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	// Two halves in parallel (odd and even seeds): the sequences are
	// independent, and make test has two cores.
	for half := range 2 {
		t.Run(fmt.Sprintf("seeds %d of 2", half+1), func(t *testing.T) {
			t.Parallel()
			var st propertyStats
			var mine []uint64
			for i, seed := range seeds {
				if i%2 == half {
					mine = append(mine, seed)
				}
			}
			defer func() {
				t.Logf("%d sequences: %d steps ran, %d gates passed on proven approvals, %d gates skipped by their approvers, %d signals refused, %d unsafe drills refused, outcomes %v",
					len(mine), st.ran, st.passed, st.skipped, st.refused, st.refusedDrills, st.outcomes)
			}()
			for _, seed := range mine {
				if !runSequence(t, seed, &st) {
					t.Fatalf("sequence %d broke a guarantee: replay it with go test ./workflows/ -run TestPropertyNoSequence -property.seed=%d -v", seed, seed)
				}
			}
		})
	}
}

// people of the generated runbooks: mallory and eve hold no allowed key
// (mallory has a key the worker does not know; eve has none).
var propertyPeople = []string{"alice", "bob", "carol", "dan", "mallory", "eve"}

// genStep is a generated step and what the invariants need to know of it.
type genStep struct {
	id, layer, action string
	needs             []string
	gate              *runbooks.Approval
	onFailure         string
	attempts          int
	namespace         string
}

// genDrill is the generated drill section: its mappings are safe, or chain,
// map a namespace to itself or share a destination; its teardown deletes
// the drill namespace or a production one; its DNS steps are skipped or
// pointed at a drill record.
type genDrill struct {
	safe     bool // mappings that neither chain, self-map nor share, and a teardown of the drill namespace
	override bool // the DNS steps run in a drill against drill.example.com
}

// genRunbook is a random runbook of 2–6 steps over four layers, with a drill section.
func genRunbook(rng *rand.Rand) (string, []genStep, genDrill) {
	layers := []string{"storage", "workloads", "edge"}
	var steps []genStep
	n := 2 + rng.IntN(5)
	for i := 0; i < n; i++ {
		s := genStep{id: fmt.Sprintf("s%d", i), layer: layers[min(i*len(layers)/n, len(layers)-1)], attempts: 1 + rng.IntN(2)}
		switch rng.IntN(4) {
		case 0:
			s.action = "http.check"
		case 1:
			s.action, s.namespace = "kube.scale", "app"
		case 2:
			s.action = "cloudflare.dnsSwitch"
		default:
			s.action = "manual.task"
		}
		if s.action == "cloudflare.dnsSwitch" {
			s.layer = "edge"
		}
		if rng.IntN(2) == 0 {
			s.gate = &runbooks.Approval{From: []string{[]string{"ic", "dba", "ic"}[rng.IntN(3)]}, Min: 1 + rng.IntN(2), Separate: rng.IntN(2) == 0}
			if s.gate.From[0] == "dba" {
				s.gate.Min = 1
			}
		}
		s.onFailure = []string{"pause", "pause", "continue", "abort"}[rng.IntN(4)]
		for _, prev := range steps {
			if rng.IntN(3) == 0 && slices.Index(layers, prev.layer) <= slices.Index(layers, s.layer) {
				s.needs = append(s.needs, prev.id)
			}
		}
		steps = append(steps, s)
	}
	slices.SortStableFunc(steps, func(a, b genStep) int { return slices.Index(layers, a.layer) - slices.Index(layers, b.layer) })
	var b strings.Builder
	b.WriteString("  layers:\n")
	for _, l := range layers {
		first := true
		for _, s := range steps {
			if s.layer != l {
				continue
			}
			if first {
				fmt.Fprintf(&b, "    %s:\n", l)
				first = false
			}
			fmt.Fprintf(&b, "      - id: %s\n        action: %s\n        retry: {attempts: %d}\n        onFailure: %s\n", s.id, s.action, s.attempts, s.onFailure)
			switch s.action {
			case "http.check":
				b.WriteString("        with: {url: \"http://x\"}\n")
			case "kube.scale":
				b.WriteString("        with: {target: dr, namespace: app, replicas: {api: 2}}\n")
			case "cloudflare.dnsSwitch":
				b.WriteString("        with: {zone: example.com, record: a.example.com, to: b.example.com}\n")
			case "manual.task":
				b.WriteString("        with: {instructions: \"do it\"}\n")
			}
			if len(s.needs) > 0 {
				fmt.Fprintf(&b, "        needs: [%s]\n", strings.Join(s.needs, ", "))
			}
			if g := s.gate; g != nil {
				fmt.Fprintf(&b, "        approval: {from: [%s], min: %d, separate: %t}\n", g.From[0], g.Min, g.Separate)
			}
		}
	}
	// One drill section in eight maps unsafely, one in ten tears down a
	// production namespace.
	mapping, teardown := "{app: drill-app}", "drill-app"
	if rng.IntN(8) == 0 {
		mapping = []string{"{other: app, app: drill-app}", "{app: app}", "{app: drill-app, other: drill-app}"}[rng.IntN(3)]
	}
	if rng.IntN(10) == 0 {
		teardown = []string{"app", "other"}[rng.IntN(2)]
	}
	d := genDrill{safe: mapping == "{app: drill-app}" && teardown == "drill-app", override: rng.IntN(2) == 0}
	var skips, overrides []string
	for _, s := range steps {
		if s.action == "cloudflare.dnsSwitch" && d.override {
			overrides = append(overrides, s.id+": {record: drill.example.com}")
		} else if s.action == "cloudflare.dnsSwitch" {
			skips = append(skips, s.id)
		}
	}
	fmt.Fprintf(&b, "  drill:\n    namespaceMappings: %s\n    skip: [%s]\n    with: {%s}\n    teardown:\n      - {id: drop, action: kube.deleteNamespace, with: {target: dr, namespace: %s}}\n",
		mapping, strings.Join(skips, ", "), strings.Join(overrides, ", "), teardown)
	return book("60m", b.String()), steps, d
}

// propertyStats says what the sequences exercised, so a generator that
// stopped reaching the gates shows.
type propertyStats struct {
	ran, passed, skipped, refused, refusedDrills int
	outcomes                                     map[string]int
}

// runSequence runs one generated sequence and checks the invariants.
func runSequence(t *testing.T, seed uint64, st *propertyStats) (ok bool) {
	rng := rand.New(rand.NewPCG(seed, 24))
	text, steps, drill := genRunbook(rng)
	var report strings.Builder
	h := newHarness(t)
	h.env.SetTestTimeout(30 * time.Second)
	mode := []string{workflows.ModeFailover, workflows.ModeDrill, workflows.ModeTabletop, "dryRun", "precheckOnly"}[rng.IntN(5)]
	req := h.request(text, mode, "alice")
	switch mode {
	case "dryRun", "precheckOnly":
		req.Mode = []string{workflows.ModeFailover, workflows.ModeDrill}[rng.IntN(2)]
		req.DryRun, req.PrecheckOnly = mode == "dryRun", mode == "precheckOnly"
	}
	signedStartOK := rng.IntN(2) == 0
	tampered := ""
	if signedStartOK {
		req = signedStart(h, req)
		// One signed start in six is copied with one field changed: it must not start.
		if rng.IntN(6) == 0 {
			earlier := h.env.Now().Add(-time.Hour)
			switch tampered = []string{"dryRun", "precheckOnly", "declaredAt", "reenactmentOf"}[rng.IntN(4)]; tampered {
			case "dryRun":
				req.DryRun = !req.DryRun
			case "precheckOnly":
				req.PrecheckOnly = !req.PrecheckOnly
			case "declaredAt":
				req.DeclaredAt = &earlier
			case "reenactmentOf":
				req.ReenactmentOf = "lifeboat-test-book-failover-abc123"
			}
		}
	}
	for _, s := range steps {
		if rng.IntN(4) == 0 {
			failures := 1 + rng.IntN(3)
			h.rec.script[s.id] = fails(failures)
		}
	}
	var sentSigned []workflows.Signable
	kinds := []string{workflows.MsgApprove, workflows.MsgApprove, workflows.MsgReject, workflows.MsgSkip, workflows.MsgRetry, workflows.MsgAck, workflows.MsgAbort, workflows.MsgNote}
	for i := 0; i < 4+rng.IntN(12); i++ {
		at := time.Duration(1+rng.IntN(50)) * time.Minute
		kind := kinds[rng.IntN(len(kinds))]
		step := steps[rng.IntN(len(steps))].id
		by := propertyPeople[rng.IntN(len(propertyPeople))]
		how := rng.IntN(6) // 0-2 signed by by, 3 unsigned, 4 signed by someone else, 5 replay
		asSignal := rng.IntN(2) == 0
		aimed := rng.IntN(10) < 7
		pick := rng.Uint64()
		h.at(at, func() {
			// Most messages answer what the run waits for (an operator, or an
			// attacker who reads the status); the rest are anything at all.
			if aimed {
				kind, step, by = aim(h, pick, kind, step, by)
			}
			m := operatorMessage(kind, step, by)
			key := by
			switch {
			case how == 3:
				key = ""
			case how == 4:
				key = propertyPeople[(slices.Index(propertyPeople, by)+1)%len(propertyPeople)]
			case how == 5 && len(sentSigned) > 0:
				m, kind = sentSigned[rng.IntN(len(sentSigned))], ""
			}
			if key != "" && testKeys[key] != nil && kind != "" && kind != workflows.MsgNote {
				now := h.env.Now()
				sig, err := proof.SignDecision(workflows.MessageDecision(testWorkflowID, testRunID, m, now), testKeys[key])
				if err == nil {
					m = workflows.WithSigned(m, workflows.Signed{SignedAt: &now, Signature: sig})
					sentSigned = append(sentSigned, m)
				}
			}
			name := msgName(m)
			fmt.Fprintf(&report, "  T+%s %s %s by=%s key=%s signal=%t\n", at, name, step, m.Actor(), key, asSignal)
			if asSignal {
				h.env.SignalWorkflow(name, m)
				return
			}
			h.env.UpdateWorkflow(name, fmt.Sprintf("u-%d", rng.Uint64()), &testsuite.TestUpdateCallback{
				OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}, m)
		})
	}
	if rng.IntN(8) == 0 {
		at := time.Duration(1+rng.IntN(50)) * time.Minute
		fmt.Fprintf(&report, "  T+%s cancel through Temporal\n", at)
		h.at(at, func() { h.env.CancelWorkflow() })
	}
	// Whatever happened, the run ends: a proven abort by the requester.
	h.at(55*time.Minute, func() {
		h.env.SignalWorkflow(workflows.MsgAbort, signedWith(h, workflows.Abort{By: "alice", Reason: "end of sequence"}, "alice", testWorkflowID, testRunID, h.env.Now()))
	})
	h.env.ExecuteWorkflow(workflows.RestoreWorkflowName, req)
	defer func() {
		if !ok {
			t.Logf("seed %d, mode %s (request %+v), signed start %t (changed after signing: %q)\nrunbook:\n%s\nmessages:\n%s", seed, mode,
				struct{ Mode, DryRun, PrecheckOnly any }{req.Mode, req.DryRun, req.PrecheckOnly}, signedStartOK, tampered, text, report.String())
		}
	}()
	if !h.env.IsWorkflowCompleted() {
		t.Errorf("the run did not end")
		return false
	}
	err := h.workflowError()
	if tampered != "" {
		// (1) a signed start copied with one field changed starts nothing
		if err == nil {
			t.Errorf("(1) a signed start with %s changed after signing was not refused: %v", tampered, err)
			return false
		}
		for _, s := range append(steps, genStep{id: "drop"}) {
			if n := h.rec.count(s.id); n > 0 {
				t.Errorf("(1) the tampered start ran step %s %d time(s)", s.id, n)
				return false
			}
		}
		return true
	}
	if !drill.safe {
		// (3) a drill section that reaches production makes the runbook
		// invalid: no run of it starts, whatever the mode
		if err == nil || !strings.Contains(err.Error(), "is invalid") || !strings.Contains(err.Error(), "spec.drill.") {
			t.Errorf("(3) a run whose drill section reaches production was not refused at its start: %v", err)
			return false
		}
		for _, s := range append(steps, genStep{id: "drop"}) {
			if n := h.rec.count(s.id); n > 0 {
				t.Errorf("(3) the refused drill ran step %s %d time(s)", s.id, n)
				return false
			}
		}
		st.refusedDrills++ // an invalid runbook
		return true
	}
	if err != nil {
		t.Errorf("the run failed instead of ending with evidence: %v", err)
		return false
	}
	var ev record.Evidence
	if err := h.env.GetWorkflowResult(&ev); err != nil {
		t.Errorf("no evidence: %v", err)
		return false
	}
	if st.outcomes == nil {
		st.outcomes = map[string]int{}
	}
	st.outcomes[ev.Mode+":"+ev.Outcome]++
	st.refused += ev.RefusedSignals
	for _, s := range steps {
		st.ran += min(h.rec.count(s.id), 1)
		if s.gate != nil {
			for _, r := range ev.Steps {
				if r.ID == s.id && h.rec.count(s.id) > 0 {
					st.passed++
				}
				if r.ID == s.id && r.State == workflows.StateSkipped && len(r.Approvals) > 0 {
					st.skipped++
				}
			}
		}
	}
	problems := checkInvariants(h, req, ev, steps, signedStartOK, drill)
	for _, p := range problems {
		t.Error(p)
	}
	return len(problems) == 0
}

// aim points a message at something the run waits for, chosen by pick:
// an approval gets an approve (or reject, or skip) from someone the status
// says may still approve, or from anyone; a task an ack; a paused step a
// retry or skip.
func aim(h *harness, pick uint64, kind, step, by string) (string, string, string) {
	v, err := h.env.QueryWorkflow(workflows.QueryStatus)
	if err != nil {
		return kind, step, by
	}
	var st workflows.Status
	if v.Get(&st) != nil || len(st.Pending) == 0 {
		return kind, step, by
	}
	p := st.Pending[pick%uint64(len(st.Pending))]
	pick /= 7
	switch p.Kind {
	case "approval":
		kind = []string{workflows.MsgApprove, workflows.MsgApprove, workflows.MsgApprove, workflows.MsgReject, workflows.MsgSkip}[pick%5]
		if len(p.Approvers) > 0 && pick%3 != 0 {
			by = p.Approvers[(pick/5)%uint64(len(p.Approvers))]
		}
	case "acknowledgement":
		kind = workflows.MsgAck
	case "operator":
		kind = []string{workflows.MsgRetry, workflows.MsgRetry, workflows.MsgSkip}[pick%3]
	}
	return kind, p.Step, by
}

// stepsAndRetries are a run's step records by id and the operators'
// retries of each step.
func stepsAndRetries(ev record.Evidence) (map[string]record.StepRecord, map[string]int) {
	state, retries := map[string]record.StepRecord{}, map[string]int{}
	for _, s := range ev.Steps {
		state[s.ID] = s
	}
	for _, e := range ev.Events {
		if e.Kind == workflows.MsgRetry {
			retries[e.Step]++
		}
	}
	return state, retries
}

// operatorMessage is the message of kind about step from by, as an
// operator sends it (unsigned).
func operatorMessage(kind, step, by string) workflows.Signable {
	switch kind {
	case workflows.MsgApprove:
		return workflows.Approve{Step: step, By: by}
	case workflows.MsgReject:
		return workflows.Reject{Step: step, By: by, Reason: "no"}
	case workflows.MsgSkip:
		return workflows.Skip{Step: step, By: by, Reason: "skip it"}
	case workflows.MsgRetry:
		return workflows.Retry{Step: step, By: by}
	case workflows.MsgAck:
		return workflows.Ack{Step: step, By: by}
	case workflows.MsgAbort:
		return workflows.Abort{By: by, Reason: "stop"}
	}
	return workflows.Note{By: by, Text: "a note"}
}

func msgName(m workflows.Signable) string {
	switch m.(type) {
	case workflows.Approve:
		return workflows.MsgApprove
	case workflows.Reject:
		return workflows.MsgReject
	case workflows.Skip:
		return workflows.MsgSkip
	case workflows.Retry:
		return workflows.MsgRetry
	case workflows.Ack:
		return workflows.MsgAck
	case workflows.Abort:
		return workflows.MsgAbort
	}
	return workflows.MsgNote
}

// gatePeople is who may decide at gate g of the generated runbooks.
func gatePeople(g *runbooks.Approval) []string {
	return map[string][]string{"ic": {"alice", "bob", "dan"}, "dba": {"carol"}}[g.From[0]]
}

// checkInvariants returns every guarantee the finished run broke:
//  1. no gate passes (its step runs) and no gate is skipped without its
//     quorum of proven approvers under its separation rule;
//  2. no step runs whose needs did not succeed (or were skipped);
//  3. a dry run or pre-check never invokes a step's action, and a drill
//     never invokes an edge step or touches a namespace that is not its own;
//  4. the run ends with stored evidence whose outcome agrees with its
//     steps (succeeded ⇒ every step that is not onFailure: continue
//     succeeded or was skipped);
//  5. no action runs more often than its attempts times the retries the
//     operators asked for (plus one);
//  6. no signature's private half or planted secret reaches the evidence
//     (the evidence holds statements and armored signatures only).
func checkInvariants(h *harness, req workflows.Request, ev record.Evidence, steps []genStep, signedStart bool, drill genDrill) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	state, retries := stepsAndRetries(ev)
	drillSkips := map[string]bool{}
	for _, s := range steps {
		if s.action == "cloudflare.dnsSwitch" && !drill.override {
			drillSkips[s.id] = true
		}
	}
	for _, s := range steps {
		rec := state[s.id]
		ran := h.rec.count(s.id)
		// (1) gates
		if g := s.gate; g != nil && req.Mode != workflows.ModeTabletop && (ran > 0 || rec.State == workflows.StateSkipped && !(req.Mode == workflows.ModeDrill && drillSkips[s.id])) {
			need := max(g.Min, 1)
			if g.Separate && !signedStart && need < 2 {
				need = 2
			}
			count := func(decision string) int {
				var who []string
				for _, a := range rec.Approvals {
					if a.Decision == decision && a.Proof != nil && slices.Contains(gatePeople(g), a.By) && !(g.Separate && a.By == req.RequestedBy) && !slices.Contains(who, a.By) {
						who = append(who, a.By)
					}
				}
				return len(who)
			}
			if count("approved") < need && count(workflows.DecisionSkip) < need {
				bad("(1) step %s (%s) ended %s, ran %d time(s), with %d proven approvals and %d proven skips of %d needed: %+v",
					s.id, s.action, rec.State, ran, count("approved"), count(workflows.DecisionSkip), need, rec.Approvals)
			}
		}
		// (2) needs
		if ran > 0 {
			for _, n := range s.needs {
				if st := state[n].State; st != workflows.StateSucceeded && st != workflows.StateSkipped {
					bad("(2) step %s ran although its need %s ended %s", s.id, n, st)
				}
			}
		}
		// (3) scope
		if ran > 0 && (req.DryRun || req.PrecheckOnly || req.Mode == workflows.ModeTabletop) {
			bad("(3) step %s's action ran %d time(s) in a run that changes nothing (%s)", s.id, ran, req.ModeLabel())
		}
		if ran > 0 && req.Mode == workflows.ModeDrill && drillSkips[s.id] {
			bad("(3) the drill ran edge step %s", s.id)
		}
		if ran > 0 && req.Mode == workflows.ModeDrill && s.action == "cloudflare.dnsSwitch" && h.rec.args[s.id]["record"] != "drill.example.com" {
			bad("(3) the drill's DNS step %s switched record %v", s.id, h.rec.args[s.id]["record"])
		}
		if ran > 0 && req.Mode == workflows.ModeDrill && s.namespace != "" && h.rec.args[s.id]["namespace"] != "drill-app" {
			bad("(3) the drill's step %s touched namespace %v", s.id, h.rec.args[s.id]["namespace"])
		}
		// (5) no side effect more often than asked
		if limit := s.attempts * (1 + retries[s.id]); ran > limit {
			bad("(5) step %s ran %d times; %d attempt(s) and %d operator retries allow %d", s.id, ran, s.attempts, retries[s.id], limit)
		}
		// (4) outcome agrees with the steps
		if ev.Outcome == workflows.RunSucceeded && !req.DryRun && !req.PrecheckOnly && s.onFailure != "continue" && rec.State != workflows.StateSucceeded && rec.State != workflows.StateSkipped {
			bad("(4) the run says succeeded but step %s ended %s", s.id, rec.State)
		}
	}
	if req.Mode == workflows.ModeDrill && h.rec.count("drop") > 0 && h.rec.args["drop"]["namespace"] != "drill-app" {
		bad("(3) the teardown deleted %v", h.rec.args["drop"]["namespace"])
	}
	h.rec.mu.Lock()
	stored := h.rec.stored
	h.rec.mu.Unlock()
	if stored != 1 {
		bad("(4) the evidence was stored %d times", stored)
	}
	if md := ev.Markdown(); strings.Contains(md, "PRIVATE KEY") {
		bad("(6) a private key reached the evidence")
	}
	return out
}
