package runbooks

// Change is one thing a step would change, as a dry run found it: what, as
// it is now (Before, "" when it does not exist) and as the step would leave
// it (After, "" when the step deletes it).
type Change struct {
	Step   string `json:"step"`
	Action string `json:"action"`
	What   string `json:"what"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Note says what the dry run could not know (a value an earlier step
	// outputs, a namespace an earlier step restores).
	Note string `json:"note,omitempty"`
}

// DryRun is what a dry run of a runbook found: every step's changes, the
// steps that change nothing, and the plan's timing against the RTO.
type DryRun struct {
	Changes []Change `json:"changes"`
	// Unchanged lists the steps that would change nothing (checks, waits).
	Unchanged []string `json:"unchanged,omitempty"`
	// Errors are the steps whose dry run failed, with why.
	Errors []string `json:"errors,omitempty"`
	Plan   Plan     `json:"plan"`
}
