package runbooks

import (
	"strings"
	"time"
)

// APIVersion is the only runbook format version this build reads.
const APIVersion = "lifeboat/v1"

// Kind is the only kind of document a runbook file may hold.
const Kind = "Runbook"

// DefaultStepTimeout bounds one attempt of a step that sets no timeout.
const DefaultStepTimeout = 10 * time.Minute

// DefaultAttempts is how many times a step without a retry block is tried.
const DefaultAttempts = 3

// DefaultBackoff is the wait between attempts of a step without a retry block.
const DefaultBackoff = 5 * time.Second

// Runbook is one lifeboat/v1 document.
type Runbook struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	lines map[string]int // path → line, filled by the loader
}

// Metadata names and owns a runbook.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Version     int    `yaml:"version" json:"version"`
	Owner       string `yaml:"owner" json:"owner,omitempty"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// Spec is what the runbook restores and how.
type Spec struct {
	Scope      string              `yaml:"scope" json:"scope"`
	Disaster   string              `yaml:"disaster" json:"disaster,omitempty"`
	Strategy   string              `yaml:"strategy" json:"strategy,omitempty"`
	Capability string              `yaml:"capability" json:"capability,omitempty"` // the business capability restored, the subject of the recovery invariant (optional: metadata.description stands in)
	Objectives Objectives          `yaml:"objectives" json:"objectives"`
	Approvers  map[string][]string `yaml:"approvers" json:"approvers,omitempty"`
	Targets    map[string]Target   `yaml:"targets" json:"targets,omitempty"`
	Layers     Layers              `yaml:"layers" json:"layers"`
	Drill      *Drill              `yaml:"drill" json:"drill,omitempty"`
	// Failback is how to come back home after a failover (lifeboat failback
	// RUN): a restore into the primary written by the runbook's author, run
	// in restore order (data home before traffic: network … storage …
	// edge). Without it, the reverse of the failover's steps is generated
	// (see Failback) and runs in reverse order, edge first.
	Failback *Layers `yaml:"failback" json:"failback,omitempty"`
	// PlanMembers are a recovery plan's members as steps (RecoveryPlan.AsRunbook);
	// a runbook file cannot set them.
	PlanMembers []Step `yaml:"-" json:"planMembers,omitempty"`
}

// Objectives are the recovery objectives; RTO must be below MTD.
type Objectives struct {
	RTO Duration `yaml:"rto" json:"rto"`
	RPO Duration `yaml:"rpo" json:"rpo"`
	MTD Duration `yaml:"mtd" json:"mtd,omitempty"`
}

// Target names an environment the worker's configuration resolves; never credentials.
type Target struct {
	KubeContext string `yaml:"kubeContext" json:"kubeContext,omitempty"`
}

// Layers are the fixed restore layers. They run in LayerOrder.
type Layers struct {
	Network   []Step `yaml:"network" json:"network,omitempty"`
	Identity  []Step `yaml:"identity" json:"identity,omitempty"`
	Secrets   []Step `yaml:"secrets" json:"secrets,omitempty"`
	Storage   []Step `yaml:"storage" json:"storage,omitempty"`
	Workloads []Step `yaml:"workloads" json:"workloads,omitempty"`
	Edge      []Step `yaml:"edge" json:"edge,omitempty"`
}

// LayerOrder is the restore order, with the reason each layer comes where it does
// (seed 004 §12: a restore must rebuild dependencies before their dependents).
var LayerOrder = []struct {
	Name   string
	Reason string
}{
	{"network", "nothing else can be reached until the network exists"},
	{"identity", "workloads restored before their identity bindings start and then fail"},
	{"secrets", "secrets need identity to be read and must exist before workloads mount them"},
	{"storage", "data and volumes must be in place before the workloads that use them"},
	{"workloads", "applications come back on top of network, identity, secrets and storage"},
	{"edge", "traffic moves last, once the business journey is validated"},
}

// Layer is one named layer with its steps.
type Layer struct {
	Name  string
	Steps []Step
}

// Ordered returns the layers in restore order, including empty ones.
// The order is LayerOrder's: it is data, and changing it changes what a
// workflow schedules (so it goes behind workflow.GetVersion).
func (l Layers) Ordered() []Layer {
	steps := map[string][]Step{"network": l.Network, "identity": l.Identity, "secrets": l.Secrets,
		"storage": l.Storage, "workloads": l.Workloads, "edge": l.Edge}
	out := make([]Layer, 0, len(LayerOrder))
	for _, o := range LayerOrder {
		out = append(out, Layer{Name: o.Name, Steps: steps[o.Name]})
	}
	return out
}

// Step is one action of a runbook.
type Step struct {
	ID          string         `yaml:"id" json:"id"`
	Action      string         `yaml:"action" json:"action"`
	Description string         `yaml:"description" json:"description,omitempty"`
	With        map[string]any `yaml:"with" json:"with,omitempty"`
	Needs       []string       `yaml:"needs" json:"needs,omitempty"`
	Timeout     Duration       `yaml:"timeout" json:"timeout,omitempty"`
	Retry       *Retry         `yaml:"retry" json:"retry,omitempty"`
	OnFailure   string         `yaml:"onFailure" json:"onFailure,omitempty"`
	Approval    *Approval      `yaml:"approval" json:"approval,omitempty"`
	Expect      Duration       `yaml:"expect" json:"expect,omitempty"`
	RPOSource   bool           `yaml:"rpoSource" json:"rpoSource,omitempty"`
}

// Failure policies for onFailure.
const (
	OnFailurePause    = "pause"
	OnFailureAbort    = "abort"
	OnFailureContinue = "continue"
)

// Approval timeout policies for approval.onTimeout.
const (
	OnTimeoutAbort    = "abort"
	OnTimeoutProceed  = "proceed"
	OnTimeoutEscalate = "escalate"
)

// EffectiveTimeout is the per-attempt timeout, DefaultStepTimeout when unset.
func (s Step) EffectiveTimeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout.D()
	}
	return DefaultStepTimeout
}

// EffectiveOnFailure is the failure policy, pause when unset.
func (s Step) EffectiveOnFailure() string {
	if s.OnFailure == "" {
		return OnFailurePause
	}
	return s.OnFailure
}

// Attempts is how many times the step is tried before it counts as failed.
func (s Step) Attempts() int {
	if s.Retry != nil && s.Retry.Attempts > 0 {
		return s.Retry.Attempts
	}
	if s.Retry != nil {
		return 1
	}
	return DefaultAttempts
}

// Backoff is the fixed wait between attempts.
func (s Step) Backoff() time.Duration {
	if s.Retry != nil && s.Retry.Backoff > 0 {
		return s.Retry.Backoff.D()
	}
	return DefaultBackoff
}

// Estimate is the planning estimate: expect when given, else the timeout.
func (s Step) Estimate() time.Duration {
	if s.Expect > 0 {
		return s.Expect.D()
	}
	return s.EffectiveTimeout()
}

// Retry says how a failed attempt is retried. Backoff is a fixed wait.
type Retry struct {
	Attempts     int      `yaml:"attempts" json:"attempts"`
	Backoff      Duration `yaml:"backoff" json:"backoff,omitempty"`
	NonRetryable []string `yaml:"nonRetryable" json:"nonRetryable,omitempty"`
}

// Approval is a gate evaluated before the step runs.
type Approval struct {
	From      []string `yaml:"from" json:"from"`
	Min       int      `yaml:"min" json:"min"`
	Timeout   Duration `yaml:"timeout" json:"timeout,omitempty"`
	OnTimeout string   `yaml:"onTimeout" json:"onTimeout,omitempty"`
	Separate  bool     `yaml:"separate" json:"separate,omitempty"`
}

// Needed is the number of distinct approvers the gate needs (at least one).
func (a Approval) Needed() int {
	if a.Min < 1 {
		return 1
	}
	return a.Min
}

// Drill is what changes when the runbook runs in drill mode.
type Drill struct {
	NamespaceMappings map[string]string `yaml:"namespaceMappings" json:"namespaceMappings,omitempty"`
	Skip              []string          `yaml:"skip" json:"skip,omitempty"`
	Teardown          []Step            `yaml:"teardown" json:"teardown,omitempty"`
	Every             Duration          `yaml:"every" json:"every,omitempty"`
	// With overrides step arguments in a drill: step id → argument → value,
	// e.g. a non-production hostname for a DNS switch (seed 004) or a drill
	// var file for terraform.
	With map[string]map[string]any `yaml:"with" json:"with,omitempty"`
}

// Args returns the step's arguments as a drill runs them: its own with
// spec.drill.with's overrides for it (the step's map is not changed).
func (d *Drill) Args(s Step) map[string]any {
	over := d.overrides(s.ID)
	if len(over) == 0 {
		return s.With
	}
	out := make(map[string]any, len(s.With)+len(over))
	for k, v := range s.With {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func (d *Drill) overrides(id string) map[string]any {
	if d == nil {
		return nil
	}
	return d.With[id]
}

// MapNamespaces points a drill step's arguments (a copy) at the drill's
// namespaces: its namespace, and a service account's namespace in as.
// (Teardown steps name drill namespaces already and are not mapped.)
func (d *Drill) MapNamespaces(args map[string]any) {
	m := d.NamespaceMappings
	if ns, ok := args["namespace"].(string); ok && m[ns] != "" {
		args["namespace"] = m[ns]
	}
	if as, ok := args["as"].(string); ok && strings.HasPrefix(as, "system:serviceaccount:") {
		parts := strings.SplitN(as, ":", 4)
		if len(parts) == 4 && m[parts[2]] != "" {
			args["as"] = "system:serviceaccount:" + m[parts[2]] + ":" + parts[3]
		}
	}
}

// Destinations are the namespaces a drill restores into: the values of its
// namespace mappings, sorted.
func (d *Drill) Destinations() []string {
	if d == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, to := range d.NamespaceMappings {
		seen[to] = true
	}
	return sortedKeys(seen)
}

// AllSteps returns every step of the main layers in order, each with its layer.
func (r *Runbook) AllSteps() []LayeredStep {
	var out []LayeredStep
	for _, l := range r.Spec.Layers.Ordered() {
		for i, s := range l.Steps {
			out = append(out, LayeredStep{Layer: l.Name, Index: i, Step: s})
		}
	}
	for i, s := range r.Spec.PlanMembers {
		out = append(out, LayeredStep{Layer: MembersLayer, Index: i, Step: s})
	}
	return out
}

// LayeredStep is a step with the layer it belongs to and its index there.
type LayeredStep struct {
	Layer string
	Index int
	Step  Step
}

// Path is the step's place in the document, e.g. spec.layers.identity[1].
func (s LayeredStep) Path() string {
	switch s.Layer {
	case TeardownLayer:
		return pathf("spec.drill.teardown[%d]", s.Index)
	case MembersLayer:
		return pathf("spec.members[%d]", s.Index)
	}
	return pathf("spec.layers.%s[%d]", s.Layer, s.Index)
}

// TeardownLayer is the pseudo-layer name drill teardown steps run under.
const TeardownLayer = "teardown"

// TeardownSteps returns the drill teardown steps, if any.
func (r *Runbook) TeardownSteps() []LayeredStep {
	if r.Spec.Drill == nil {
		return nil
	}
	out := make([]LayeredStep, 0, len(r.Spec.Drill.Teardown))
	for i, s := range r.Spec.Drill.Teardown {
		out = append(out, LayeredStep{Layer: TeardownLayer, Index: i, Step: s})
	}
	return out
}
