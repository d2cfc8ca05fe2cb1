// Package workflows holds RestoreWorkflow: the deterministic execution of a
// runbook (layers as barriers, parallel steps, retries, approval gates,
// operator messages, the RTO clock) and the Evidence it returns.
package workflows

import "go.temporal.io/sdk/temporal"

// RestoreWorkflowName is the registered workflow type name.
const RestoreWorkflowName = "RestoreWorkflow"

// Internal activity names (the runbook actions are registered under their own names).
const (
	ResolveActivity = "lifeboat.resolveRunbook"
	StoreActivity   = "evidence.store"
)

// Operator message names: each is both an update (validated, used by the CLI)
// and a signal (used by the Temporal UI; refused signals become notes).
const (
	MsgApprove = "approve"
	MsgReject  = "reject"
	MsgAck     = "ack"
	MsgRetry   = "retry"
	MsgSkip    = "skip"
	MsgAbort   = "abort"
	MsgNote    = "note"
)

// ErrUnsuccessful is the application error type of a run that did not
// succeed when its request asked to fail (Request.FailIfUnsuccessful); the
// error's details hold the Evidence.
const ErrUnsuccessful = "RunUnsuccessful"

// QueryStatus is the name of the status query.
const QueryStatus = "status"

// Search attributes lifeboat keeps current for the Temporal UI.
var (
	SARunbook     = temporal.NewSearchAttributeKeyKeyword("LifeboatRunbook")
	SAMode        = temporal.NewSearchAttributeKeyKeyword("LifeboatMode")
	SAState       = temporal.NewSearchAttributeKeyKeyword("LifeboatState")
	SALayer       = temporal.NewSearchAttributeKeyKeyword("LifeboatLayer")
	SARTOBreached = temporal.NewSearchAttributeKeyBool("LifeboatRTOBreached")
)

// SearchAttributeTypes lists the search attributes to register on a server, as
// name → type in the form `temporal operator search-attribute create` takes.
var SearchAttributeTypes = map[string]string{
	"LifeboatRunbook": "Keyword", "LifeboatMode": "Keyword", "LifeboatState": "Keyword",
	"LifeboatLayer": "Keyword", "LifeboatRTOBreached": "Bool",
}
