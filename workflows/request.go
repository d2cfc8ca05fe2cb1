package workflows

import (
	"fmt"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks"
)

// Modes a run can have.
const (
	ModeFailover = "failover" // the real thing
	ModeDrill    = "drill"    // spec.drill applied: mappings, skips, teardown
	ModeTabletop = "tabletop" // paper drill: every step is acknowledged, nothing runs
	// ModeTeardown runs only spec.drill.teardown: the clean-up of a drill
	// that was terminated or whose worker was lost (lifeboat teardown RUN).
	ModeTeardown = "teardown"
	// ModeFailback undoes a failover (lifeboat failback RUN): the worker
	// builds its runbook from the failover's record (failback.Build) and
	// runs its layers in reverse order, edge first.
	ModeFailback = "failback"
)

// Request starts a RestoreWorkflow. It is small enough to type into the
// Temporal UI's Start Workflow form:
//
//	{"runbook": "case-management-region-failover", "mode": "drill", "reason": "Q3 drill", "requestedBy": "alice"}
type Request struct {
	Runbook string `json:"runbook"`
	// Plan names a recovery plan instead of a runbook (RecoveryPlanWorkflow).
	Plan string `json:"plan,omitempty"`
	// InlinePlan is a whole recovery plan's YAML, used instead of the
	// catalog's (a re-enactment of a plan run), and PinnedMembers the exact
	// text each member ran then (member → runbook YAML); a member not
	// pinned is read from the catalog.
	InlinePlan    string            `json:"inlinePlan,omitempty"`
	PinnedMembers map[string]string `json:"pinnedMembers,omitempty"`
	Mode          string            `json:"mode"`
	Reason        string            `json:"reason,omitempty"`
	RequestedBy   string            `json:"requestedBy,omitempty"`
	// DeclaredAt starts the RTO clock (default: the workflow's start).
	DeclaredAt *time.Time `json:"declaredAt,omitempty"`
	// InlineRunbook is a whole runbook's YAML, used instead of the catalog.
	// The worker runs it only when it is a catalog runbook's text, in a
	// tabletop, or as the re-enactment of ReenactmentOf.
	InlineRunbook string `json:"inlineRunbook,omitempty"`
	// ReenactmentOf is the past run whose recorded text InlineRunbook (or
	// InlinePlan and PinnedMembers) is: the worker reads that run's record
	// and refuses any other text (lifeboat reenact RUN sets it).
	ReenactmentOf string `json:"reenactmentOf,omitempty"`
	// FailIfUnsuccessful makes a run that did not succeed end as a failed
	// workflow (ErrUnsuccessful, the Evidence in the failure's details) instead
	// of a completed one. Schedules set it with --pause-on-failure: Temporal
	// pauses a schedule only when a run fails.
	FailIfUnsuccessful bool `json:"failIfUnsuccessful,omitempty"`
	// Signed proves RequestedBy: the requester's signature of
	// StartDecision (lifeboat sign failover|drill|tabletop prints it).
	Signed
	// Grant is a schedule's: its owner's signature over the runs it starts.
	Grant *ScheduleGrant `json:"scheduleGrant,omitempty"`
	// PlanStart is set by a recovery plan on its members' runs: the plan's
	// own start, which proves the requester of its members.
	PlanStart *PlanStart `json:"planStart,omitempty"`
	// FailbackOf is the failover a failback undoes (mode failback).
	FailbackOf string `json:"failbackOf,omitempty"`
	// TeardownOf is the drill a teardown cleans up (mode teardown): the
	// worker runs the teardown recorded in that drill's own history.
	TeardownOf string `json:"teardownOf,omitempty"`
	// PrecheckOnly runs the pre-flight checks of a failover or drill and
	// ends (lifeboat precheck): nothing else runs, nothing changes.
	PrecheckOnly bool `json:"precheckOnly,omitempty"`
	// DryRun runs the pre-flight checks, then asks every step what it would
	// change, and changes nothing (lifeboat failover|drill NAME --dry-run).
	DryRun bool `json:"dryRun,omitempty"`
}

// Check returns a clear error for a request that cannot start.
func (r Request) Check() error {
	switch r.Mode {
	case ModeFailback:
		if r.FailbackOf == "" {
			return fmt.Errorf(`request: a failback names the failover it undoes: "failbackOf": "RUN"`)
		}
	case ModeFailover, ModeDrill, ModeTabletop, ModeTeardown:
	case "":
		return fmt.Errorf(`request: "mode" is missing: use "failover", "drill" or "tabletop"`)
	default:
		return fmt.Errorf(`request: mode %q is unknown: use "failover", "drill" or "tabletop"`, r.Mode)
	}
	if (r.PrecheckOnly || r.DryRun) && r.Mode != ModeFailover && r.Mode != ModeDrill {
		return fmt.Errorf(`request: precheckOnly and dryRun are for a "failover" or a "drill"`)
	}
	if r.isPlan() && (r.Runbook != "" || r.InlineRunbook != "") {
		return fmt.Errorf(`request: give "plan" or "runbook", not both`)
	}
	if r.isPlan() && r.Mode == ModeTeardown {
		return fmt.Errorf(`request: a recovery plan has no teardown of its own: lifeboat teardown takes each member's run`)
	}
	if r.Mode == ModeTeardown && r.TeardownOf == "" && r.Runbook == "" && r.InlineRunbook == "" {
		return fmt.Errorf(`request: a teardown names the drill it cleans up: "teardownOf": "DRILL-RUN" (lifeboat teardown DRILL-RUN)`)
	}
	if r.Runbook == "" && r.InlineRunbook == "" && !r.isPlan() && r.TeardownOf == "" {
		return fmt.Errorf(`request: "runbook" is missing: name a runbook of the worker's catalog, e.g. {"runbook": "case-management-region-failover", "mode": "drill"}`)
	}
	return nil
}

// RunbookName is the runbook the request names, or for an inline runbook the
// name in its metadata ("" when the text does not parse).
func (r Request) RunbookName() string {
	if r.Plan != "" {
		return r.Plan
	}
	if r.InlinePlan != "" {
		if p, err := runbooks.ParsePlan([]byte(r.InlinePlan), "inline plan"); err == nil {
			return p.Metadata.Name
		}
		return ""
	}
	if r.Runbook != "" || r.InlineRunbook == "" {
		return r.Runbook
	}
	if rb, err := runbooks.Parse([]byte(r.InlineRunbook), "inline runbook"); err == nil {
		return rb.Metadata.Name
	}
	return ""
}

// ModeLabel is the mode a run is listed and recorded under: its mode, or
// for a run that changes nothing "drill-dry-run", "failover-precheck"… so
// no readiness row counts it as a drill or failover.
func (r Request) ModeLabel() string {
	switch {
	case r.DryRun:
		return r.Mode + "-dry-run"
	case r.PrecheckOnly:
		return r.Mode + "-precheck"
	}
	return r.Mode
}

// WorkflowType is the workflow type that runs the request:
// RecoveryPlanWorkflow for a plan, RestoreWorkflow otherwise.
func (r Request) WorkflowType() string {
	if r.isPlan() {
		return RecoveryPlanWorkflowName
	}
	return RestoreWorkflowName
}

// Approve is an approver's yes at a step's approval gate.
type Approve struct {
	Step    string `json:"step"`
	By      string `json:"by"`
	Comment string `json:"comment,omitempty"`
	Signed
}

// Reject is an approver's no; one rejection closes the gate.
type Reject struct {
	Step   string `json:"step"`
	By     string `json:"by"`
	Reason string `json:"reason"`
	Signed
}

// Ack acknowledges a manual.task step, or any step of a tabletop run.
type Ack struct {
	Step    string `json:"step"`
	By      string `json:"by"`
	Comment string `json:"comment,omitempty"`
	Signed
}

// Retry re-runs a paused (failed or rejected) step.
type Retry struct {
	Step string `json:"step"`
	By   string `json:"by,omitempty"`
	Signed
}

// Skip skips a step that has not finished and is not running.
type Skip struct {
	Step   string `json:"step"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason"`
	Signed
}

// Abort ends the run; drill teardown still runs.
type Abort struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason"`
	Signed
}

// Note adds an operator's note to the evidence.
type Note struct {
	By   string `json:"by,omitempty"`
	Text string `json:"text"`
}

// Reply is what an accepted update returns.
type Reply struct {
	Step    string `json:"step,omitempty"`
	State   string `json:"state"`
	Message string `json:"message"`
}

// Status is the answer to the status query.
type Status struct {
	WorkflowID  string            `json:"workflowId"`
	Runbook     string            `json:"runbook"`
	Version     int               `json:"version"`
	Hash        string            `json:"hash,omitempty"`
	Mode        string            `json:"mode"`
	State       string            `json:"state"`
	Layer       string            `json:"layer,omitempty"`
	RequestedBy string            `json:"requestedBy,omitempty"`
	DeclaredAt  time.Time         `json:"declaredAt"`
	RTO         runbooks.Duration `json:"rto"`
	Deadline    time.Time         `json:"rtoDeadline"`
	// RTORemaining is as of the last workflow task; clients recompute from Deadline.
	RTORemaining    runbooks.Duration `json:"rtoRemaining"`
	ProjectedFinish time.Time         `json:"projectedFinish"`
	RTOBreached     bool              `json:"rtoBreached"`
	Steps           []StepStatus      `json:"steps"`
	Pending         []Pending         `json:"pending,omitempty"`
	Finished        bool              `json:"finished"`
	// Plan is true for a recovery plan's run: its steps are its members.
	Plan bool `json:"plan,omitempty"`
	// Refused is the last refused signal, while the step it was for still waits.
	Refused string `json:"refused,omitempty"`
}

// StepStatus is one step in the status query.
type StepStatus struct {
	ID       string            `json:"id"`
	Layer    string            `json:"layer"`
	Action   string            `json:"action"`
	State    string            `json:"state"`
	Attempts int               `json:"attempts"`
	Started  *time.Time        `json:"started,omitempty"`
	Duration runbooks.Duration `json:"duration"`
	Error    string            `json:"error,omitempty"`
	// Member is a recovery plan member's run as it last reported itself.
	Member *MemberProgress `json:"member,omitempty"`
}

// Pending is something the run waits on a person for.
type Pending struct {
	Step string `json:"step"`
	// Kind is approval, acknowledgement or operator (a paused step).
	Kind string   `json:"kind"`
	From []string `json:"from,omitempty"`
	Have []string `json:"have,omitempty"`
	Need int      `json:"need,omitempty"`
	// Approvers are the people of From's groups who have not approved yet.
	Approvers []string  `json:"approvers,omitempty"`
	Since     time.Time `json:"since"`
	// Message says what is awaited and ends with Command.
	Message string `json:"message"`
	// Command is the exact CLI command that answers it (NAME to fill in).
	Command string `json:"command"`
	// Signal is the same answer from the Temporal UI's signal dialog: a
	// signal name and its JSON input.
	Signal string `json:"signal"`
	// Member and MemberRun name the plan member whose run waits (in a
	// recovery plan's status); Command and Signal then address MemberRun.
	Member    string `json:"member,omitempty"`
	MemberRun string `json:"memberRun,omitempty"`
}

// isPlan is true for a request that runs a recovery plan.
func (r Request) isPlan() bool { return r.Plan != "" || r.InlinePlan != "" }
