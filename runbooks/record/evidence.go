package record

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// Evidence is the record one run leaves behind (DESIGN §4). The workflow
// returns it, evidence.store writes it as JSON and Markdown, and it can be
// rebuilt from the workflow's history alone.
type Evidence struct {
	ID          string     `json:"id"`
	WorkflowID  string     `json:"workflowId"`
	RunID       string     `json:"runId"`
	Runbook     RunbookRef `json:"runbook"`
	Mode        string     `json:"mode"`
	Scope       string     `json:"scope"`
	Disaster    string     `json:"disaster,omitempty"`
	Strategy    string     `json:"strategy,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	RequestedBy string     `json:"requestedBy,omitempty"`
	// RequestProof proves RequestedBy (a signed start); nil: unproven.
	RequestProof *proof.Proof `json:"requestProof,omitempty"`
	// RequestClient is the Temporal client identity the start said it came from.
	RequestClient string `json:"requestClient,omitempty"`
	// AllowedSigners are the keys in force for this run (recorded when it
	// resolved its runbook): every Proof in the record verifies against them.
	AllowedSigners []proof.AllowedSigner `json:"allowedSigners,omitempty"`
	// Outcome is succeeded, failed, aborted, or "aborted (cancelled)" for a
	// run cancelled through Temporal.
	Outcome       string `json:"outcome"`
	OutcomeReason string `json:"outcomeReason,omitempty"`
	// Level is the validation level reached (seed 004 §20), derived from what
	// ran and passed; LevelReason says why.
	Level       string    `json:"level,omitempty"`
	LevelReason string    `json:"levelReason,omitempty"`
	DeclaredAt  time.Time `json:"declaredAt"`
	StartedAt   time.Time `json:"startedAt"`
	EndedAt     time.Time `json:"endedAt"`

	RPOTarget runbooks.Duration `json:"rpoTarget"`
	// RPOActual, RecoveryPoint and RecoveryPointName are the worst of
	// RPOSources: the data restored is no newer than its oldest part.
	RPOActual         *runbooks.Duration `json:"rpoActual,omitempty"`
	RecoveryPoint     *time.Time         `json:"recoveryPoint,omitempty"`
	RecoveryPointName string             `json:"recoveryPointName,omitempty"`
	// RPOSources are the recovery points the run's rpoSource steps
	// measured (a backup's start, a replica's last replayed commit), one
	// per step, in the runbook's order.
	RPOSources  []RPOSource       `json:"rpoSources,omitempty"`
	RTOTarget   runbooks.Duration `json:"rtoTarget"`
	RTOActual   runbooks.Duration `json:"rtoActual"`
	RTOBreached bool              `json:"rtoBreached"`
	// Teardown is how long a drill's teardown took after the recovery ended;
	// it is not part of RTOActual.
	Teardown *runbooks.Duration `json:"teardown,omitempty"`

	Steps        []StepRecord `json:"steps"`
	FailedChecks []string     `json:"failedChecks,omitempty"`
	Skipped      []string     `json:"skipped,omitempty"`
	Notes        []NoteRecord `json:"notes,omitempty"`
	// RefusedSignals counts every refused signal; Notes and Events keep the
	// last few of them.
	RefusedSignals int           `json:"refusedSignals,omitempty"`
	Events         []EventRecord `json:"events,omitempty"`
	Invariant      string        `json:"invariant"`
	NextDrill      *time.Time    `json:"nextDrill,omitempty"`
	// Plan is a recovery plan's run: each member's run (with its own
	// evidence) and the critical path as it ran.
	Plan *PlanRecord `json:"plan,omitempty"`
	// PlanRun is, for a member of a recovery plan, the plan's run: its
	// RequestProof is the plan's signed start.
	PlanRun string `json:"planRun,omitempty"`
	// Failback links a failback to the failover it undid.
	Failback *runbooks.FailbackInfo `json:"failback,omitempty"`
	// Prechecks are phase 0's pre-flight checks, with any override.
	Prechecks []PrecheckRecord `json:"prechecks,omitempty"`
	// DryRun is what a dry run found: nothing was changed.
	DryRun *runbooks.DryRun `json:"dryRun,omitempty"`
	// Seal chains the stored record to the previous record of the same
	// runbook and lists a digest per field; the worker's signature of the
	// whole file is beside it (FILE.sig). Set by evidence.store.
	Seal *Seal `json:"seal,omitempty"`
}

// EvidenceNamespace is the SSH signature namespace of the worker's
// signature of an evidence file: `ssh-keygen -Y verify -n lifeboat-evidence
// -I lifeboat-worker -f allowed_signers -s FILE.sig < FILE` checks it.
const EvidenceNamespace = "lifeboat-evidence"

// WorkerPrincipal is the principal of the worker's key in allowed_signers.
const WorkerPrincipal = "lifeboat-worker"

// Seal is what makes a stored evidence record tamper-evident.
type Seal struct {
	// Previous is the file name of the previous record of the same runbook
	// in the same evidence directory ("" for the first), PreviousHash its
	// sha256: deleting or editing that record breaks the link.
	Previous     string `json:"previous,omitempty"`
	PreviousHash string `json:"previousHash,omitempty"`
	// Position is the record's place in its runbook's chain (1 for the
	// first; 0 for a checkpoint, or a record sealed before positions).
	Position int `json:"position,omitempty"`
	// Fields holds a sha256 of each top-level field and each step, so a
	// verifier names what was edited.
	Fields map[string]string `json:"fields"`
	// Signer is the fingerprint of the worker key that signed the file
	// ("" when the worker has no key: the record is then unsigned).
	Signer string `json:"signer,omitempty"`
	// Checkpoint marks a record stored while the run was in progress: it
	// is signed, but not chained (the final record replaces it).
	Checkpoint bool `json:"checkpoint,omitempty"`
	// Files are the sha256 of the files stored beside the record (its
	// Markdown and timeline picture, see Companions) by suffix: signed with
	// the record, they verify as written whatever a later lifeboat renders.
	Files map[string]string `json:"files,omitempty"`
}

// Companions are the files the evidence store keeps beside a record
// STEM.json, by suffix: the Markdown (linking the picture and saying how to
// verify) and the timeline picture. They are renderings of the record
// alone (never of its seal), so the seal can list their digests.
func (e Evidence) Companions(stem string) map[string]string {
	return map[string]string{".md": e.MarkdownBeside(stem), ".svg": e.TimelineSVG()}
}

// PlanRecord is what a recovery plan's evidence adds: its members' runs.
type PlanRecord struct {
	Members []MemberRecord `json:"members"`
	// CriticalPath is the chain of members that took longest (gate waits
	// included), as it ran; CriticalPathTook its length.
	CriticalPath     []string          `json:"criticalPath"`
	CriticalPathTook runbooks.Duration `json:"criticalPathTook"`
}

// MemberRecord is one member of a plan's run. Its own evidence (lifeboat
// evidence WORKFLOWID) holds its steps, approvals and RPO.
type MemberRecord struct {
	Runbook    string `json:"runbook"`
	Optional   bool   `json:"optional,omitempty"`
	WorkflowID string `json:"workflowId,omitempty"`
	// Hash is the runbook text the member ran (as its evidence names it).
	Hash        string            `json:"hash,omitempty"`
	Outcome     string            `json:"outcome"`
	Level       string            `json:"level,omitempty"`
	RTOTarget   runbooks.Duration `json:"rtoTarget"`
	RTOActual   runbooks.Duration `json:"rtoActual,omitempty"`
	RTOBreached bool              `json:"rtoBreached,omitempty"`
}

// RPOSource is one recovery point a step measured, and the RPO it gives
// against the declared disaster.
type RPOSource struct {
	Step          string            `json:"step"`
	Name          string            `json:"name,omitempty"`
	RecoveryPoint time.Time         `json:"recoveryPoint"`
	RPO           runbooks.Duration `json:"rpo"`
}

// RunbookRef names the exact runbook text that ran.
type RunbookRef struct {
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Hash        string `json:"hash"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
}

// StepRecord is one step's line in the timeline.
type StepRecord struct {
	ID     string `json:"id"`
	Layer  string `json:"layer"`
	Action string `json:"action"`
	// State is succeeded, failed, skipped, rejected, aborted, blocked or not-run.
	State    string            `json:"state"`
	Started  *time.Time        `json:"started,omitempty"`
	Ended    *time.Time        `json:"ended,omitempty"`
	Duration runbooks.Duration `json:"duration"`
	RTOShare float64           `json:"rtoShare"`
	Attempts int               `json:"attempts"`
	Error    string            `json:"error,omitempty"`
	Summary  string            `json:"summary,omitempty"`
	Outputs  map[string]any    `json:"outputs,omitempty"`
	// Inputs are the earlier steps' outputs the arguments used, by reference
	// (steps.ID.outputs.NAME → value).
	Inputs       map[string]any    `json:"inputs,omitempty"`
	Approvals    []ApprovalRecord  `json:"approvals,omitempty"`
	ApprovalWait runbooks.Duration `json:"approvalWait,omitempty"`
	SkippedBy    string            `json:"skippedBy,omitempty"`
	SkipReason   string            `json:"skipReason,omitempty"`
}

// ApprovalRecord is one decision at an approval gate or acknowledgement.
type ApprovalRecord struct {
	By       string    `json:"by"`
	Decision string    `json:"decision"` // approved, rejected, acknowledged
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
	// Proof is the approver's signature; nil: By is only what the client said.
	Proof *proof.Proof `json:"proof,omitempty"`
	// Client is the sender's Temporal client identity, as it said.
	Client string `json:"client,omitempty"`
}

// NoteRecord is an operator's note.
type NoteRecord struct {
	At   time.Time `json:"at"`
	By   string    `json:"by,omitempty"`
	Text string    `json:"text"`
}

// EventRecord is something that happened to the run as a whole (an operator
// message, a refused signal, the RTO breach, an escalation).
type EventRecord struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Step string    `json:"step,omitempty"`
	By   string    `json:"by,omitempty"`
	Text string    `json:"text"`
	// Proof is the signature of the operator's message (start, abort, skip,
	// retry); nil: By is only what the client said.
	Proof  *proof.Proof `json:"proof,omitempty"`
	Client string       `json:"client,omitempty"`
}

// Markdown renders the evidence for people and auditors.
func (e Evidence) Markdown() string { return e.MarkdownBeside("") }

// MarkdownBeside is the Markdown stored beside STEM.json: it shows the
// timeline picture STEM.svg and names the files to verify ("" renders it
// for a terminal, without them).
func (e Evidence) MarkdownBeside(stem string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Restore evidence %s\n\n", e.ID)
	w("| | |\n|---|---|\n")
	w("| Runbook | %s v%d (`%s`) |\n", e.Runbook.Name, e.Runbook.Version, e.Runbook.Hash)
	w("| Mode | %s |\n| Outcome | **%s**%s |\n", e.Mode, e.Outcome, paren(e.OutcomeReason))
	if e.Level != "" {
		w("| Validation level | %s%s |\n", e.Level, paren(e.LevelReason))
	}
	w("| Scope | %s — %s |\n", e.Scope, e.Runbook.Description)
	w("| Requested by | %s%s |\n", proof.Actor(e.RequestedBy, e.RequestProof, e.RequestClient), paren(e.Reason))
	w("| Workflow | %s / %s |\n", e.WorkflowID, e.RunID)
	if f := e.Failback; f != nil {
		w("| Failback of | %s (evidence %s, runbook `%s`; `lifeboat evidence %s`) |\n", f.Of, runbooks.OrDash(f.OfEvidence), runbooks.OrDash(f.OfHash), f.Of)
		if len(f.Manual) > 0 {
			w("| Undone by hand | %s (manual tasks: lifeboat cannot reverse them) |\n", strings.Join(f.Manual, ", "))
		}
		if len(f.NothingToUndo) > 0 {
			w("| Nothing to undo | %s |\n", strings.ReplaceAll(strings.Join(f.NothingToUndo, "; "), "|", "\\|"))
		}
	}
	if e.PlanRun != "" {
		w("| Plan | member of plan run %s (`lifeboat evidence %s`) |\n", e.PlanRun, e.PlanRun)
	}
	w("| Declared | %s |\n| Ended | %s |\n", e.DeclaredAt.UTC().Format(time.RFC3339), e.EndedAt.UTC().Format(time.RFC3339))
	rpo := "not measured (no rpoSource step succeeded)"
	if e.RPOActual != nil {
		at := "—"
		if e.RecoveryPoint != nil {
			at = e.RecoveryPoint.UTC().Format(time.RFC3339)
		}
		rpo = fmt.Sprintf("%s (recovery point %s, %s)", e.RPOActual.Readable(), runbooks.OrDash(e.RecoveryPointName), at)
		if len(e.RPOSources) > 1 {
			var each []string
			for _, src := range e.RPOSources {
				each = append(each, fmt.Sprintf("%s %s (%s, %s)", src.Step, src.RPO.Readable(), runbooks.OrDash(src.Name), src.RecoveryPoint.UTC().Format(time.RFC3339)))
			}
			rpo += ", the worst of: " + strings.Join(each, "; ")
		}
	}
	if e.Plan != nil {
		w("| RPO | in each member's evidence |\n")
	} else {
		w("| RPO target | <= %s |\n| Actual RPO | %s |\n", e.RPOTarget, rpo)
	}
	w("| RTO target | <= %s |\n| Actual RTO | %s (breached: %s) |\n", e.RTOTarget, e.RTOActual.Readable(), runbooks.YesNo(e.RTOBreached))
	if e.Teardown != nil {
		w("| Teardown | %s (after the recovery; not part of the RTO) |\n", e.Teardown.Readable())
	}
	if e.NextDrill != nil {
		w("| Next drill | %s |\n", e.NextDrill.UTC().Format("2006-01-02"))
	}
	if stem != "" {
		w("\n![Timeline of the run: steps by layer against the RTO deadline](%s.svg)\n", stem)
	}
	w("\n## Timeline\n\n| T+ | Layer / step | Action | State | Duration | RTO share | Attempts | Approvals / notes |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range e.Steps {
		at := "—"
		if s.Started != nil {
			at = clock(s.Started.Sub(e.DeclaredAt))
		}
		w("| %s | %s/%s | %s | %s | %s | %.1f%% | %d | %s |\n", at, s.Layer, s.ID, s.Action, stepStateText(e.Mode, s.State), s.Duration.Readable(), s.RTOShare*100, s.Attempts, stepDetail(s))
	}
	section := func(title string, items []string) {
		w("\n## %s\n\n", title)
		if len(items) == 0 {
			w("None.\n")
		}
		for _, it := range items {
			w("- %s\n", it)
		}
	}
	if p := e.Plan; p != nil {
		w("\n## Members\n\n| Member | Outcome | Level | RTO actual / target | Evidence |\n|---|---|---|---|---|\n")
		for _, m := range p.Members {
			optional := ""
			if m.Optional {
				optional = " (optional)"
			}
			evidence := "—"
			if m.WorkflowID != "" {
				evidence = fmt.Sprintf("`lifeboat evidence %s` (`%s`)", m.WorkflowID, runbooks.OrDash(m.Hash))
			}
			breached := ""
			if m.RTOBreached {
				breached = " **breached**"
			}
			w("| %s%s | %s | %s | %s / %s%s | %s |\n", m.Runbook, optional, m.Outcome, runbooks.OrDash(m.Level), m.RTOActual.Readable(), m.RTOTarget, breached, evidence)
		}
		w("\nCritical path as it ran: %s (%s)\n", strings.Join(p.CriticalPath, " → "), p.CriticalPathTook.Readable())
	}
	if len(e.Prechecks) > 0 {
		passed := 0
		var lines []string
		for _, c := range e.Prechecks {
			switch {
			case c.OK:
				passed++
				lines = append(lines, fmt.Sprintf("%s %s: passed%s", c.ID, c.Name, dashed(c.Message)))
			case c.Override != nil:
				lines = append(lines, fmt.Sprintf("%s %s: FAILED — %s; **overridden** by %s: %s", c.ID, c.Name, c.Message,
					proof.Actor(c.Override.By, c.Override.Proof, c.Override.Client), c.Override.Text))
			case c.Advisory:
				lines = append(lines, fmt.Sprintf("%s %s: failed (advisory, the run went on) — %s", c.ID, c.Name, c.Message))
			default:
				lines = append(lines, fmt.Sprintf("%s %s: FAILED — %s; fix: %s", c.ID, c.Name, c.Message, runbooks.OrDash(c.Fix)))
			}
		}
		w("\n## Pre-flight checks\n\n%d of %d passed.\n", passed, len(e.Prechecks))
		for _, l := range lines {
			w("- %s\n", l)
		}
	}
	if d := e.DryRun; d != nil {
		w("\n## Dry run: what the run would change (nothing was changed)\n\n| Step | What | Now | Would be | Note |\n|---|---|---|---|---|\n")
		for _, c := range d.Changes {
			w("| %s | %s | %s | %s | %s |\n", c.Step, c.What, runbooks.OrDash(c.Before), runbooks.OrDash(c.After), runbooks.OrDash(c.Note))
		}
		if len(d.Unchanged) > 0 {
			w("\nChanges nothing: %s.\n", strings.Join(d.Unchanged, ", "))
		}
		for _, e := range d.Errors {
			w("\n**Could not be dry-run:** %s\n", e)
		}
		w("\nPlanned: critical path %s of RTO %s (%s).\n", d.Plan.Estimate, d.Plan.RTO, map[bool]string{true: "fits", false: "EXCEEDS the RTO"}[d.Plan.Fits])
	}
	section("Failed checks", e.FailedChecks)
	section("Skipped", e.Skipped)
	var notes []string
	for _, n := range e.Notes {
		notes = append(notes, fmt.Sprintf("%s %s: %s", n.At.UTC().Format("15:04:05"), runbooks.OrDash(n.By), n.Text))
	}
	if e.RefusedSignals > 0 {
		notes = append(notes, fmt.Sprintf("%d refused signal(s) in all; the last ones are above", e.RefusedSignals))
	}
	section("Notes", notes)
	var events []string
	for _, ev := range e.Events {
		if e.decisionShown(ev) {
			continue // in the timeline, with its signer
		}
		line := fmt.Sprintf("%s [%s] %s", ev.At.UTC().Format("15:04:05"), ev.Kind, ev.Text)
		if ev.By != "" {
			line += " — " + proof.Actor(ev.By, ev.Proof, ev.Client)
		}
		events = append(events, line)
	}
	section("Events", events)
	w("\n## Recovery invariant\n\n%s\n", e.Invariant)
	w("\n## Verifying this record\n\n")
	record := "RECORD.json"
	if stem != "" {
		record = stem + ".json"
		w("This file and the timeline `%s.svg` render `%s`, which lists their digests in its seal. ", stem, record)
	}
	w("A worker with a signing key signs `%s`: its SSH signature lies beside it as `%s.sig`, and each decision above marked *signed* carries its signer's own signature.\n\n", record, record)
	w("- `lifeboat evidence verify DIR` checks the signature, the seal, every signed decision and the chain of this runbook's records (and, with a Temporal client configured, that no finished run's record is missing).\n")
	w("- By hand, with the worker's public key in `allowed_signers` as `lifeboat-worker`: `ssh-keygen -Y verify -n %s -I %s -f allowed_signers -s FILE.json.sig < FILE.json`.\n", EvidenceNamespace, WorkerPrincipal)
	return b.String()
}

// decisionShown is true for an event the timeline already shows: an
// approval, rejection or acknowledgement recorded on its step. One the run
// recorded without counting it stays: the event says so, the timeline not.
func (e Evidence) decisionShown(ev EventRecord) bool {
	decision := map[string]string{"approve": "approved", "reject": "rejected", "ack": "acknowledged"}[ev.Kind]
	if decision == "" || strings.Contains(ev.Text, "not counted") {
		return false
	}
	for _, s := range e.Steps {
		if s.ID != ev.Step {
			continue
		}
		for _, a := range s.Approvals {
			if a.Decision == decision && a.By == ev.By && a.At.Equal(ev.At) {
				return true
			}
		}
	}
	return false
}

func dashed(s string) string {
	if s == "" {
		return ""
	}
	return " — " + s
}

func stepDetail(s StepRecord) string {
	var parts []string
	for _, a := range s.Approvals {
		parts = append(parts, fmt.Sprintf("%s by %s at %s%s", a.Decision, proof.Actor(a.By, a.Proof, a.Client), a.At.UTC().Format("15:04:05"), paren(a.Comment)))
	}
	if s.ApprovalWait > 0 {
		parts = append(parts, "waited "+s.ApprovalWait.Readable())
	}
	if s.SkipReason != "" {
		parts = append(parts, fmt.Sprintf("skipped by %s: %s", runbooks.OrDash(s.SkippedBy), s.SkipReason))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Inputs)) {
		parts = append(parts, fmt.Sprintf("used %s = %s", k, runbooks.AsText(s.Inputs[k])))
	}
	if s.Summary != "" && !decided(s, s.Summary) {
		parts = append(parts, s.Summary)
	}
	if s.Error != "" {
		parts = append(parts, "error: "+s.Error)
	}
	return strings.ReplaceAll(strings.Join(parts, "; "), "|", "\\|")
}

// decided is true when summary only repeats a decision the step shows
// ("acknowledged", or "acknowledged (tabletop: nothing executed)", after
// "acknowledged by dan …").
func decided(s StepRecord, summary string) bool {
	for _, a := range s.Approvals {
		if strings.HasPrefix(summary, a.Decision) {
			return true
		}
	}
	return false
}

// Derive fills the fields computed from the steps: failed checks and skips.
func (e *Evidence) Derive() {
	e.FailedChecks, e.Skipped = nil, nil
	for _, s := range e.Steps {
		switch s.State {
		case "failed", "rejected", "blocked":
			e.FailedChecks = append(e.FailedChecks, fmt.Sprintf("%s/%s (%s): %s", s.Layer, s.ID, s.Action, runbooks.OrDash(s.Error)))
		case "skipped":
			e.Skipped = append(e.Skipped, fmt.Sprintf("%s/%s: %s (by %s)", s.Layer, s.ID, runbooks.OrDash(s.SkipReason), runbooks.OrDash(s.SkippedBy)))
		}
	}
	sort.Strings(e.Skipped)
}

func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
