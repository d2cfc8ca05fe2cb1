package runbooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
)

// StepInput is what the workflow passes to every action activity.
type StepInput struct {
	WorkflowID string         `json:"workflowId"`
	RunID      string         `json:"runId"`
	Runbook    string         `json:"runbook"`
	Mode       string         `json:"mode"`
	StepID     string         `json:"stepId"`
	Args       map[string]any `json:"args,omitempty"`
	// Targets are the runbook's declared targets, resolved by the worker's config.
	Targets map[string]Target `json:"targets,omitempty"`
	// RPO is the runbook's RPO target, for actions that judge backup age.
	RPO Duration `json:"rpo,omitempty"`
	// NamespaceMappings are the drill's namespace mappings, already applied to
	// Args; actions that restore whole namespaces (velero) use them as well.
	NamespaceMappings map[string]string `json:"namespaceMappings,omitempty"`
	// DrillOverridden names the arguments spec.drill.with replaced for this
	// step (already applied to Args): kube.apply accepts cluster-scoped
	// objects in a drill only from overridden (drill) manifests.
	DrillOverridden []string `json:"drillOverridden,omitempty"`
	// DrillRun is the drill a step of a drill or teardown belongs to (its
	// workflow id): the namespaces a drill creates carry it as the label
	// DrillRunLabel, and a changing action touches no other namespace.
	DrillRun string `json:"drillRun,omitempty"`
	// OperatorRetries counts the operator's retries of this step so far:
	// an action whose side effect is named per step (velero.restore) makes a
	// new one for an operator's retry, and finds its own on an activity retry.
	OperatorRetries int `json:"operatorRetries,omitempty"`
	// DeclaredAt is when the disaster was declared (the run's start unless
	// the request said otherwise): velero.restore waits until the target
	// cluster has synced the bucket after it.
	DeclaredAt *time.Time `json:"declaredAt,omitempty"`
}

// Drill is true when the step runs in a drill. The workflow sends the steps
// of a teardown run (lifeboat teardown) as mode drill too, so one test serves.
func (in StepInput) Drill() bool { return in.Mode == "drill" }

// StepResult is what an action reports back. It must never hold secret values.
type StepResult struct {
	// Summary is one line for the timeline ("HTTP 200 in 35ms").
	Summary string `json:"summary,omitempty"`
	// Outputs are small values later steps or a failback may need.
	Outputs map[string]any `json:"outputs,omitempty"`
	// RecoveryPoint is the time of the data the step restored (the backup's
	// completion), from which the achieved RPO is measured.
	RecoveryPoint     *time.Time `json:"recoveryPoint,omitempty"`
	RecoveryPointName string     `json:"recoveryPointName,omitempty"`
	// Attempt is the attempt that succeeded, filled by the registry wrapper.
	Attempt int `json:"attempt,omitempty"`
}

// ArgsError says a step's arguments do not fit its action; retrying cannot
// fix it (the registry reports it as a non-retryable InvalidArgument error).
type ArgsError struct {
	Step string
	Err  error
}

func (e *ArgsError) Error() string { return fmt.Sprintf("step %s: arguments: %v", e.Step, e.Err) }

// Unwrap returns the decoding error.
func (e *ArgsError) Unwrap() error { return e.Err }

// DurationOrRPO is an optional duration argument's value (field names it),
// the runbook's RPO when it is empty; a bad value is an *ArgsError.
func (in StepInput) DurationOrRPO(value, field string) (time.Duration, error) {
	if value == "" {
		return in.RPO.D(), nil
	}
	d, err := ParseDuration(value)
	if err != nil {
		return 0, &ArgsError{Step: in.StepID, Err: fmt.Errorf("%s: %w", field, err)}
	}
	return d.D(), nil
}

// DecodeArgs decodes the step's arguments into v (a struct with json tags);
// a failure is an *ArgsError.
func (in StepInput) DecodeArgs(v any) error {
	b, err := json.Marshal(in.Args)
	if err != nil {
		return &ArgsError{Step: in.StepID, Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ArgsError{Step: in.StepID, Err: err}
	}
	return nil
}

// ResolveInput asks the worker to resolve a runbook for a run.
type ResolveInput struct {
	Runbook string `json:"runbook,omitempty"`
	// Inline is a whole runbook's YAML text, used instead of the catalog.
	Inline string `json:"inline,omitempty"`
	// Plan names a recovery plan instead of a runbook.
	Plan string `json:"plan,omitempty"`
	// FailbackOf is the failover a failback undoes (mode failback).
	FailbackOf string `json:"failbackOf,omitempty"`
	// TeardownOf is the drill whose recorded teardown a teardown runs.
	TeardownOf string `json:"teardownOf,omitempty"`
	// InlinePlan and PinnedMembers re-enact a plan run (see workflows.Request).
	InlinePlan    string            `json:"inlinePlan,omitempty"`
	PinnedMembers map[string]string `json:"pinnedMembers,omitempty"`
	// ReenactmentOf is the past run an inline text re-enacts: the text
	// must be the one that run recorded (see workflows.Request).
	ReenactmentOf string `json:"reenactmentOf,omitempty"`
	Mode          string `json:"mode"`
}

// Resolved is a runbook as resolved for one run; it is recorded in history so
// a replay, the evidence and a later re-enactment all see the same text.
type Resolved struct {
	// Runbook is the parsed runbook. Runs resolved since the text is stored
	// once leave it out (a 1 MiB runbook parsed and as text was over
	// Temporal's 2 MB payload limit): Parse fills it from Source.
	Runbook *Runbook `json:"runbook,omitempty"`
	Hash    string   `json:"hash"`
	Source  string   `json:"source"`
	// Actions carries, per action the runbook uses, what the workflow must know
	// about it (human step, heartbeats), so the workflow needs no registry.
	Actions map[string]ActionHints `json:"actions"`
	// Notify, when set, makes the workflow post its own notifications (see
	// NotifySettings); nil when the worker has no webhook configured.
	Notify *NotifySettings `json:"notify,omitempty"`
	// Signers are the worker's allowed signers when the run resolved: the
	// workflow verifies operators' signatures against them, deterministically.
	Signers []proof.AllowedSigner `json:"signers,omitempty"`
	// SignaturesRequired refuses every unsigned operator action (start,
	// approve, reject, ack, retry, skip, abort) instead of recording it as
	// unproven.
	SignaturesRequired bool `json:"signaturesRequired,omitempty"`
	// Members describe a recovery plan's member runbooks (plans only).
	Members []MemberRef `json:"members,omitempty"`
	// Failback describes the failover a failback undoes (failbacks only).
	Failback *FailbackInfo `json:"failback,omitempty"`
	// StartClient is the Temporal client identity the server recorded
	// with the run's start, read by the resolve activity ("" when it could
	// not be read: the run reads it again at its end).
	StartClient string `json:"startClient,omitempty"`
}

// FailbackInfo links a failback to the failover it undoes.
type FailbackInfo struct {
	Of string `json:"of"`
	// Written: the runbook's spec.failback, run in restore order.
	Written    bool   `json:"written,omitempty"`
	OfEvidence string `json:"ofEvidence,omitempty"`
	OfHash     string `json:"ofHash,omitempty"`
	// NothingToUndo and Manual are failback.Plan's.
	NothingToUndo []string `json:"nothingToUndo,omitempty"`
	Manual        []string `json:"manual,omitempty"`
}

// Parse fills Runbook from Source when the history recorded only the text.
// Parsing is a pure function of the text, so workflow code may call it.
func (r *Resolved) Parse() error {
	if r.Runbook != nil {
		return nil
	}
	if KindOf([]byte(r.Source)) == PlanKind {
		p, err := ParsePlan([]byte(r.Source), "resolved recovery plan")
		if err != nil {
			return err
		}
		r.Runbook = p.AsRunbook(r.Members)
		return nil
	}
	rb, err := Parse([]byte(r.Source), "resolved runbook")
	if err != nil {
		return err
	}
	r.Runbook = rb
	return nil
}

// NotifySettings say where the workflow's notifications go. They carry no
// secret: the webhook URL stays in the worker's environment variable URLEnv,
// so it never reaches history.
type NotifySettings struct {
	URLEnv string `json:"urlEnv"`
	// UI is the Temporal UI's base URL, for the link to the run.
	UI string `json:"ui"`
}

// ActionHints are the registry facts the workflow needs about an action.
type ActionHints struct {
	Human      bool `json:"human,omitempty"`
	Heartbeats bool `json:"heartbeats,omitempty"`
	// Precheck: the action declares a pre-flight check (phase 0).
	Precheck bool `json:"precheck,omitempty"`
}
